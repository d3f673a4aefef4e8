/*
 * Entry point of the bare-metal and desktop builds (Arduino-framework builds
 * enter through src/board/arduino/ instead; `pio test` programs bring their own).
 * The board comes up, then the protocol loop serves the host until the link
 * closes (desktop) or forever (boards).
 */
#include "lpn_board.h"
#include "protocol_loop.h"

#ifndef PIO_UNIT_TESTING

/* Distinct exit codes, so an emulator run or a script can tell why it ended. */
#define EXIT_LINK_CLOSED 0
#define EXIT_LINK_FAILED 1
#define EXIT_INIT_FAILED 2

int main(void)
{
    const struct lpn_board *board = lpn_board_init();

    if (protocol_loop_init(board) < 0) {
        return EXIT_INIT_FAILED;
    }
    for (;;) {
        int result = protocol_loop_step(board);
        if (result == LPN_UART_CLOSED) {
            return EXIT_LINK_CLOSED;
        }
        if (result < 0) {
            return EXIT_LINK_FAILED;
        }
        if (result == 0 && board->uart.wait != NULL) {
            board->uart.wait(board->uart.context);
        }
    }
}

#endif /* PIO_UNIT_TESTING */

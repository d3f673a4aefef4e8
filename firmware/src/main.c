/*
 * Entry point of the bare-metal and desktop builds (Arduino-framework builds
 * enter through src/board/arduino/ instead; `pio test` programs bring their own).
 */
#include "echo_placeholder.h"
#include "lpn_board.h"

#ifndef PIO_UNIT_TESTING

int main(void)
{
    const struct lpn_board *board = lpn_board_init();

    for (;;) {
        int result = echo_placeholder_step(board);
        if (result == LPN_UART_CLOSED) {
            return 0;
        }
        if (result < 0) {
            return 1;
        }
        if (result == 0 && board->uart.wait != NULL) {
            board->uart.wait(board->uart.context);
        }
    }
}

#endif /* PIO_UNIT_TESTING */

#include "echo_placeholder.h"

/* Echoing in bursts rather than byte by byte keeps the emulated UART's
 * per-write overhead out of the throughput the host measures. */
#define ECHO_BURST 64

int echo_placeholder_step(const struct lpn_board *board)
{
    const struct lpn_uart *uart = &board->uart;
    uint8_t burst[ECHO_BURST];
    size_t count = 0;
    int byte = LPN_UART_NO_BYTE;

    while (count < ECHO_BURST) {
        byte = uart->read_byte(uart->context);
        if (byte < 0) {
            break;
        }
        burst[count++] = (uint8_t)byte;
    }
    if (count > 0) {
        int written = uart->write(uart->context, burst, count);
        if (written < 0) {
            return written;
        }
        return (int)count;
    }
    return byte == LPN_UART_NO_BYTE ? 0 : byte;
}

/*
 * Board glue of the desktop build: the host link is stdin/stdout, so a test
 * pipes bytes through the program, or a user runs it behind socat for a socket.
 */
#define _POSIX_C_SOURCE 200809L

#include "lpn_board.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* How long wait() may sleep: short enough not to matter, long enough not to spin. */
#define WAIT_LIMIT_MS 10

static int stdin_read_byte(void *context)
{
    struct pollfd input = {STDIN_FILENO, POLLIN, 0};
    unsigned char byte;
    ssize_t got;

    (void)context;
    if (poll(&input, 1, 0) <= 0) {
        return LPN_UART_NO_BYTE;
    }
    do {
        got = read(STDIN_FILENO, &byte, 1);
    } while (got < 0 && errno == EINTR);
    if (got == 1) {
        return byte;
    }
    return LPN_UART_CLOSED;
}

static int stdout_write(void *context, const uint8_t *bytes, size_t length)
{
    (void)context;
    while (length > 0) {
        ssize_t sent = write(STDOUT_FILENO, bytes, length);
        if (sent < 0) {
            if (errno == EINTR) {
                continue;
            }
            return LPN_UART_IO;
        }
        bytes += sent;
        length -= (size_t)sent;
    }
    return LPN_BOARD_OK;
}

static void stdin_wait(void *context)
{
    struct pollfd input = {STDIN_FILENO, POLLIN, 0};
    (void)context;
    (void)poll(&input, 1, WAIT_LIMIT_MS);
}

static uint32_t monotonic_millis(void *context)
{
    struct timespec now;
    (void)context;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint32_t)((uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u);
}

static void exit_process(int code)
{
    exit(code);
}

static const struct lpn_board native_board = {
    "native",
    {stdin_read_byte, stdout_write, stdin_wait, NULL},
    {monotonic_millis, NULL},
    exit_process,
    NULL, /* a desktop process has no fixed RAM to report */
};

const struct lpn_board *lpn_board_init(void)
{
    return &native_board;
}

/*
 * Board glue of the desktop build: the host link is stdin/stdout, so a test
 * pipes bytes through the program, or a user runs it behind socat for a socket.
 * The persistent storage is the file named by the environment variable
 * LPN_STORAGE_FILE (none without it).
 */
#define _POSIX_C_SOURCE 200809L

#include "lpn_board.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "lpn_storage.h"

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

/* Room per slot; only what is written takes room in the file. */
#define STORAGE_SLOT_SIZE (1024u * 1024u)
#define STORAGE_ENV_VAR "LPN_STORAGE_FILE"

static int storage_fd = -1;

static int file_read(const struct lpn_storage_config *cfg, uint32_t offset, void *buffer, uint32_t size)
{
    uint8_t *bytes = (uint8_t *)buffer;
    (void)cfg;
    while (size > 0u) {
        ssize_t got = pread(storage_fd, bytes, size, (off_t)offset);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            return LPN_STORAGE_ERR_IO;
        }
        if (got == 0) {
            memset(bytes, 0xFF, size); /* past the end of the file: never written, reads erased */
            return 0;
        }
        bytes += got;
        offset += (uint32_t)got;
        size -= (uint32_t)got;
    }
    return 0;
}

static int file_prog(const struct lpn_storage_config *cfg, uint32_t offset, const void *buffer, uint32_t size)
{
    const uint8_t *bytes = (const uint8_t *)buffer;
    (void)cfg;
    while (size > 0u) {
        ssize_t sent = pwrite(storage_fd, bytes, size, (off_t)offset);
        if (sent < 0 && errno == EINTR) {
            continue;
        }
        if (sent <= 0) {
            return LPN_STORAGE_ERR_IO;
        }
        bytes += sent;
        offset += (uint32_t)sent;
        size -= (uint32_t)sent;
    }
    return 0;
}

/* The header is written only after the payload is on the disk. */
static int file_sync(const struct lpn_storage_config *cfg)
{
    (void)cfg;
    return fsync(storage_fd) == 0 ? 0 : LPN_STORAGE_ERR_IO;
}

static const struct lpn_storage_config file_storage = {
    NULL, file_read, file_prog, NULL, file_sync, STORAGE_SLOT_SIZE, 1u,
};

static struct lpn_board native_board = {
    "native",
    {stdin_read_byte, stdout_write, stdin_wait, NULL},
    {monotonic_millis, NULL},
    exit_process,
    NULL, /* a desktop process has no fixed RAM to report */
    NULL, /* storage: set when LPN_STORAGE_FILE names a file */
};

const struct lpn_board *lpn_board_init(void)
{
    const char *path = getenv(STORAGE_ENV_VAR);

    if (path != NULL && path[0] != '\0') {
        storage_fd = open(path, O_RDWR | O_CREAT, 0644);
        if (storage_fd >= 0) {
            native_board.storage = &file_storage;
        }
    }
    return &native_board;
}

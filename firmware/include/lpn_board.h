/*
 * The board layer: everything the portable firmware needs from the hardware,
 * handed over as callback structs so the same code runs on a board, in QEMU
 * and on the desktop. The portable code never touches a register itself.
 *
 * Each board supplies one file set under src/board/<board>/ that implements
 * lpn_board_init(); platformio.ini picks the set per environment.
 */
#ifndef LPN_BOARD_H
#define LPN_BOARD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Results of the board callbacks. Errors are negative, and passed on unchanged
 * by whoever cannot handle them. */
enum lpn_board_error {
    LPN_BOARD_OK = 0,
    LPN_UART_NO_BYTE = -1, /* nothing received yet; ask again later */
    LPN_UART_CLOSED = -2,  /* nothing will ever be received again (end of input) */
    LPN_UART_IO = -3,      /* the link failed while sending */
};

/* The serial link to the host. */
struct lpn_uart {
    /* Returns the next received byte (0..255) at once, LPN_UART_NO_BYTE when
     * none is waiting, or LPN_UART_CLOSED. Must never block. */
    int (*read_byte)(void *context);

    /* Sends `length` bytes in order, waiting as long as the link needs.
     * Returns LPN_BOARD_OK or a negative error code. */
    int (*write)(void *context, const uint8_t *bytes, size_t length);

    /* Optional (may be NULL): called when the main loop has nothing to do.
     * May sleep until a byte may have arrived; may return early. */
    void (*wait)(void *context);

    /* Handed unchanged to the callbacks above. */
    void *context;
};

/* A monotonic time source, for timeouts and throughput figures. */
struct lpn_clock {
    /* Milliseconds since an arbitrary start, wrapping around at 2^32.
     * Must be callable at any time from the main loop. */
    uint32_t (*millis)(void *context);

    /* Handed unchanged to millis. */
    void *context;
};

/* The persistent medium for the learner's state: lpn_storage's callback struct
 * (lib/lpn_storage/src/lpn_storage.h), declared here only as a pointer so that
 * boards without persistence need not build that library. */
struct lpn_storage_config;

struct lpn_board {
    /* Short board name for the info reply, e.g. "mps2-an386". */
    const char *name;

    struct lpn_uart uart;
    struct lpn_clock clock;

    /* Optional (may be NULL): ends the program with `code`, where that means
     * something (an emulator or the desktop); real boards leave it NULL. */
    void (*exit)(int code);

    /* Optional (may be NULL, reported as 0 = unknown): bytes of RAM the
     * firmware leaves unused, for the protocol's info reply. Without a heap
     * this is the RAM beyond the image and its stack reservation; a board
     * without a reservation (the AVR) reports the RAM its stack never reached. */
    uint32_t (*free_ram)(void);

    /* Optional (may be NULL: the board keeps nothing across a restart, and the
     * protocol's save and load reply `unsupported`): where the learner's state
     * is saved, two slots of lpn_storage (EEPROM, flash, a host file). Ready
     * when lpn_board_init returns; the firmware loads the newest complete slot
     * at boot. Its slot size bounds the state size that can be saved. */
    const struct lpn_storage_config *storage;
};

/* Brings up the hardware the board layer uses (clocks, UART, FPU) and returns
 * the board's callbacks. Called once, before anything else. */
const struct lpn_board *lpn_board_init(void);

#ifdef __cplusplus
}
#endif

#endif /* LPN_BOARD_H */

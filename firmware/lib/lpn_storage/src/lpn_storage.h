/*
 * lpn_storage: power-loss-safe persistence of one state blob (the learner's
 * exported state) on EEPROM, flash or a host file.
 *
 * The storage is two slots of `slot_size` bytes, slot 0 at offset 0 and slot 1
 * at offset `slot_size`. Each slot holds a 16-byte header followed by the
 * payload:
 *
 *   offset 0   magic     "LPNS" (0x534E504C little-endian)
 *   offset 4   sequence  uint32, one more than the slot it supersedes
 *   offset 8   length    uint32, payload bytes
 *   offset 12  crc       uint32, CRC-32 (as zlib) of header bytes 0..11, then payload
 *   offset 16  payload
 *
 * All header fields are little-endian on every target. A save writes into the
 * slot that does NOT hold the current state: erase (if the medium needs it),
 * payload, sync, then the header last, then sync. Until the header's last byte
 * is written the new slot fails its CRC check and the old slot is loaded; once
 * it is written the new one is. So a save cut at any single storage write
 * (including a write that is itself cut part way) leaves either the complete
 * old state or the complete new one loadable, never a mix. The loader takes the
 * valid slot with the newer sequence number, in serial-number arithmetic, so
 * the sequence may wrap around from 0xFFFFFFFF to 0.
 *
 * The library never touches hardware: every access goes through the callbacks
 * of struct lpn_storage_config, so the same code runs on EEPROM, on flash, on a
 * host file through semihosting, and in the desktop harness that injects a
 * power cut at write N. Nothing is allocated; the stack holds a few dozen
 * bytes plus the callbacks'. C99, no float.
 *
 * Storages that come with the library (each compiles to nothing elsewhere):
 *   lpn_storage_avr_eeprom.h  the AVR's internal EEPROM (avr-libc)
 *   lpn_storage_semihost.h    a host file through Arm semihosting (QEMU)
 * A board with flash fills the struct itself: erase = the sector erase,
 * prog_size = the flash's program unit, slot_size = one or more sectors.
 */
#ifndef LPN_STORAGE_H
#define LPN_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LPN_STORAGE_MAGIC UINT32_C(0x534E504C) /* "LPNS" read as little-endian */
#define LPN_STORAGE_HEADER_SIZE 16u
/* Largest prog_size: the tail of a payload is padded through a buffer this big. */
#define LPN_STORAGE_MAX_PROG_SIZE 16u

/* Every error is negative. A callback's own negative return value is passed
 * to the caller unchanged, so a board may use codes of its own. */
enum lpn_storage_error {
    LPN_STORAGE_OK = 0,
    LPN_STORAGE_ERR_IO = -1,      /* for callbacks: the medium failed */
    LPN_STORAGE_ERR_NOENT = -2,   /* load: neither slot holds a valid state */
    LPN_STORAGE_ERR_NOSPACE = -3, /* save: payload larger than a slot holds;
                                     load: larger than the caller's buffer */
    LPN_STORAGE_ERR_INVAL = -4    /* bad configuration or NULL argument */
};

struct lpn_storage_config {
    /* Anything the callbacks need (a device handle, a file, a RAM image).
     * The library never reads it. */
    void *context;

    /* Copies `size` bytes at byte `offset` of the storage into `buffer`.
     * Required. Returns 0, or a negative error code. */
    int (*read)(const struct lpn_storage_config *cfg, uint32_t offset, void *buffer, uint32_t size);

    /* Writes `size` bytes from `buffer` at `offset`. Required. Offset and size
     * are multiples of prog_size. On a medium with `erase`, the range has been
     * erased by the same save before it is programmed. Returns 0 or negative. */
    int (*prog)(const struct lpn_storage_config *cfg, uint32_t offset, const void *buffer, uint32_t size);

    /* Erases `size` bytes at `offset`: one whole slot, so slot_size must be a
     * multiple of the medium's erase unit. NULL for media that overwrite in
     * place (EEPROM, a file). Returns 0 or negative. */
    int (*erase)(const struct lpn_storage_config *cfg, uint32_t offset, uint32_t size);

    /* Returns once every earlier prog/erase is durable (write buffers drained,
     * a file flushed to the OS). The header is written only after the payload
     * is synced. NULL if every write is durable when prog returns. */
    int (*sync)(const struct lpn_storage_config *cfg);

    /* Bytes per slot, header included; the storage spans 2 * slot_size bytes
     * from offset 0. At least LPN_STORAGE_HEADER_SIZE + prog_size, a multiple
     * of prog_size. The payload capacity is slot_size - 16. */
    uint32_t slot_size;

    /* Write granularity of the medium: 1, 2, 4, 8 or 16 bytes. A payload
     * tail shorter than this is padded with 0xFF. */
    uint32_t prog_size;
};

/* Largest payload a slot holds, or LPN_STORAGE_ERR_INVAL for a bad config. */
long lpn_storage_capacity(const struct lpn_storage_config *cfg);

/* Stores `length` bytes (0 allowed) so that lpn_storage_load returns them,
 * replacing the previous state. A cut anywhere during the call leaves the
 * previous state or this one loadable. Returns 0 or a negative error; on
 * error the previous state is still loadable. */
int lpn_storage_save(const struct lpn_storage_config *cfg, const void *data, uint32_t length);

/* Copies the newest valid state into `buffer` and its length into `*length`.
 * LPN_STORAGE_ERR_NOENT if there is none; LPN_STORAGE_ERR_NOSPACE if it is
 * longer than `capacity` (then `*length` is its length, `buffer` untouched).
 * Only reads the storage. */
int lpn_storage_load(const struct lpn_storage_config *cfg, void *buffer, uint32_t capacity, uint32_t *length);

#ifdef __cplusplus
}
#endif

#endif /* LPN_STORAGE_H */

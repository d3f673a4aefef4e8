/*
 * lpn_protocol: the device side of the LPN serial protocol.
 *
 * The protocol (framing, command table, status codes) is defined once in the
 * host package (host/lpn/protocol.py, documented in docs/protocol.md); the
 * codes and payload layouts reach C through the generated lpn_protocol_table.h.
 *
 * Layers, each usable alone:
 *   - lpn_crc32_update, lpn_cobs_encode, lpn_cobs_decode: the framing helpers;
 *   - struct lpn_frame_assembler: collects bytes up to a 0x00 delimiter in a
 *     bounded buffer (it never writes past the buffer it was given);
 *   - struct lpn_protocol: the dispatcher. Fed one received byte at a time, it
 *     answers every frame through the `write` callback, calling the learner
 *     only through the callbacks of struct lpn_learner_ops.
 *
 * The library knows nothing of the generated learner's names: the firmware fills
 * the ops struct with small adapters around it. It does not allocate; every
 * buffer is handed in. C99, no float.
 *
 * Rejection guarantee: a frame that is malformed, oversized, has a bad CRC, an
 * unknown command, a bad length or a bad field value, or is out of order, gets an
 * error reply and changes nothing, neither the learner nor the transfer state.
 */
#ifndef LPN_PROTOCOL_H
#define LPN_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "lpn_protocol_table.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Framing helpers -------------------------------------------------- */

/* Longest COBS encoding of n bytes, without the delimiter. */
#define LPN_COBS_MAX_ENCODED(n) ((size_t)(n) + (size_t)(n) / 254u + 1u)

/* Bytes each of the dispatcher's rx and tx buffers needs for frames of up to
 * `max_frame` decoded bytes: the longest encoding plus the delimiter. */
#define LPN_PROTOCOL_BUFFER_SIZE(max_frame) (LPN_COBS_MAX_ENCODED(max_frame) + 1u)

/* Shortest max_frame the dispatcher accepts: the info reply must fit (the
 * learner-sized frames are checked by lpn_protocol_init). */
#define LPN_PROTOCOL_MIN_FRAME (LPN_PROTO_REPLY_HEADER + LPN_PROTO_INFO_REP_SIZE + LPN_PROTO_CRC_SIZE)

/* CRC-32 as zlib computes it. Start with crc = 0; feed pieces in order. */
uint32_t lpn_crc32_update(uint32_t crc, const uint8_t *data, size_t length);

/*
 * COBS-encodes `length` bytes from `in` into `out` (no delimiter appended).
 * Returns the encoded length, or 0 if `capacity` is too small. `in` and `out`
 * may be the same buffer shifted: the encoding is correct in place when
 * out + (LPN_COBS_MAX_ENCODED(length) - length) <= in.
 */
size_t lpn_cobs_encode(const uint8_t *in, size_t length, uint8_t *out, size_t capacity);

/*
 * Decodes a COBS frame (without its delimiter) into `out`, which may equal `in`.
 * Returns the decoded length, or -1 if the input holds a 0x00, a block runs past
 * the end, or the output would exceed `capacity`. On failure `*decoded`, if not
 * NULL, receives the number of bytes decoded before the fault (they are valid).
 */
long lpn_cobs_decode(const uint8_t *in, size_t length, uint8_t *out, size_t capacity, size_t *decoded);

/* Collects the encoded bytes of one frame; never writes past `buffer[capacity-1]`. */
struct lpn_frame_assembler {
    uint8_t *buffer;
    size_t capacity;
    size_t length;      /* bytes collected so far */
    uint8_t overflow;   /* the frame outgrew the buffer; skipping to the delimiter */
    uint8_t done;       /* the last call ended a frame; the next one starts afresh */
};

enum lpn_frame_event {
    LPN_FRAME_MORE = 0,      /* nothing complete yet */
    LPN_FRAME_READY = 1,     /* buffer[0..length) holds one encoded frame */
    LPN_FRAME_OVERSIZED = 2  /* a frame ended that did not fit; its start is in buffer[0..length) */
};

void lpn_frame_assembler_init(struct lpn_frame_assembler *fa, uint8_t *buffer, size_t capacity);

/* Feeds one byte. After READY or OVERSIZED the frame stays in the buffer until
 * the next call, which starts a new frame. An empty frame (two delimiters in a
 * row) is no frame: it returns MORE, so a sender may pad with delimiters. */
enum lpn_frame_event lpn_frame_assembler_feed(struct lpn_frame_assembler *fa, uint8_t byte);

/* ---- The learner, as the protocol sees it ------------------------------ */

/* Filled by the `info` callback. */
struct lpn_learner_info {
    uint16_t inputs;              /* int16 values per input vector */
    uint16_t outputs;             /* int16 values per output/target vector */
    uint8_t tasks;                /* task ids are 0..tasks-1; at least 1 */
    uint8_t layers;               /* learning layers, 1..LPN_PROTO_MAX_LAYERS */
    uint32_t state_bytes;         /* size of the exported state */
    uint32_t synapses;
    uint32_t free_ram;            /* as the board measures it; 0 if unknown */
    uint8_t model_hash[32];       /* SHA-256 the learner was generated from */
    const char *firmware_version; /* at most 16 chars are sent; may be NULL */
    const char *board;            /* at most 16 chars are sent; may be NULL */
};

struct lpn_layer_stats {
    uint16_t budget;
    int32_t loss_fast;
    int32_t loss_slow;
};

/* Filled by the `stats` callback; only layer[0..layers) is sent. */
struct lpn_learner_stats {
    uint32_t step;
    uint32_t saturations;
    uint32_t seen;
    uint8_t task;
    struct lpn_layer_stats layer[LPN_PROTO_MAX_LAYERS];
};

/* Filled by the `storage` callback. */
struct lpn_storage_status {
    uint8_t present;     /* 1 if the board has persistent storage */
    int8_t boot_status;  /* protocol status of the load at boot (0: restored) */
    uint32_t capacity;   /* largest state a slot holds, bytes; 0 without storage */
    uint32_t saves;      /* successful saves since boot */
};

/*
 * The learner's callbacks, in the style of littlefs's config struct.
 *
 * Every callback gets `context` unchanged and returns 0 (or, for predict, a
 * class index) on success and a negative code on error. Codes in
 * LPN_PROTO_LEARNER_CODE_MIN..-1 (the learner's lpn_status values) reach the
 * host unchanged; other negative codes are reported as learner_failed. A
 * callback that fails must leave the learner unchanged.
 *
 * Vectors are already converted from the wire's little-endian bytes, have the
 * sizes `info` reported, and the task ids were checked against `info.tasks`.
 * Only `info` is required; a NULL callback makes its command `unsupported`.
 */
struct lpn_learner_ops {
    /* Handed unchanged to every callback. */
    void *context;

    /* Required. Fills *info. Called once by lpn_protocol_init (the sizes are
     * then fixed) and again for every info command (for free_ram). */
    int (*info)(void *context, struct lpn_learner_info *info);

    /* Forward pass on x[inputs]; writes y[outputs]. Returns the index of the
     * largest output among the task's outputs (every output when task is
     * LPN_PROTO_ALL_TASKS), ties to the lower index. Changes no state. */
    int (*predict)(void *context, uint8_t task, const int16_t *x, int16_t *y);

    /* One learning step on x[inputs] with target t[outputs] for `task`. */
    int (*learn)(void *context, uint8_t task, const int16_t *x, const int16_t *t);

    /* One unlabelled (contrastive) step on x[inputs]. */
    int (*contrast)(void *context, const int16_t *x);

    /* Consolidation now. */
    int (*consolidate)(void *context);

    /* `count` replayed samples. */
    int (*replay)(void *context, uint16_t count);

    /* One structural step. */
    int (*structural)(void *context);

    /* Fills *stats (step, saturations, seen, task, and each layer's record). */
    int (*stats)(void *context, struct lpn_learner_stats *stats);

    /* Writes the whole state, exactly `size` (= info.state_bytes) bytes. */
    int (*export_state)(void *context, uint8_t *out, size_t size);

    /* Checks and imports a whole state of `size` bytes; on error nothing changes. */
    int (*import_state)(void *context, const uint8_t *in, size_t size);

    /* Back to the model compiled into the firmware. */
    int (*reset)(void *context);

    /* Persistence (NULL on a board without storage: the commands reply
     * unsupported). save stores the whole state; load replaces it with the
     * newest saved one. Besides the learner's codes they may return
     * LPN_PROTO_ERR_UNSUPPORTED, _NO_SAVED_STATE, _STORAGE_FAILED,
     * _STORAGE_FULL or _SAVED_MODEL_DIFFERS, which reach the host unchanged. A failed load leaves the
     * learner unchanged. Both discard any state transfer in progress, since the
     * firmware may stage the state in the same buffer. */
    int (*save)(void *context);
    int (*load)(void *context);

    /* Optional (NULL: the storage command replies unsupported): fills *status. */
    int (*storage)(void *context, struct lpn_storage_status *status);
};

/* ---- The dispatcher -------------------------------------------------- */

struct lpn_protocol_config {
    /* The learner's callbacks; must outlive the protocol object. */
    const struct lpn_learner_ops *ops;

    /* Sends `length` bytes in order, waiting as long as the link needs; returns 0
     * or a negative code, which lpn_protocol_feed passes on. The signature is
     * that of the board layer's UART write, so it can be used directly. */
    int (*write)(void *context, const uint8_t *bytes, size_t length);
    void *write_context;

    /* Longest decoded frame this device accepts and sends, reported by hello;
     * LPN_PROTOCOL_MIN_FRAME..LPN_PROTO_MAX_FRAME, and large enough for a learn
     * request and a predict reply of this learner. */
    uint16_t max_frame;

    /* Receive and transmit buffers, each at least
     * LPN_PROTOCOL_BUFFER_SIZE(max_frame) bytes. The tx buffer also holds the
     * last reply, which a repeated request (same seq and CRC) gets again. */
    uint8_t *rx_buffer;
    size_t rx_size;
    uint8_t *tx_buffer;
    size_t tx_size;

    /* Scratch for the decoded vectors: at least inputs + outputs values. */
    int16_t *vectors;
    size_t vectors_length;

    /* Optional (NULL: get_state and put_state_* reply unsupported): at least
     * info.state_bytes bytes, holding a get_state snapshot or a staged upload. */
    uint8_t *state_buffer;
    size_t state_buffer_size;
};

enum lpn_transfer {
    LPN_TRANSFER_NONE = 0,
    LPN_TRANSFER_SNAPSHOT = 1, /* state_buffer holds a get_state snapshot */
    LPN_TRANSFER_UPLOAD = 2    /* state_buffer holds a put_state upload */
};

/* The dispatcher's state; treat the fields as private. */
struct lpn_protocol {
    struct lpn_protocol_config cfg;
    struct lpn_frame_assembler rx;
    uint16_t inputs, outputs;
    uint8_t tasks, layers;
    uint32_t state_bytes;
    size_t tx_offset;       /* where a raw reply starts in tx, leaving room to encode in place */
    size_t tx_length;       /* encoded bytes of the cached reply, delimiter included */
    uint8_t cached;         /* tx holds the reply to (last_seq, last_crc) */
    uint8_t last_seq;
    uint32_t last_crc;
    uint8_t transfer;       /* enum lpn_transfer */
    uint32_t transfer_total;
    uint32_t transfer_crc;
    uint32_t transfer_received;
};

/*
 * Checks the configuration, reads the learner's sizes through ops->info, and
 * sends one delimiter so a host that saw noise before (a boot message) starts
 * afresh. Returns 0, LPN_PROTO_ERR_BAD_ARGUMENT (NULL pointer, no info
 * callback, max_frame out of range, too many layers, no tasks),
 * LPN_PROTO_ERR_BAD_LENGTH (a buffer smaller than this learner needs), the
 * info callback's error, or the write callback's error.
 */
int lpn_protocol_init(struct lpn_protocol *p, const struct lpn_protocol_config *config);

/*
 * Feeds one received byte. Returns 0 when more bytes are needed, 1 when a frame
 * ended and its reply was sent (an error reply counts), or the write callback's
 * negative code if sending failed.
 */
int lpn_protocol_feed(struct lpn_protocol *p, uint8_t byte);

#ifdef __cplusplus
}
#endif

#endif /* LPN_PROTOCOL_H */

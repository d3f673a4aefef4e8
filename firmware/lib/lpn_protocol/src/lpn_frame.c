/*
 * Framing helpers of the LPN serial protocol: CRC-32, COBS and the frame
 * assembler. See lpn_protocol.h for the contracts.
 */
#include "lpn_protocol.h"

/* Bitwise rather than table-driven: no 1 KB table in RAM (AVR keeps const data
 * in RAM), and a few cycles per bit are nothing next to the serial line. */
uint32_t lpn_crc32_update(uint32_t crc, const uint8_t *data, size_t length)
{
    size_t i;
    int bit;

    crc = ~crc;
    for (i = 0; i < length; i++) {
        crc ^= data[i];
        for (bit = 0; bit < 8; bit++) {
            uint32_t mask = (uint32_t)0u - (crc & 1u);
            crc = (crc >> 1) ^ (UINT32_C(0xEDB88320) & mask);
        }
    }
    return ~crc;
}

/* A block's code byte is written only when the block closes, so at input byte i
 * nothing beyond out[i + 1 + i/254] has been written; the in-place condition in
 * the header keeps every write at or behind the input already read. */
size_t lpn_cobs_encode(const uint8_t *in, size_t length, uint8_t *out, size_t capacity)
{
    size_t i;
    size_t o = 1;
    size_t code_at = 0;
    uint8_t code = 1;

    if (capacity < LPN_COBS_MAX_ENCODED(length)) {
        return 0;
    }
    for (i = 0; i < length; i++) {
        uint8_t byte = in[i];
        if (byte == 0u) {
            out[code_at] = code;
            code_at = o++;
            code = 1;
            continue;
        }
        out[o++] = byte;
        code++;
        if (code == 0xFFu) {
            out[code_at] = code;
            code_at = o++;
            code = 1;
        }
    }
    out[code_at] = code;
    return o;
}

/* Each block's code byte yields no output, so the write position stays behind
 * the read position and `out == in` is safe. */
long lpn_cobs_decode(const uint8_t *in, size_t length, uint8_t *out, size_t capacity, size_t *decoded)
{
    size_t i = 0;
    size_t o = 0;

    while (i < length) {
        uint8_t code = in[i];
        size_t end;
        size_t j;

        if (code == 0u || (size_t)code > length - i) {
            goto fail;
        }
        end = i + code;
        for (j = i + 1u; j < end; j++) {
            if (in[j] == 0u || o >= capacity) {
                goto fail;
            }
            out[o++] = in[j];
        }
        i = end;
        if (code != 0xFFu && i < length) {
            if (o >= capacity) {
                goto fail;
            }
            out[o++] = 0u;
        }
    }
    if (decoded != NULL) {
        *decoded = o;
    }
    return (long)o;

fail:
    if (decoded != NULL) {
        *decoded = o;
    }
    return -1;
}

void lpn_frame_assembler_init(struct lpn_frame_assembler *fa, uint8_t *buffer, size_t capacity)
{
    fa->buffer = buffer;
    fa->capacity = capacity;
    fa->length = 0;
    fa->overflow = 0;
    fa->done = 0;
}

enum lpn_frame_event lpn_frame_assembler_feed(struct lpn_frame_assembler *fa, uint8_t byte)
{
    if (fa->done) {
        fa->length = 0;
        fa->overflow = 0;
        fa->done = 0;
    }
    if (byte == 0u) {
        if (fa->overflow) {
            fa->done = 1;
            return LPN_FRAME_OVERSIZED;
        }
        if (fa->length == 0u) {
            return LPN_FRAME_MORE;
        }
        fa->done = 1;
        return LPN_FRAME_READY;
    }
    /* Past the buffer, keep only the fact: the frame is answered as oversized
     * once its delimiter arrives, and the bytes in between are dropped. */
    if (fa->length < fa->capacity) {
        fa->buffer[fa->length++] = byte;
    } else {
        fa->overflow = 1;
    }
    return LPN_FRAME_MORE;
}

#include <string.h>

#include "lpn_core.h"

void lpn_copy_from_flash(uint8_t *dst, const uint8_t *src, size_t n)
{
#if defined(__AVR__)
    memcpy_P(dst, src, n);
#else
    memcpy(dst, src, n);
#endif
}

int32_t lpn_unpacked(const uint8_t *packed, uint32_t index, unsigned bits, int is_signed)
{
    uint32_t pos = index * bits; /* bit position; images stay far below 2^32 bits */
    uint32_t value = 0;
    unsigned got = 0;
    while (got < bits) {
        const unsigned offset = (unsigned)(pos & 7u);
        unsigned take = 8u - offset;
        uint32_t byte = LPN_RD_U8(&packed[pos >> 3]);
        if (take > bits - got) {
            take = bits - got;
        }
        value |= ((byte >> offset) & ((1UL << take) - 1u)) << got;
        got += take;
        pos += take;
    }
    if (is_signed && bits > 0u && (value >> (bits - 1u)) != 0u) {
        return (int32_t)((int64_t)value - ((int64_t)1 << bits)); /* two's complement in `bits` bits */
    }
    return (int32_t)value;
}

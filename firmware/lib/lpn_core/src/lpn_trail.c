#include <string.h>

#include "lpn_core.h"

#if LPN_UNROLL && defined(__GNUC__)
/* The builtin: firmware builds are -ffreestanding, where memcpy is a call. */
#define LPN_COPY4(dst, src) __builtin_memcpy((dst), (src), 4u)
#else
#define LPN_COPY4(dst, src) memcpy((dst), (src), 4u)
#endif

void lpn_evaporate_u8(uint8_t *v, uint32_t n, unsigned shift)
{
    uint32_t i = 0;
    if (shift >= 8u) {
        return; /* v >> shift is 0 for every byte */
    }
#if LPN_UNROLL
    {
        const uint32_t mask = 0x01010101u * (0xFFu >> shift);
        for (; i + 4u <= n; i += 4u) {
            uint32_t word;
            LPN_COPY4(&word, v + i);
            word -= (word >> shift) & mask;
            LPN_COPY4(v + i, &word);
        }
    }
#endif
    for (; i < n; ++i) {
        v[i] = (uint8_t)(v[i] - (v[i] >> shift));
    }
}

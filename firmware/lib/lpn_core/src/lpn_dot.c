#include "lpn_core.h"

void lpn_gather_s16_u8(int16_t *dst, const int16_t *x, const uint8_t *src, uint32_t n, uint32_t width)
{
    int16_t *const counted = dst + n;
    int16_t *const end = dst + width;
    while (dst != counted) {
        *dst++ = x[*src++];
    }
    while (dst != end) {
        *dst++ = 0;
    }
}

void lpn_gather_s16_u16(int16_t *dst, const int16_t *x, const uint16_t *src, uint32_t n, uint32_t width)
{
    int16_t *const counted = dst + n;
    int16_t *const end = dst + width;
    while (dst != counted) {
        *dst++ = x[*src++];
    }
    while (dst != end) {
        *dst++ = 0;
    }
}

/*
 * lpn_dot: two products of int16 weights and int16 inputs added to an int64
 * accumulator, the step the generated forward passes are unrolled from.
 *
 * On cores with the Arm DSP extension (Cortex-M4, M7, M33: __ARM_FEATURE_SIMD32)
 * it is one SMLALD instruction on two 32-bit loads; elsewhere two plain
 * multiply-adds. Both give the same sum: integer addition is associative, and
 * the tests compare the firmware's whole state with the Python model's.
 */
#ifndef LPN_DOT_H
#define LPN_DOT_H

#include <stdint.h>

#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32 && defined(__GNUC__)
#include <arm_acle.h>

/* Two int16 values as one 32-bit word, low half first (little-endian), as
 * SMLALD reads them. A memcpy keeps it free of aliasing rules and alignment,
 * and the compiler makes it one LDR, which Armv7-M allows unaligned; the
 * builtin because firmware builds are -ffreestanding, where memcpy is a call. */
static inline __attribute__((always_inline)) int16x2_t lpn_pair_s16(const int16_t *p)
{
    int16x2_t v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

/* acc + w[0] * x[0] + w[1] * x[1]. Requires two readable values behind w and x
 * (any alignment) and a caller's bound that keeps the sum inside int64. */
static inline __attribute__((always_inline)) int64_t lpn_mac2_s16(int64_t acc, const int16_t *w, const int16_t *x)
{
    return __smlald(lpn_pair_s16(w), lpn_pair_s16(x), acc);
}
#else
/* acc + w[0] * x[0] + w[1] * x[1]. Requires two readable values behind w and x
 * and a caller's bound that keeps the sum inside int64. */
static inline int64_t lpn_mac2_s16(int64_t acc, const int16_t *w, const int16_t *x)
{
    return acc + (int32_t)w[0] * (int32_t)x[0] + (int32_t)w[1] * (int32_t)x[1];
}
#endif

/*
 * dst[k] = x[src[k]] for k < n, then dst[k] = 0 for n <= k < width: the inputs
 * a run of units shares, gathered once into a contiguous row (zero where a unit
 * has fewer sources than slots, so those products vanish). Requires n <= width,
 * width values behind dst and n indices into x behind src (a RAM table: these
 * serve the 32-bit forward pass, where const tables are ordinary memory).
 * A function of its own so its loop gets registers of its own.
 */
void lpn_gather_s16_u8(int16_t *dst, const int16_t *x, const uint8_t *src, uint32_t n, uint32_t width);
void lpn_gather_s16_u16(int16_t *dst, const int16_t *x, const uint16_t *src, uint32_t n, uint32_t width);

#endif /* LPN_DOT_H */

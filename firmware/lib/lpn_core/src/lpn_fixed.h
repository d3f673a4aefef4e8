/*
 * Fixed-point helpers of docs/fixed-point.md section 1.
 *
 * C leaves `>>` of a negative value implementation-defined and `<<` of one
 * undefined, so signed shifts go through lpn_floor_shr, which shifts only
 * non-negative values. The callers' bounds (given in the generated code next to
 * each product) keep every intermediate within int64.
 */
#ifndef LPN_FIXED_H
#define LPN_FIXED_H

#include <stdint.h>

#define LPN_I16_MIN (-32768)
#define LPN_I16_MAX 32767
#define LPN_U8_MAX 255
#define LPN_I31_MAX 2147483647LL
#define LPN_U32_MAX 4294967295ULL

/* floor(v / 2^n) for 0 <= n <= 62; defined for every int64 v. */
static inline int64_t lpn_floor_shr(int64_t v, unsigned n)
{
    if (v >= 0) {
        return (int64_t)((uint64_t)v >> n);
    }
    /* -(v + 1) is non-negative and cannot overflow, even for INT64_MIN. */
    return -(int64_t)((uint64_t)(-(v + 1)) >> n) - 1;
}

/* asr(v, n): floor division by 2^n (the loss averages use it). */
static inline int64_t lpn_asr(int64_t v, unsigned n) { return lpn_floor_shr(v, n); }

/*
 * rshr(v, n): divide by 2^n rounding half up, so -2.5 goes to -2; 0 <= n <= 62.
 * Exact for |v| < 2^61 (every caller's bound). Branch-free, because the sign of
 * a learning update is as good as random: offsetting by 2^62 makes the value
 * non-negative, and 2^62 / 2^n is taken off again after the shift. The sums are
 * unsigned, so even a value outside the bound has no undefined behaviour.
 */
static inline int64_t lpn_rshr(int64_t v, unsigned n)
{
    const uint64_t offset = (uint64_t)1 << 62;
    uint64_t u;
    if (n == 0) {
        return v;
    }
    u = (uint64_t)v + offset + ((uint64_t)1 << (n - 1));
    return (int64_t)(u >> n) - (int64_t)(offset >> n);
}

/* rshr for a value known to be non-negative (< 2^63 - 2^(n-1)). */
static inline uint64_t lpn_rshr_u(uint64_t v, unsigned n)
{
    if (n == 0) {
        return v;
    }
    return (v + ((uint64_t)1 << (n - 1))) >> n;
}

/* mulq(a, b, n) = rshr(a * b, n) with a product that stays below 2^62. */
static inline int64_t lpn_mulq(int64_t a, int64_t b, unsigned n) { return lpn_rshr(a * b, n); }

/* rshr_u for a value whose rounding sum fits 32 bits (the caller's bound). */
static inline uint32_t lpn_rshr_u32(uint32_t v, unsigned n)
{
    if (n == 0) {
        return v;
    }
    return (v + ((uint32_t)1 << (n - 1))) >> n;
}

/* mulq of two non-negative factors. */
static inline uint64_t lpn_mulq_u(uint64_t a, uint64_t b, unsigned n) { return lpn_rshr_u(a * b, n); }

static inline int64_t lpn_sat(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* s16: every narrowing to int16 saturates. */
static inline int16_t lpn_s16(int64_t v) { return (int16_t)lpn_sat(v, LPN_I16_MIN, LPN_I16_MAX); }

/* s16(rshr(v, n)) for |v| < 2^(30 + n) (the caller's bound): the rounded value
 * fits int32, so only its low word is kept and the saturation compares 32-bit
 * values. The same result as lpn_s16(lpn_rshr(v, n)), in fewer instructions. */
static inline int16_t lpn_rshr_s16(int64_t v, unsigned n)
{
    const int32_t r = (int32_t)lpn_rshr(v, n);
    return (int16_t)(r < LPN_I16_MIN ? LPN_I16_MIN : (r > LPN_I16_MAX ? LPN_I16_MAX : r));
}

/* u8: every narrowing of a trail or a consolidation strength saturates. */
static inline uint8_t lpn_u8(int64_t v) { return (uint8_t)lpn_sat(v, 0, LPN_U8_MAX); }

static inline uint64_t lpn_min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* |v| of an int16 as an unsigned value (|-32768| does not fit int16). */
static inline uint32_t lpn_abs16(int16_t v) { return v < 0 ? (uint32_t)(-(int32_t)v) : (uint32_t)v; }

#endif /* LPN_FIXED_H */

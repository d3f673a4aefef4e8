/*
 * xorshift32, the one PRNG behind every random choice a learner makes after
 * construction (docs/fixed-point.md section 4). Every backend draws the same
 * numbers in the same order, which is what keeps replay, regrowth and the
 * contrastive perturbation bit-identical across them.
 */
#ifndef LPN_PRNG_H
#define LPN_PRNG_H

#include <stdint.h>

/* Advance *state (never 0) and return the new value. */
static inline uint32_t lpn_prng_next(uint32_t *state)
{
    uint32_t x = *state;
    x ^= (uint32_t)(x << 13);
    x ^= x >> 17;
    x ^= (uint32_t)(x << 5);
    *state = x;
    return x;
}

/* A value in [0, n) as next() % n; requires n >= 1. */
static inline uint32_t lpn_prng_below(uint32_t *state, uint32_t n)
{
    return lpn_prng_next(state) % n;
}

#endif /* LPN_PRNG_H */

/*
 * Top-B selection without a score array (docs/fixed-point.md section 7, step 2).
 *
 * A layer learns at the B slots with the largest positive score, ties going to
 * the lower flat index. Storing a 64-bit score per slot would cost more RAM than
 * the synapses themselves, so the generated code recomputes scores in a few
 * passes over the slots and this selector narrows down the B-th largest score:
 *
 *   lpn_topb_begin(&sel, budget);
 *   for every slot: lpn_topb_first(&sel, score);        -- histogram of bit lengths
 *   lpn_topb_after_first(&sel);
 *   while (!sel.decided) {
 *       for every slot: lpn_topb_feed(&sel, score);     -- a narrower bucket
 *       lpn_topb_resolve(&sel);
 *   }
 *   for every slot, in flat index order:
 *       if (lpn_topb_take(&sel, score)) learn at the slot;
 *
 * The result is a threshold: a slot is taken when its score exceeds `above`, or
 * equals it while fewer than `ties` slots of that score were taken before it.
 * Each pass either resolves the threshold or shrinks the candidate bucket by 6
 * bits; once the bucket holds at most LPN_TOPB_CACHE scores they are sorted in
 * a small buffer. Typical layers need three passes in all.
 */
#ifndef LPN_SELECT_H
#define LPN_SELECT_H

#include <stdint.h>

/*
 * LPN_TOPB_SUB_BITS: the first pass sorts scores into bins of their bit length
 * and the S bits after the leading one (2^S bins per bit length), so the bucket
 * that holds the threshold is 2^S times narrower and, with a cache that holds
 * it, one pass fewer is needed. It costs 4 * (2^S - 1 + (64 - S) * 2^S) bytes
 * of stack (S = 3: about 2 KB), so 8-bit parts keep S = 0 (64 bins, 256 bytes).
 * The selection itself is the same whatever S and the cache are.
 */
#ifndef LPN_TOPB_SUB_BITS
#if defined(__AVR__)
#define LPN_TOPB_SUB_BITS 0
#else
#define LPN_TOPB_SUB_BITS 3
#endif
#endif
#ifndef LPN_TOPB_CACHE
#if defined(__AVR__)
#define LPN_TOPB_CACHE 16 /* scores sorted directly once the bucket is this small */
#else
#define LPN_TOPB_CACHE 64
#endif
#endif
#define LPN_TOPB_BINS 64 /* bins of a digit pass */
/* Bins of the first pass: values below 2^(S+1) one each, then 2^S per bit length. */
#define LPN_TOPB_FIRST_BINS (((1u << LPN_TOPB_SUB_BITS) - 1u) + (64u - LPN_TOPB_SUB_BITS) * (1u << LPN_TOPB_SUB_BITS))
#define LPN_TOPB_HIST (LPN_TOPB_FIRST_BINS > LPN_TOPB_BINS ? LPN_TOPB_FIRST_BINS : LPN_TOPB_BINS)
/* The type that counts a layer's slots per bin: it must hold the synapse count
 * of the largest layer. An 8-bit part, whose 2 KB of RAM cannot hold 2^16
 * synapses, passes -DLPN_TOPB_COUNT=uint16_t and keeps 128 bytes of stack. */
#ifndef LPN_TOPB_COUNT
#define LPN_TOPB_COUNT uint32_t
#endif

typedef struct {
    uint64_t above;    /* every score > above is taken */
    uint32_t ties;     /* ... and the first `ties` slots whose score == above */
    uint32_t taken;    /* ties taken so far by lpn_topb_take */
    uint32_t need;     /* slots still to take inside the bucket [lo, hi] */
    uint32_t in_bucket;
    uint64_t lo, hi;   /* the bucket of scores that holds the threshold */
    uint8_t shift;     /* digit shift within the bucket (digit mode) */
    uint8_t mode;      /* what the next feeding pass does */
    uint8_t decided;   /* 1 once `above` and `ties` are final */
    uint32_t cached;
    LPN_TOPB_COUNT hist[LPN_TOPB_HIST];
    uint64_t cache[LPN_TOPB_CACHE];
} lpn_topb;

enum { LPN_TOPB_DIGITS = 0, LPN_TOPB_COLLECT = 1 };

/* Start a selection of at most `budget` slots. */
void lpn_topb_begin(lpn_topb *sel, uint32_t budget);

/* Number of significant bits of v >= 1 (1..64). */
static inline unsigned lpn_bit_length(uint64_t v)
{
#if defined(__GNUC__)
    return 64u - (unsigned)__builtin_clzll(v);
#else
    unsigned n = 0;
    while (v != 0u) {
        v >>= 1;
        ++n;
    }
    return n;
#endif
}

/* The first pass's bin of a score >= 1: score - 1 below 2^(S+1), else the bit
 * length's 2^S bins, told apart by the S bits after the leading one. */
static inline uint32_t lpn_topb_first_bin(uint64_t score)
{
#if LPN_TOPB_SUB_BITS == 0
    return lpn_bit_length(score) - 1u;
#else
    const unsigned length = lpn_bit_length(score);
    if (length <= LPN_TOPB_SUB_BITS + 1u) {
        return (uint32_t)score - 1u;
    }
    {
        const unsigned q = length - 1u - LPN_TOPB_SUB_BITS; /* >= 1: width of a bin is 2^q */
        const uint32_t m = (uint32_t)(score >> q) & ((1u << LPN_TOPB_SUB_BITS) - 1u);
        return ((1u << LPN_TOPB_SUB_BITS) - 1u) + ((uint32_t)q << LPN_TOPB_SUB_BITS) + m;
    }
#endif
}

/* First pass: record one slot's score (zero scores may be passed or skipped). */
static LPN_HOT_INLINE void lpn_topb_first(lpn_topb *sel, uint64_t score)
{
    if (score != 0u) {
        sel->hist[lpn_topb_first_bin(score)]++;
        sel->in_bucket++; /* counts every positive score in this pass */
    }
}

/* After the first pass: decide, or set up the next pass. */
void lpn_topb_after_first(lpn_topb *sel);

/* Later passes: record one slot's score. */
static LPN_HOT_INLINE void lpn_topb_feed(lpn_topb *sel, uint64_t score)
{
    if (score < sel->lo || score > sel->hi) {
        return;
    }
    if (sel->mode == LPN_TOPB_COLLECT) {
        if (sel->cached < LPN_TOPB_CACHE) {
            sel->cache[sel->cached] = score;
        }
        sel->cached++;
    } else {
        sel->hist[(score - sel->lo) >> sel->shift]++;
    }
}

/* After a later pass: decide, or narrow the bucket for one more pass. */
void lpn_topb_resolve(lpn_topb *sel);

/* Whether the slot with this score is selected; call in flat index order. */
static LPN_HOT_INLINE int lpn_topb_take(lpn_topb *sel, uint64_t score)
{
    if (score > sel->above) {
        return 1;
    }
    if (score == sel->above && score != 0u && sel->taken < sel->ties) {
        sel->taken++;
        return 1;
    }
    return 0;
}

#endif /* LPN_SELECT_H */

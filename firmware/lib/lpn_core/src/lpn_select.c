#include "lpn_core.h"

#define LPN_TOPB_DIGIT_BITS 6u /* 2^6 bins: the histogram is shared with the first pass */

/* A digit pass uses the first LPN_TOPB_BINS bins only. */
static void clear_hist(lpn_topb *sel, uint32_t bins)
{
    uint32_t i;
    for (i = 0; i < bins; ++i) {
        sel->hist[i] = 0;
    }
}

void lpn_topb_begin(lpn_topb *sel, uint32_t budget)
{
    sel->above = 0;
    sel->ties = 0;
    sel->taken = 0;
    sel->need = budget;
    sel->in_bucket = 0;
    sel->lo = 1;
    sel->hi = UINT64_MAX;
    sel->shift = 0;
    sel->mode = LPN_TOPB_DIGITS;
    sel->decided = 0;
    sel->cached = 0;
    clear_hist(sel, LPN_TOPB_FIRST_BINS);
}

/* The bucket [lo, hi] holds `in_bucket` scores of which `need` are taken. */
static void settle(lpn_topb *sel)
{
    if (sel->in_bucket == sel->need) {
        sel->above = sel->lo - 1u; /* lo >= 1: take the whole bucket and above */
        sel->ties = 0;
        sel->decided = 1;
    } else if (sel->lo == sel->hi) {
        sel->above = sel->lo; /* one score value: ties go to the lower index */
        sel->ties = sel->need;
        sel->decided = 1;
    } else if (sel->in_bucket <= LPN_TOPB_CACHE) {
        sel->mode = LPN_TOPB_COLLECT;
        sel->cached = 0;
    } else {
        unsigned width = lpn_bit_length(sel->hi - sel->lo); /* the bucket spans 2^width values */
        unsigned digit = width < LPN_TOPB_DIGIT_BITS ? width : LPN_TOPB_DIGIT_BITS;
        sel->mode = LPN_TOPB_DIGITS;
        sel->shift = (uint8_t)(width - digit);
        clear_hist(sel, LPN_TOPB_BINS);
    }
}

void lpn_topb_after_first(lpn_topb *sel)
{
    uint32_t b;
    if (sel->in_bucket <= sel->need) {
        sel->above = 0; /* every positive score fits in the budget */
        sel->ties = 0;
        sel->decided = 1;
        return;
    }
    if (sel->need == 0u) {
        sel->above = UINT64_MAX;
        sel->ties = 0;
        sel->decided = 1;
        return;
    }
    for (b = LPN_TOPB_FIRST_BINS - 1u; b > 0u && sel->hist[b] < sel->need; --b) {
        sel->need -= sel->hist[b];
    }
    /* The values of bin b (lpn_topb_first_bin's inverse). */
    if (b < (2u << LPN_TOPB_SUB_BITS) - 1u) {
        sel->lo = (uint64_t)b + 1u; /* one value per bin */
        sel->hi = sel->lo;
    } else {
        const uint32_t above_base = b - ((1u << LPN_TOPB_SUB_BITS) - 1u);
        const unsigned q = (unsigned)(above_base >> LPN_TOPB_SUB_BITS);
        const uint64_t m = above_base & ((1u << LPN_TOPB_SUB_BITS) - 1u);
        sel->lo = (((uint64_t)1 << LPN_TOPB_SUB_BITS) + m) << q;
        sel->hi = sel->lo + (((uint64_t)1 << q) - 1u);
    }
    sel->in_bucket = sel->hist[b];
    settle(sel);
}

static void sort_descending(uint64_t *v, uint32_t n)
{
    uint32_t i;
    for (i = 1; i < n; ++i) {
        uint64_t x = v[i];
        uint32_t j = i;
        while (j > 0u && v[j - 1u] < x) {
            v[j] = v[j - 1u];
            --j;
        }
        v[j] = x;
    }
}

void lpn_topb_resolve(lpn_topb *sel)
{
    if (sel->mode == LPN_TOPB_COLLECT) {
        uint32_t i;
        uint64_t threshold;
        sort_descending(sel->cache, sel->cached);
        threshold = sel->cache[sel->need - 1u];
        sel->above = threshold;
        sel->ties = 0;
        for (i = 0; i < sel->need; ++i) {
            if (sel->cache[i] == threshold) {
                sel->ties++;
            }
        }
        sel->decided = 1;
    } else {
        uint32_t d = (uint32_t)((sel->hi - sel->lo) >> sel->shift);
        for (; d > 0u && sel->hist[d] < sel->need; --d) {
            sel->need -= sel->hist[d];
        }
        sel->lo += (uint64_t)d << sel->shift;
        sel->hi = sel->lo + (((uint64_t)1 << sel->shift) - 1u);
        sel->in_bucket = sel->hist[d];
        settle(sel);
    }
}

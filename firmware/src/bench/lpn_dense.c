/* The dense backprop baseline of `lpn bench device`; the arithmetic is specified in lpn_dense.h. */
#include "lpn_dense.h"

#define NI LPN_DENSE_INPUTS
#define NH LPN_DENSE_HIDDEN
#define NO LPN_DENSE_OUTPUTS

#define SHIFT_H (LPN_DENSE_IN_FRAC + LPN_DENSE_W_FRAC - LPN_DENSE_H_FRAC)
#define SHIFT_Y (LPN_DENSE_H_FRAC + LPN_DENSE_W_FRAC - LPN_DENSE_OUT_FRAC)
#define SHIFT_D LPN_DENSE_W_FRAC
#define SHIFT_W2 (LPN_DENSE_OUT_FRAC + LPN_DENSE_H_FRAC - LPN_DENSE_W_FRAC + LPN_DENSE_LR_SHIFT)
#define SHIFT_W1 (LPN_DENSE_OUT_FRAC + LPN_DENSE_IN_FRAC - LPN_DENSE_W_FRAC + LPN_DENSE_LR_SHIFT)
#define SHIFT_B (LPN_DENSE_OUT_FRAC - LPN_DENSE_W_FRAC + LPN_DENSE_LR_SHIFT)

/* Every shift above must be a valid non-negative shift of an int64. */
typedef char lpn_dense_shifts_ok[(SHIFT_H >= 0 && SHIFT_Y >= 0 && SHIFT_W2 >= 0 && SHIFT_W1 >= 0 &&
                                  SHIFT_B >= 0 && SHIFT_W1 < 63) ? 1 : -1];

/* One block, so the parameters can be handed out in their documented order. */
static struct {
    int16_t w1[NH][NI];
    int16_t b1[NH];
    int16_t w2[NO][NH];
    int16_t b2[NO];
} p;

static int16_t h[NH];
static int16_t y_work[NO];
static int32_t e[NO];

/* Floor division by 2^s without relying on how >> treats negative numbers. */
static int64_t asr(int64_t v, unsigned s)
{
    return v >= 0 ? v >> s : -((-(v + 1)) >> s) - 1;
}

static int16_t sat16(int64_t v)
{
    return (int16_t)(v > INT16_MAX ? INT16_MAX : v < INT16_MIN ? INT16_MIN : v);
}

static int32_t sat32(int64_t v)
{
    return (int32_t)(v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : v);
}

static uint32_t xorshift32(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

static int16_t init_weight(uint32_t *state)
{
    return (int16_t)((long)(xorshift32(state) % (2u * LPN_DENSE_W_INIT)) - LPN_DENSE_W_INIT);
}

void lpn_dense_init(uint32_t seed)
{
    uint32_t state = seed != 0u ? seed : 1u;
    int j, i, o;

    for (j = 0; j < NH; j++) {
        for (i = 0; i < NI; i++) {
            p.w1[j][i] = init_weight(&state);
        }
        p.b1[j] = 0;
    }
    for (o = 0; o < NO; o++) {
        for (j = 0; j < NH; j++) {
            p.w2[o][j] = init_weight(&state);
        }
        p.b2[o] = 0;
    }
}

static void forward(const int16_t *x, int16_t *y)
{
    int j, i, o;

    for (j = 0; j < NH; j++) {
        int64_t acc = (int64_t)p.b1[j] * ((int64_t)1 << LPN_DENSE_IN_FRAC);
        for (i = 0; i < NI; i++) {
            acc += (int32_t)p.w1[j][i] * x[i];
        }
        h[j] = acc > 0 ? sat16(acc >> SHIFT_H) : 0;
    }
    for (o = 0; o < NO; o++) {
        int64_t acc = (int64_t)p.b2[o] * ((int64_t)1 << LPN_DENSE_H_FRAC);
        for (j = 0; j < NH; j++) {
            acc += (int32_t)p.w2[o][j] * h[j];
        }
        y[o] = sat16(asr(acc, SHIFT_Y));
    }
}

void lpn_dense_predict(const int16_t *x, int16_t *y)
{
    forward(x, y);
}

void lpn_dense_learn(const int16_t *x, const int16_t *t)
{
    int j, i, o;

    forward(x, y_work);
    for (o = 0; o < NO; o++) {
        e[o] = (int32_t)y_work[o] - t[o];
    }
    /* Hidden errors from W2 before its step, then W2's step, then W1's: each
     * hidden unit's error is used right away, so it needs no array. */
    for (j = 0; j < NH; j++) {
        int64_t back = 0;
        int32_t d;
        for (o = 0; o < NO; o++) {
            back += (int64_t)p.w2[o][j] * e[o];
        }
        d = h[j] > 0 ? sat32(asr(back, SHIFT_D)) : 0;
        for (o = 0; o < NO; o++) {
            p.w2[o][j] = sat16((int64_t)p.w2[o][j] - asr((int64_t)e[o] * h[j], SHIFT_W2));
        }
        if (d != 0) {
            for (i = 0; i < NI; i++) {
                p.w1[j][i] = sat16((int64_t)p.w1[j][i] - asr((int64_t)d * x[i], SHIFT_W1));
            }
            p.b1[j] = sat16((int64_t)p.b1[j] - asr(d, SHIFT_B));
        }
    }
    for (o = 0; o < NO; o++) {
        p.b2[o] = sat16((int64_t)p.b2[o] - asr(e[o], SHIFT_B));
    }
}

const int16_t *lpn_dense_parameters(void)
{
    return &p.w1[0][0];
}

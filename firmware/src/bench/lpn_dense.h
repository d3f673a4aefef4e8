/*
 * The baseline `lpn bench device` measures the learner against: a dense
 * fixed-point MLP (inputs -> hidden ReLU -> linear outputs) trained by plain
 * backpropagation, one SGD step per sample, with about as many parameters as
 * the learner has synapses. It uses the learner's input and output formats, so
 * both run on the very same int16 vectors.
 *
 * Arithmetic (all integer, C99, no float; one truth for it is this file, and
 * tests/test_bench_device.py checks it against a numpy reimplementation):
 *   weights and biases int16 with LPN_DENSE_W_FRAC fraction bits, hidden
 *   activations int16 with LPN_DENSE_H_FRAC, accumulators int64 (as the
 *   learner's), every narrowing saturated, every right shift a floor (asr).
 *   forward   h = sat16(max(0, asr(W1 x + b1, IN_FRAC + W_FRAC - H_FRAC)))
 *             y = sat16(asr(W2 h + b2, H_FRAC + W_FRAC - OUT_FRAC))
 *   backward  e = y - t;  d = (h > 0) ? asr(W2^T e, W_FRAC) : 0   (W2 before the step)
 *   step      W2 -= asr(e h^T, OUT_FRAC + H_FRAC - W_FRAC + LR_SHIFT), b2 -= asr(e, OUT_FRAC - W_FRAC + LR_SHIFT)
 *             W1 -= asr(d x^T, OUT_FRAC + IN_FRAC - W_FRAC + LR_SHIFT), b1 -= asr(d, OUT_FRAC - W_FRAC + LR_SHIFT)
 *   init      weights uniform in [-W_INIT, W_INIT) from xorshift32(seed), W1 row by
 *             row, then W2; biases 0.
 *
 * Sizes come from the generated learner (learner.h) unless LPN_DENSE_INPUTS is
 * defined (the desktop test passes them all).
 */
#ifndef LPN_DENSE_H
#define LPN_DENSE_H

#include <stdint.h>

#ifndef LPN_DENSE_INPUTS
#include "learner.h"
#define LPN_DENSE_INPUTS LEARNER_N_INPUTS
#define LPN_DENSE_OUTPUTS LEARNER_N_OUTPUTS
#define LPN_DENSE_IN_FRAC LEARNER_INPUT_FRAC
#define LPN_DENSE_OUT_FRAC LEARNER_OUTPUT_FRAC
#endif

/* The hidden width: the build passes the one whose parameter count,
 * H * (inputs + outputs + 1) + outputs, is nearest the learner's (synapses and
 * biases), as lpn.bench_host.mlp_hidden_for computes it for every baseline. */
#ifndef LPN_DENSE_HIDDEN
#error "LPN_DENSE_HIDDEN (the hidden width) comes from the build: lpn bench device passes it"
#endif

#define LPN_DENSE_W_FRAC 12
#define LPN_DENSE_H_FRAC 12
#define LPN_DENSE_LR_SHIFT 5  /* learning rate 2^-5 */
#define LPN_DENSE_W_INIT 410  /* about 0.1 */

void lpn_dense_init(uint32_t seed);

/* Forward pass: y[outputs] from x[inputs]. */
void lpn_dense_predict(const int16_t *x, int16_t *y);

/* One SGD step of squared error towards t[outputs] (its own forward pass included). */
void lpn_dense_learn(const int16_t *x, const int16_t *t);

/* The parameters, for checks: W1 (hidden x inputs), b1, W2 (outputs x hidden), b2. */
const int16_t *lpn_dense_parameters(void);

#endif /* LPN_DENSE_H */

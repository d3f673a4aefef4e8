/*
 * The firmware of `lpn bench device`: the generated learner and the dense
 * backprop baseline (lpn_dense.h) run on the same deterministic samples, each
 * step between two markers, then the program ends itself. Built only by the
 * bench_* environments (envs/bench.ini); the production firmware has none of it.
 *
 * Markers: on Arm, calls of the never-inlined empty functions lpn_mark_begin
 * and lpn_mark_end, whose addresses the QEMU plugin (tools/qemu-icount) watches
 * to count the instructions executed between them; on AVR, pin PB5 raised and
 * lowered (SBI/CBI), whose edges simavr-bridge stamps with the exact cycle.
 * Interrupts are off while measuring, so a timer tick never lands in a span.
 *
 * Each of LPN_BENCH_REPS rounds measures, in this order (host/lpn/bench_device.py
 * relies on it):  an empty span (the markers' own cost), learner predict,
 * learner learn, dense predict, dense learn.
 * The learner learns under task 0 throughout (no task switch), with replay and
 * the other periodic steps as its config schedules them.
 */
#include <stdint.h>

#include "learner.h"
#include "lpn_board.h"
#include "lpn_dense.h"

#ifndef LPN_BENCH_REPS
#define LPN_BENCH_REPS 8
#endif

#if defined(__AVR__)
#include <avr/interrupt.h>
#include <avr/io.h>
#define MARK_SETUP() (DDRB |= (uint8_t)(1u << DDB5))
#define MARK_BEGIN() __asm__ __volatile__("sbi %0, %1" ::"I"(_SFR_IO_ADDR(PORTB)), "I"(PORTB5) : "memory")
#define MARK_END() __asm__ __volatile__("cbi %0, %1" ::"I"(_SFR_IO_ADDR(PORTB)), "I"(PORTB5) : "memory")
#define INTERRUPTS_OFF() cli()
#else
/* Called, never inlined or cloned: the plugin needs a fixed address to watch. */
void lpn_mark_begin(void) __attribute__((noinline, noipa));
void lpn_mark_end(void) __attribute__((noinline, noipa));
void lpn_mark_begin(void)
{
    __asm__ __volatile__("" ::: "memory");
}
void lpn_mark_end(void)
{
    __asm__ __volatile__("" ::: "memory");
}
#define MARK_SETUP() ((void)0)
#define MARK_BEGIN() lpn_mark_begin()
#define MARK_END() lpn_mark_end()
#if defined(__arm__)
#define INTERRUPTS_OFF() __asm__ __volatile__("cpsid i" ::: "memory")
#else
#define INTERRUPTS_OFF() ((void)0)
#endif
#endif

static learner_model model;
static int16_t x[LEARNER_N_INPUTS];
static int16_t t[LEARNER_N_OUTPUTS];
static int16_t y[LEARNER_N_OUTPUTS];
/* Results leave through here, so no measured call can be optimised away. */
volatile int32_t lpn_bench_sink;

/* Sample r: pixels uniform in [0, 1) of the input format, a one-hot target. */
static void make_sample(uint32_t r, uint32_t *state)
{
    uint16_t i;
    for (i = 0; i < LEARNER_N_INPUTS; i++) {
        uint32_t v = *state;
        v ^= v << 13;
        v ^= v >> 17;
        v ^= v << 5;
        *state = v;
        x[i] = (int16_t)(v & ((1u << LEARNER_INPUT_FRAC) - 1u));
    }
    for (i = 0; i < LEARNER_N_OUTPUTS; i++) {
        t[i] = (int16_t)(i == r % LEARNER_N_OUTPUTS ? (1 << LEARNER_OUTPUT_FRAC) : 0);
    }
}

static int run(void)
{
    uint32_t state = 12345u;
    uint32_t r;
    int32_t sink = 0;

    if (learner_init(&model) != 0) {
        return 3;
    }
    lpn_dense_init(7u);
    MARK_SETUP();
    INTERRUPTS_OFF();
    for (r = 0; r < LPN_BENCH_REPS; r++) {
        int result;
        make_sample(r, &state);

        MARK_BEGIN();
        MARK_END();

        MARK_BEGIN();
        result = learner_predict(&model, x, LEARNER_N_INPUTS, y, LEARNER_N_OUTPUTS);
        MARK_END();
        sink += result + y[0];

        MARK_BEGIN();
        result = learner_learn(&model, x, LEARNER_N_INPUTS, t, LEARNER_N_OUTPUTS, 0u);
        MARK_END();
        if (result != 0) {
            return 4;
        }

        MARK_BEGIN();
        lpn_dense_predict(x, y);
        MARK_END();
        sink += y[0];

        MARK_BEGIN();
        lpn_dense_learn(x, t);
        MARK_END();
    }
    lpn_bench_sink = sink;
    return 0;
}

int main(void)
{
    const struct lpn_board *board = lpn_board_init();
    int code = run();

#if !defined(__AVR__)
    /* QEMU ends through semihosting. On AVR, returning from main ends a simavr
     * run (the board glue's .fini1 step), with the UART idle. */
    if (board->exit != NULL) {
        board->exit(code);
    }
#else
    (void)board;
#endif
    return code;
}

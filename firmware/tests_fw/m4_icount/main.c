/*
 * Test firmware of the QEMU instruction-counting plugin (tools/qemu-icount),
 * for QEMU mps2-an386 (Cortex-M4): runs marks.S's run_marks() twice, a C
 * function between markers twice, and returns 0, which ends QEMU through
 * semihosting (../mps2_startup.c). tests/test_icount.py checks the counts
 * between lpn_mark_begin and lpn_mark_end: 2 for the empty pair, 2 * LOOP_A + 5
 * and 2 * LOOP_B + 5 for the loops, and the same in both rounds.
 */
#include <stdint.h>

#include "../mps2_startup.h"

void run_marks(void);
void lpn_mark_begin(void);
void lpn_mark_end(void);

/* A C function the compiler may not inline, clone or move across the markers:
 * its count is whatever GCC made of it, but it must be the same every time. */
__attribute__((noinline, noipa)) static uint32_t checksum(uint32_t n)
{
    uint32_t sum = 0;
    for (uint32_t i = 0; i < n; ++i) {
        sum = sum * 31u + i;
    }
    return sum;
}

volatile uint32_t sink;

/* One copy of the measured call, so both rounds run the very same instructions. */
__attribute__((noinline, noipa)) static void measure_checksum(void)
{
    lpn_mark_begin();
    sink = checksum(50u);
    lpn_mark_end();
}

int main(void)
{
    run_marks();
    run_marks();
    measure_checksum();
    measure_checksum();
    return 0;
}

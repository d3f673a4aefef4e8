#include "stack_watermark.h"

#include <avr/io.h>

#define PAINT 0xC5u

/* From the linker script: the end of .bss, where the free RAM starts. */
extern uint8_t _end;

/* Runs from .init1, before the stack pointer, r1 and .data/.bss are set up, so
 * it is naked assembly that touches only Z and r24/r25 and no stack. It paints
 * from _end up to RAMEND, the top of the stack. */
void stack_watermark_paint(void) __attribute__((naked, used, section(".init1")));
void stack_watermark_paint(void)
{
    __asm__ volatile("ldi r30, lo8(_end)\n\t"
                     "ldi r31, hi8(_end)\n\t"
                     "ldi r24, %[paint]\n\t"
                     "ldi r25, hi8(%[top])\n\t"
                     "rjmp 2f\n"
                     "1:\n\t"
                     "st Z+, r24\n"
                     "2:\n\t"
                     "cpi r30, lo8(%[top])\n\t"
                     "cpc r31, r25\n\t"
                     "brlo 1b\n\t"
                     "breq 1b\n\t"
                     :
                     : [paint] "M"(PAINT), [top] "i"(RAMEND));
}

uint32_t stack_watermark_untouched(void)
{
    const volatile uint8_t *p = &_end;
    uint32_t count = 0;

    while ((uintptr_t)p <= (uintptr_t)RAMEND && *p == PAINT) {
        p++;
        count++;
    }
    return count;
}

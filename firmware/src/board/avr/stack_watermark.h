/*
 * How much of the ATmega328P's RAM the firmware has never touched.
 *
 * Nothing is allocated at run time, so the RAM between the end of .bss and
 * the stack is free until the stack grows into it. At reset (before the C
 * run-time set-up) that whole area is painted with a known byte; the bytes
 * still painted, counted from the end of .bss upward, are RAM the stack has
 * never reached since reset: the real headroom left by the deepest call chain
 * and interrupt seen so far, measured rather than estimated.
 */
#ifndef STACK_WATERMARK_H
#define STACK_WATERMARK_H

#include <stdint.h>

/* Bytes between the end of .bss and the deepest stack use so far. A stacked
 * byte that happens to equal the paint may be counted as untouched, so the
 * figure can be a few bytes high; it is never low. */
uint32_t stack_watermark_untouched(void);

#endif /* STACK_WATERMARK_H */

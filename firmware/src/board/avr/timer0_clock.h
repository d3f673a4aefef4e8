/*
 * A millisecond clock from Timer0 of the ATmega328P: compare-match interrupts
 * at 1 kHz count milliseconds. Timer1 (16 bits) stays free for cycle
 * measurements.
 */
#ifndef TIMER0_CLOCK_H
#define TIMER0_CLOCK_H

#include <stdint.h>

/* Starts the 1 kHz tick; the caller enables interrupts. `cpu_hz` must be a
 * multiple of 64 kHz for an exact millisecond (16 MHz is). */
void timer0_clock_init(uint32_t cpu_hz);

/* lpn_clock callback: milliseconds since timer0_clock_init, wrapping at 2^32. */
uint32_t timer0_clock_millis(void *context);

#endif /* TIMER0_CLOCK_H */

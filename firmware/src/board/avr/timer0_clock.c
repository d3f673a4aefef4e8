#include "timer0_clock.h"

#include <avr/interrupt.h>
#include <avr/io.h>
#include <util/atomic.h>

#define PRESCALER 64u

static volatile uint32_t milliseconds;

ISR(TIMER0_COMPA_vect)
{
    milliseconds++;
}

void timer0_clock_init(uint32_t cpu_hz)
{
    TCCR0A = (uint8_t)(1u << WGM01); /* CTC: count 0..OCR0A, then interrupt */
    TCCR0B = (uint8_t)((1u << CS01) | (1u << CS00)); /* clk / 64 */
    /* After the mode is complete: simavr warns of a compare value set in normal mode. */
    OCR0A = (uint8_t)(cpu_hz / PRESCALER / 1000u - 1u);
    TIMSK0 = (uint8_t)(1u << OCIE0A);
}

uint32_t timer0_clock_millis(void *context)
{
    uint32_t now;

    (void)context;
    /* Four bytes are not read in one instruction: keep the tick out meanwhile. */
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        now = milliseconds;
    }
    return now;
}

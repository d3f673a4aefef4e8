/* Millisecond clock from the Cortex-M SysTick timer. */
#ifndef SYSTICK_CLOCK_H
#define SYSTICK_CLOCK_H

#include <stdint.h>

void systick_clock_init(uint32_t core_hz);

/* lpn_clock callback; `context` is unused. */
uint32_t systick_clock_millis(void *context);

/* The SysTick exception handler, placed in the vector table by the startup code. */
void systick_clock_handler(void);

#endif /* SYSTICK_CLOCK_H */

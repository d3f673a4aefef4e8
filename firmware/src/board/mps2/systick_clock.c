#include "systick_clock.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYST_CSR_ENABLE 0x1u
#define SYST_CSR_TICKINT 0x2u
#define SYST_CSR_CLKSOURCE_CORE 0x4u

static volatile uint32_t elapsed_ms;

void systick_clock_init(uint32_t core_hz)
{
    SYST_RVR = core_hz / 1000u - 1u;
    SYST_CVR = 0u;
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE_CORE;
}

uint32_t systick_clock_millis(void *context)
{
    (void)context;
    /* A 32-bit aligned load is atomic on Cortex-M: no need to mask the tick. */
    return elapsed_ms;
}

void systick_clock_handler(void)
{
    elapsed_ms = elapsed_ms + 1u;
}

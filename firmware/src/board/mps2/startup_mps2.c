/*
 * Reset and exception entry of the MPS2 builds: vector table, C run-time set-up
 * (data copy, bss clear, FPU enable), then main. Memory layout symbols come from
 * the platform's linker script mps2_an38x.ld.
 */
#include <stdint.h>

#include "cmsdk_uart.h"
#include "semihosting.h"
#include "systick_clock.h"

/* Distinct from any code main returns, so a test can tell a fault from an exit. */
#define EXIT_CODE_FAULT 0x7F

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

int main(void);

void reset_handler(void) __attribute__((noreturn));
static void fault_handler(void);

typedef void (*exception_handler)(void);

struct vector_table {
    uint32_t *initial_stack_pointer;
    exception_handler exceptions[15]; /* Reset .. SysTick */
    exception_handler interrupts[1];  /* IRQ0 onwards, as far as used */
};

__attribute__((section(".isr_vector"), used))
static const struct vector_table vectors = {
    &_estack,
    {
        reset_handler,
        fault_handler, /* NMI */
        fault_handler, /* HardFault */
        fault_handler, /* MemManage */
        fault_handler, /* BusFault */
        fault_handler, /* UsageFault */
        0, 0, 0, 0,
        fault_handler, /* SVCall */
        fault_handler, /* DebugMonitor */
        0,
        fault_handler, /* PendSV */
        systick_clock_handler,
    },
    {
        cmsdk_uart0_rx_handler, /* IRQ 0: UART0 RX */
    },
};

#define CPACR (*(volatile uint32_t *)0xE000ED88u)
#define CPACR_CP10_CP11_FULL (0xFu << 20)

void reset_handler(void)
{
    uint32_t *source = &_sidata;
    for (uint32_t *target = &_sdata; target < &_edata; target++) {
        *target = *source++;
    }
    for (uint32_t *target = &_sbss; target < &_ebss; target++) {
        *target = 0u;
    }
#if defined(__ARM_FP)
    /* A hard-float build may use FPU registers anywhere from here on. */
    CPACR |= CPACR_CP10_CP11_FULL;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    semihosting_exit(main());
}

static void fault_handler(void)
{
    semihosting_exit(EXIT_CODE_FAULT);
}

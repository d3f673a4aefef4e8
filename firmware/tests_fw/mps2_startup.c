/*
 * Start-up code of the test firmwares in this folder (QEMU mps2-an385/an386,
 * linked with mps2.ld): the vector table, a reset handler that zeroes .bss and
 * runs main, and the end of the run through semihosting, so QEMU exits with
 * main's return value (127 after a fault). Needs -semihosting-config enable=on.
 */
#include <stdint.h>

#include "mps2_startup.h"

int main(void);

extern uint32_t __stack_top[];
extern uint32_t __bss_start[], __bss_end[];

int32_t semihost_call(uint32_t operation, const void *argument)
{
    register uint32_t r0 __asm__("r0") = operation;
    register const void *r1 __asm__("r1") = argument;
    __asm__ __volatile__("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
}

void semihost_exit(uint32_t code)
{
    /* SYS_EXIT_EXTENDED with ADP_Stopped_ApplicationExit: QEMU exits with `code`. */
    uint32_t block[2] = {0x20026u, code};
    (void)semihost_call(0x20u, block);
    for (;;) {
    }
}

void semihost_print(const char *text)
{
    (void)semihost_call(0x04u /* SYS_WRITE0 */, text);
}

void reset_handler(void)
{
    for (uint32_t *p = __bss_start; p < __bss_end; ++p) {
        *p = 0u;
    }
    semihost_exit((uint32_t)main());
}

static void fault_handler(void)
{
    semihost_exit(127u);
}

/* Initial stack pointer, reset, and the faults the core may take. */
__attribute__((section(".isr_vector"), used)) static void (*const vectors[])(void) = {
    (void (*)(void))(uintptr_t)__stack_top,
    reset_handler,
    fault_handler, /* NMI */
    fault_handler, /* HardFault */
    fault_handler, /* MemManage */
    fault_handler, /* BusFault */
    fault_handler, /* UsageFault */
};

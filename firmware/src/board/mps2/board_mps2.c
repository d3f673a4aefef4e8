/*
 * Board glue of the Arm MPS2 FPGA images AN385 (Cortex-M3) and AN386
 * (Cortex-M4F), on the boards or in QEMU: UART0 for the host link, SysTick for
 * the clock, semihosting to end an emulation.
 */
#include "lpn_board.h"

#include "cmsdk_uart.h"
#include "semihosting.h"
#include "systick_clock.h"

/* QEMU ignores the rate; real boards run their USB-serial bridge at this one. */
#define HOST_LINK_BAUD 115200u

#ifndef F_CPU
#error "F_CPU (the core clock in Hz) comes from the board manifest's build.f_cpu"
#endif

#define STRINGIFY_VALUE(x) #x
#define STRINGIFY(x) STRINGIFY_VALUE(x)

/* From the linker script: the top of the stack reservation and the end of RAM. */
extern uint32_t _estack, _eram;

static void exit_emulator(int code)
{
    semihosting_exit(code);
}

/* Nothing is allocated at run time, so everything above the stack reservation
 * is free; the stack itself is reserved, used or not. */
static uint32_t unused_ram(void)
{
    return (uint32_t)((uintptr_t)&_eram - (uintptr_t)&_estack);
}

static const struct lpn_board mps2_board = {
    STRINGIFY(LPN_BOARD_MCU),
    {cmsdk_uart_read_byte, cmsdk_uart_write, cmsdk_uart_wait, CMSDK_UART0},
    {systick_clock_millis, 0},
    exit_emulator,
    unused_ram,
};

const struct lpn_board *lpn_board_init(void)
{
    cmsdk_uart_init(CMSDK_UART0, (uint32_t)F_CPU, HOST_LINK_BAUD);
    systick_clock_init((uint32_t)F_CPU);
    __asm__ volatile("cpsie i" ::: "memory");
    return &mps2_board;
}

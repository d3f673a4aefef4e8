/*
 * Board glue of the Arm MPS2 FPGA images AN385 (Cortex-M3) and AN386
 * (Cortex-M4F), on the boards or in QEMU: UART0 for the host link, SysTick for
 * the clock, semihosting to end an emulation and for the persistent storage, a
 * file on the host (QEMU has no non-volatile memory that survives a restart).
 *
 * The host names the file through the semihosting command line:
 * `-semihosting-config enable=on,arg=lpn-storage,arg=FILE` (what
 * `lpn emulate --storage FILE` passes). Without that first word the board has
 * no storage, and save and load reply unsupported.
 */
#include "lpn_board.h"

#include <string.h>

#include "lpn_storage_semihost.h"
#include "cmsdk_uart.h"
#include "semihosting.h"
#include "systick_clock.h"

/* Bytes per storage slot: room for a state of this size less 16 (the slot
 * header) less 32 (the model's SHA-256). Only what is written takes room in
 * the host file. */
#ifndef LPN_STORAGE_SLOT_SIZE
#define LPN_STORAGE_SLOT_SIZE 131072u
#endif

/* The first word of a command line that names the storage file. */
#define STORAGE_WORD "lpn-storage "

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

static struct lpn_storage_config storage;
static struct lpn_storage_semihost storage_file;

static struct lpn_board mps2_board = {
    STRINGIFY(LPN_BOARD_MCU),
    {cmsdk_uart_read_byte, cmsdk_uart_write, cmsdk_uart_wait, CMSDK_UART0},
    {systick_clock_millis, 0},
    exit_emulator,
    unused_ram,
    NULL, /* storage: set by open_storage when the host names a file */
};

static void open_storage(void)
{
    static char command_line[256];
    size_t word = sizeof STORAGE_WORD - 1u;

    if (semihosting_cmdline(command_line, sizeof command_line) <= (int)word ||
        strncmp(command_line, STORAGE_WORD, word) != 0) {
        return;
    }
    if (lpn_storage_semihost_open(&storage, &storage_file, command_line + word, LPN_STORAGE_SLOT_SIZE) == 0) {
        mps2_board.storage = &storage;
    }
}

const struct lpn_board *lpn_board_init(void)
{
    cmsdk_uart_init(CMSDK_UART0, (uint32_t)F_CPU, HOST_LINK_BAUD);
    systick_clock_init((uint32_t)F_CPU);
    open_storage();
    __asm__ volatile("cpsie i" ::: "memory");
    return &mps2_board;
}

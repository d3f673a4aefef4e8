#include "semihosting.h"

#include <stdint.h>

#define SYS_GET_CMDLINE 0x15u
#define SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

void semihosting_exit(int code)
{
    /* SYS_EXIT_EXTENDED rather than SYS_EXIT: only it carries the exit code on
     * 32-bit Arm. */
    uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    register uint32_t operation __asm__("r0") = SYS_EXIT_EXTENDED;
    register uint32_t *argument __asm__("r1") = block;
    __asm__ volatile("bkpt 0xab" : "+r"(operation) : "r"(argument) : "memory");
    for (;;) {
    }
}

int semihosting_cmdline(char *buffer, size_t size)
{
    uint32_t block[2] = {(uint32_t)(uintptr_t)buffer, (uint32_t)size};
    register uint32_t operation __asm__("r0") = SYS_GET_CMDLINE;
    register uint32_t *argument __asm__("r1") = block;
    if (size == 0u) {
        return -1;
    }
    __asm__ volatile("bkpt 0xab" : "+r"(operation) : "r"(argument) : "memory");
    /* On success the host wrote the text and its length (without the NUL). */
    if (operation != 0u || block[1] >= size) {
        return -1;
    }
    buffer[block[1]] = '\0';
    return (int)block[1];
}

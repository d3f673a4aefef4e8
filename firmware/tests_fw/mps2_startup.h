/* Semihosting helpers of the test firmwares' start-up code (mps2_startup.c). */
#ifndef MPS2_STARTUP_H
#define MPS2_STARTUP_H

#include <stdint.h>

/* One semihosting call: operation in r0, argument block in r1; returns r0. */
int32_t semihost_call(uint32_t operation, const void *argument);
/* Ends the run: QEMU exits with `code`. */
void semihost_exit(uint32_t code) __attribute__((noreturn));
/* Writes a NUL-terminated string to QEMU's standard output. */
void semihost_print(const char *text);

#endif

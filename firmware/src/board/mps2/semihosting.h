/*
 * Arm semihosting calls, served by a debugger or by QEMU started with
 * `-semihosting-config enable=on`. Without a host to serve them, the BKPT
 * they execute faults, so only the emulator builds call them.
 */
#ifndef SEMIHOSTING_H
#define SEMIHOSTING_H

#include <stddef.h>

/* Copies the command line the host gives the program (QEMU: the
 * `-semihosting-config arg=...` values joined by spaces) into `buffer`, NUL
 * terminated. Returns its length, or -1 if there is none or it does not fit. */
int semihosting_cmdline(char *buffer, size_t size);

/* Ends the emulation; QEMU exits with `code` as its own exit status. */
void semihosting_exit(int code) __attribute__((noreturn));

#endif /* SEMIHOSTING_H */

/*
 * Arm semihosting calls, served by a debugger or by QEMU started with
 * `-semihosting-config enable=on`. Without a host to serve them, the BKPT
 * they execute faults, so only the emulator builds call them.
 */
#ifndef SEMIHOSTING_H
#define SEMIHOSTING_H

/* Ends the emulation; QEMU exits with `code` as its own exit status. */
void semihosting_exit(int code) __attribute__((noreturn));

#endif /* SEMIHOSTING_H */

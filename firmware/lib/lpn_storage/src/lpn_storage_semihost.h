/*
 * A storage for lpn_storage on a host file, through Arm semihosting: what an
 * emulated Cortex-M board (QEMU with -semihosting-config enable=on) uses in
 * place of EEPROM or flash, so that the stored state survives a restart of the
 * emulator.
 *
 * Every prog is one SYS_WRITE, which QEMU turns into one write(2) on the host
 * file: once it returns the bytes are in the host's page cache, so killing
 * QEMU at any moment cuts a save between two writes, which lpn_storage
 * survives. (A crash of the host computer itself is not covered: nothing here
 * can ask the host to fsync.) The file overwrites in place, so there is no
 * erase; bytes past the end of a new or short file read as erased (0xFF).
 *
 * Only built for Arm M-profile cores; elsewhere this compiles to nothing.
 */
#ifndef LPN_STORAGE_SEMIHOST_H
#define LPN_STORAGE_SEMIHOST_H

#include "lpn_storage.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__arm__) && defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'

/* The open file; lives as long as the config that points to it. */
struct lpn_storage_semihost {
    int32_t handle;
};

/* Opens (or creates) `path` on the host, relative to the emulator's working
 * directory, and fills `cfg` to store states of up to slot_size - 16 bytes in
 * it. Returns 0, or LPN_STORAGE_ERR_IO if the host refused the file. */
int lpn_storage_semihost_open(struct lpn_storage_config *cfg, struct lpn_storage_semihost *file,
                              const char *path, uint32_t slot_size);

/* Closes the file; `cfg` must not be used afterwards. */
void lpn_storage_semihost_close(struct lpn_storage_semihost *file);

#endif

#ifdef __cplusplus
}
#endif

#endif /* LPN_STORAGE_SEMIHOST_H */

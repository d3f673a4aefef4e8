/*
 * Host-file storage through Arm semihosting; see lpn_storage_semihost.h.
 */
#include "lpn_storage_semihost.h"

#if defined(__arm__) && defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'

#include <string.h>

/* Semihosting operations (Arm's "Semihosting for AArch32 and AArch64"). */
enum {
    SYS_OPEN = 0x01,
    SYS_CLOSE = 0x02,
    SYS_WRITE = 0x05,
    SYS_READ = 0x06,
    SYS_SEEK = 0x0A
};
enum { MODE_READ_WRITE_BINARY = 3 /* "r+b" */, MODE_CREATE_BINARY = 7 /* "w+b" */ };

static int32_t semihost(uint32_t operation, const void *argument)
{
    register uint32_t r0 __asm__("r0") = operation;
    register const void *r1 __asm__("r1") = argument;
    __asm__ __volatile__("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
}

static int32_t handle_of(const struct lpn_storage_config *cfg)
{
    return ((const struct lpn_storage_semihost *)cfg->context)->handle;
}

static int seek(int32_t handle, uint32_t offset)
{
    uint32_t block[2] = {(uint32_t)handle, offset};
    return semihost(SYS_SEEK, block) == 0 ? 0 : LPN_STORAGE_ERR_IO;
}

static int file_read(const struct lpn_storage_config *cfg, uint32_t offset, void *buffer, uint32_t size)
{
    int32_t handle = handle_of(cfg);
    /* Seeking past the end of a short file fails on some hosts: then all of it reads erased. */
    uint32_t missing = size;
    if (seek(handle, offset) == 0) {
        uint32_t block[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)buffer, size};
        int32_t not_read = semihost(SYS_READ, block);
        if (not_read < 0 || (uint32_t)not_read > size) {
            return LPN_STORAGE_ERR_IO;
        }
        missing = (uint32_t)not_read;
    }
    memset((uint8_t *)buffer + (size - missing), 0xFF, missing);
    return 0;
}

static int file_prog(const struct lpn_storage_config *cfg, uint32_t offset, const void *buffer, uint32_t size)
{
    int32_t handle = handle_of(cfg);
    if (seek(handle, offset) != 0) {
        return LPN_STORAGE_ERR_IO;
    }
    uint32_t block[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)buffer, size};
    return semihost(SYS_WRITE, block) == 0 ? 0 : LPN_STORAGE_ERR_IO;
}

int lpn_storage_semihost_open(struct lpn_storage_config *cfg, struct lpn_storage_semihost *file,
                              const char *path, uint32_t slot_size)
{
    uint32_t block[3] = {(uint32_t)(uintptr_t)path, MODE_READ_WRITE_BINARY, (uint32_t)strlen(path)};
    int32_t handle = semihost(SYS_OPEN, block);
    if (handle < 0) {
        block[1] = MODE_CREATE_BINARY; /* no such file yet */
        handle = semihost(SYS_OPEN, block);
    }
    if (handle < 0) {
        return LPN_STORAGE_ERR_IO;
    }
    file->handle = handle;
    memset(cfg, 0, sizeof *cfg);
    cfg->context = file;
    cfg->read = file_read;
    cfg->prog = file_prog;
    cfg->erase = NULL;  /* a file overwrites in place */
    cfg->sync = NULL;   /* every SYS_WRITE is a write(2) on the host already */
    cfg->slot_size = slot_size;
    cfg->prog_size = 1;
    return 0;
}

void lpn_storage_semihost_close(struct lpn_storage_semihost *file)
{
    uint32_t block[1] = {(uint32_t)file->handle};
    (void)semihost(SYS_CLOSE, block);
    file->handle = -1;
}

#else

/* ISO C wants at least one declaration in a translation unit. */
typedef int lpn_storage_semihost_unused;

#endif

/*
 * EEPROM storage for AVR; see lpn_storage_avr_eeprom.h.
 */
#include "lpn_storage_avr_eeprom.h"

#if defined(__AVR__)

#include <avr/eeprom.h>
#include <avr/io.h>

static uint16_t address_of(const struct lpn_storage_config *cfg, uint32_t offset)
{
    return (uint16_t)(((const struct lpn_storage_avr_eeprom *)cfg->context)->base + offset);
}

static int eeprom_read(const struct lpn_storage_config *cfg, uint32_t offset, void *buffer, uint32_t size)
{
    eeprom_read_block(buffer, (const void *)(uintptr_t)address_of(cfg, offset), (size_t)size);
    return 0;
}

static int eeprom_prog(const struct lpn_storage_config *cfg, uint32_t offset, const void *buffer, uint32_t size)
{
    eeprom_update_block(buffer, (void *)(uintptr_t)address_of(cfg, offset), (size_t)size);
    return 0;
}

/* avr-libc starts each byte's write only once the previous one has finished,
 * so bytes land in order; this waits for the last one. */
static int eeprom_sync(const struct lpn_storage_config *cfg)
{
    (void)cfg;
    eeprom_busy_wait();
    return 0;
}

int lpn_storage_avr_eeprom_init(struct lpn_storage_config *cfg, struct lpn_storage_avr_eeprom *eeprom,
                                uint16_t base, uint16_t slot_size)
{
    if ((uint32_t)base + 2u * (uint32_t)slot_size > (uint32_t)E2END + 1u) {
        return LPN_STORAGE_ERR_INVAL;
    }
    eeprom->base = base;
    cfg->context = eeprom;
    cfg->read = eeprom_read;
    cfg->prog = eeprom_prog;
    cfg->erase = NULL; /* EEPROM bytes are rewritten in place */
    cfg->sync = eeprom_sync;
    cfg->slot_size = slot_size;
    cfg->prog_size = 1;
    return lpn_storage_capacity(cfg) < 0 ? LPN_STORAGE_ERR_INVAL : 0;
}

#else

/* ISO C wants at least one declaration in a translation unit. */
typedef int lpn_storage_avr_eeprom_unused;

#endif

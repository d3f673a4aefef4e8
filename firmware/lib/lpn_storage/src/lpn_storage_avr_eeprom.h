/*
 * A storage for lpn_storage on the AVR's internal EEPROM (avr-libc's eeprom_*
 * functions): byte-writable, no erase. The two slots take 2 * slot_size bytes
 * from EEPROM address `base`.
 *
 * Writes go through eeprom_update_block, which skips bytes that already hold
 * the value (saving endurance); each byte written is one storage write, so a
 * power cut anywhere during a save is a cut between or within writes, which
 * lpn_storage survives. Only built for AVR; elsewhere this compiles to nothing.
 */
#ifndef LPN_STORAGE_AVR_EEPROM_H
#define LPN_STORAGE_AVR_EEPROM_H

#include "lpn_storage.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__AVR__)

/* Where the slots live; lives as long as the config that points to it. */
struct lpn_storage_avr_eeprom {
    uint16_t base;
};

/* Fills `cfg` for slots of `slot_size` bytes at EEPROM address `base`.
 * Returns 0, or LPN_STORAGE_ERR_INVAL if they do not fit the chip's EEPROM. */
int lpn_storage_avr_eeprom_init(struct lpn_storage_config *cfg, struct lpn_storage_avr_eeprom *eeprom,
                                uint16_t base, uint16_t slot_size);

#endif

#ifdef __cplusplus
}
#endif

#endif /* LPN_STORAGE_AVR_EEPROM_H */

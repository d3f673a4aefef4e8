/*
 * Board glue and entry point of the Arduino-framework builds (Nucleo, Uno,
 * ESP32, Pico): the host link is the board's `Serial`, the clock `millis()`,
 * the persistent storage the board's EEPROM (real or emulated in flash), and
 * free RAM where the core can tell. The framework owns main(), so the loop
 * step runs from loop().
 *
 * NOT COMPILED BY THE PROJECT: the Arduino cores come from PlatformIO's
 * registry, which is not reachable offline, so this file is written against
 * the cores' documented APIs (ArduinoCore-avr, arduino-esp32, arduino-pico by
 * Earle Philhower, STM32duino) and only ever built by a user with internet.
 * Everything core-specific is behind the core's architecture macro; a core not
 * named here (e.g. Arduino's mbed core for the RP2040, which has no EEPROM
 * library) builds without storage and reports free RAM as 0 (unknown).
 *
 * Storage (the two slots of lpn_storage, ../../../lib/lpn_storage):
 *   AVR (Uno)  the internal EEPROM through lpn_storage_avr_eeprom, the same
 *              avr-libc code and layout (two 512-byte slots from address 0) as
 *              the framework-free simavr_uno image, whose saves survive a cut at
 *              every write (tests/test_persistence.py);
 *   ESP32      the EEPROM library's RAM copy, committed to an NVS blob at each
 *              sync (ESP-IDF documents NVS as resilient to power loss: a blob
 *              being replaced stays readable until the new one is complete);
 *   RP2040     (arduino-pico) the EEPROM library's RAM copy, committed to one
 *              flash sector at each sync;
 *   STM32      (STM32duino) its buffered EEPROM emulation: bytes go to the RAM
 *              buffer, each sync writes the buffer to the flash sector (the
 *              unbuffered EEPROM.write would erase the sector for every byte).
 * On RP2040 and STM32 a sync erases and rewrites the one sector that holds
 * both slots, so a power cut during that erase and rewrite can lose the saved
 * state (the old one included): the two slots protect against a cut between
 * writes, not within the emulation's sector rewrite. The slot size is half the
 * EEPROM area; a learner state larger than a slot's payload capacity less the
 * 32-byte model hash gets `storage_full` from save.
 */
#include <Arduino.h>

#include "lpn_board.h"
#include "lpn_storage.h"
#include "protocol_loop.h"

#if defined(__AVR__)
#include "lpn_storage_avr_eeprom.h"
#define LPN_EEPROM_AVR 1
#elif defined(ARDUINO_ARCH_ESP32) || defined(ARDUINO_ARCH_STM32) || \
    (defined(ARDUINO_ARCH_RP2040) && !defined(ARDUINO_ARCH_MBED))
#include <EEPROM.h>
#define LPN_EEPROM_LIBRARY 1
#endif

#if defined(ARDUINO_ARCH_STM32)
#include <unistd.h> /* sbrk */
#if !defined(DATA_EEPROM_BASE)
/* STM32duino's buffered EEPROM API (declared by its stm32_eeprom.h, which
 * EEPROM.h includes; declared again here, identically, so the file does not
 * depend on that include chain). */
extern "C" {
void eeprom_buffer_fill(void);
void eeprom_buffer_flush(void);
uint8_t eeprom_buffered_read_byte(uint32_t pos);
void eeprom_buffered_write_byte(uint32_t pos, uint8_t value);
}
#define LPN_EEPROM_STM32_BUFFERED 1
#endif
#endif

#ifndef LPN_SERIAL_BAUD
#define LPN_SERIAL_BAUD 115200
#endif

/* Bytes of emulated EEPROM asked for with EEPROM.begin() on the cores that
 * need it: 4096 is arduino-pico's largest (one flash sector) and fits the
 * ESP32's default NVS partition; two slots of 2048 bytes. */
#ifndef LPN_EEPROM_BYTES
#define LPN_EEPROM_BYTES 4096u
#endif

static int serial_read_byte(void *context)
{
    (void)context;
    int byte = Serial.read();
    return byte < 0 ? LPN_UART_NO_BYTE : byte;
}

static int serial_write(void *context, const uint8_t *bytes, size_t length)
{
    (void)context;
    return Serial.write(bytes, length) == length ? LPN_BOARD_OK : LPN_UART_IO;
}

static uint32_t arduino_millis(void *context)
{
    (void)context;
    return (uint32_t)millis();
}

/* ---- Free RAM ------------------------------------------------------------ */

#if defined(__AVR__)
/* avr-libc's heap bounds: without malloc the heap stays empty, so the gap
 * between the end of .bss and the stack pointer is the free RAM. */
extern char __heap_start;
extern char *__brkval;

static uint32_t board_free_ram(void)
{
    char top;
    const char *heap_end = __brkval != 0 ? __brkval : &__heap_start;
    return (uint32_t)(&top - heap_end);
}
#define LPN_HAS_FREE_RAM 1
#elif defined(ARDUINO_ARCH_ESP32)
static uint32_t board_free_ram(void)
{
    return (uint32_t)ESP.getFreeHeap();
}
#define LPN_HAS_FREE_RAM 1
#elif defined(ARDUINO_ARCH_RP2040) && !defined(ARDUINO_ARCH_MBED)
static uint32_t board_free_ram(void)
{
    int free_heap = rp2040.getFreeHeap();
    return free_heap > 0 ? (uint32_t)free_heap : 0u;
}
#define LPN_HAS_FREE_RAM 1
#elif defined(ARDUINO_ARCH_STM32)
/* The gap between the heap's end (newlib's break) and the stack pointer. */
static uint32_t board_free_ram(void)
{
    char top;
    const char *heap_end = (const char *)sbrk(0);
    return &top > heap_end ? (uint32_t)(&top - heap_end) : 0u;
}
#define LPN_HAS_FREE_RAM 1
#endif

/* ---- Persistent storage ---------------------------------------------------- */

static struct lpn_storage_config storage;

#if defined(LPN_EEPROM_AVR)
/* The ATmega328P's 1 KB EEPROM: two slots of 512 bytes from address 0, as in
 * src/board/avr/, so both images read each other's saves (of the same model). */
#define AVR_STORAGE_SLOT_SIZE 512u

static struct lpn_storage_avr_eeprom eeprom_place;

static bool open_storage(void)
{
    return lpn_storage_avr_eeprom_init(&storage, &eeprom_place, 0u, AVR_STORAGE_SLOT_SIZE) == 0;
}
#elif defined(LPN_EEPROM_LIBRARY)
/* Bytes of the EEPROM area the two slots share, from its offset 0. */
static uint32_t eeprom_bytes;

static bool in_area(uint32_t offset, uint32_t size)
{
    return offset <= eeprom_bytes && size <= eeprom_bytes - offset;
}

static int eeprom_read(const struct lpn_storage_config *cfg, uint32_t offset, void *buffer, uint32_t size)
{
    (void)cfg;
    uint8_t *out = (uint8_t *)buffer;
    if (!in_area(offset, size)) {
        return LPN_STORAGE_ERR_IO;
    }
    for (uint32_t i = 0; i < size; ++i) {
#if defined(LPN_EEPROM_STM32_BUFFERED)
        out[i] = eeprom_buffered_read_byte(offset + i);
#else
        out[i] = EEPROM.read((int)(offset + i));
#endif
    }
    return LPN_STORAGE_OK;
}

/* Bytes land in the RAM copy (ESP32, RP2040, STM32 buffered) or, on an STM32
 * with a real data EEPROM, in it directly; sync makes them durable. */
static int eeprom_prog(const struct lpn_storage_config *cfg, uint32_t offset, const void *buffer, uint32_t size)
{
    (void)cfg;
    const uint8_t *in = (const uint8_t *)buffer;
    if (!in_area(offset, size)) {
        return LPN_STORAGE_ERR_IO;
    }
    for (uint32_t i = 0; i < size; ++i) {
#if defined(LPN_EEPROM_STM32_BUFFERED)
        eeprom_buffered_write_byte(offset + i, in[i]);
#elif defined(ARDUINO_ARCH_STM32)
        EEPROM.update((int)(offset + i), in[i]); /* a real data EEPROM: skips unchanged bytes */
#else
        EEPROM.write((int)(offset + i), in[i]);
#endif
    }
    return LPN_STORAGE_OK;
}

/* lpn_storage syncs after the payload and again after the header, so each
 * save commits twice: the header reaches flash only after the payload has. */
static int eeprom_sync(const struct lpn_storage_config *cfg)
{
    (void)cfg;
#if defined(ARDUINO_ARCH_ESP32) || defined(ARDUINO_ARCH_RP2040)
    return EEPROM.commit() ? LPN_STORAGE_OK : LPN_STORAGE_ERR_IO;
#elif defined(LPN_EEPROM_STM32_BUFFERED)
    eeprom_buffer_flush();
    return LPN_STORAGE_OK;
#else
    return LPN_STORAGE_OK; /* a real data EEPROM: each byte is written when update returns */
#endif
}

static bool open_storage(void)
{
#if defined(ARDUINO_ARCH_ESP32)
    if (!EEPROM.begin(LPN_EEPROM_BYTES)) {
        return false; /* NVS not usable: no storage */
    }
#elif defined(ARDUINO_ARCH_RP2040)
    EEPROM.begin(LPN_EEPROM_BYTES);
#elif defined(LPN_EEPROM_STM32_BUFFERED)
    eeprom_buffer_fill(); /* the RAM buffer starts as the flash sector holds it */
#endif
    eeprom_bytes = (uint32_t)EEPROM.length();
    storage.context = NULL;
    storage.read = eeprom_read;
    storage.prog = eeprom_prog;
    storage.erase = NULL; /* the emulation erases its sector itself when it commits */
    storage.sync = eeprom_sync;
    storage.slot_size = eeprom_bytes / 2u;
    storage.prog_size = 1u;
    return lpn_storage_capacity(&storage) > 0;
}
#else
static bool open_storage(void)
{
    return false; /* a core without a known EEPROM library: save and load reply unsupported */
}
#endif

static lpn_board arduino_board;

const struct lpn_board *lpn_board_init(void)
{
    Serial.begin(LPN_SERIAL_BAUD);
    arduino_board.name = "arduino";
    arduino_board.uart.read_byte = serial_read_byte;
    arduino_board.uart.write = serial_write;
    arduino_board.uart.wait = NULL;
    arduino_board.uart.context = NULL;
    arduino_board.clock.millis = arduino_millis;
    arduino_board.clock.context = NULL;
    arduino_board.exit = NULL;
#if defined(LPN_HAS_FREE_RAM)
    arduino_board.free_ram = board_free_ram;
#else
    arduino_board.free_ram = NULL; /* reported as 0: unknown */
#endif
    arduino_board.storage = open_storage() ? &storage : NULL;
    return &arduino_board;
}

static const struct lpn_board *board;
static bool serving;

void setup()
{
    board = lpn_board_init();
    /* A learner too large for this build's frame limit leaves the board
     * silent rather than answering with sizes it cannot honour. */
    serving = protocol_loop_init(board) == 0;
}

void loop()
{
    if (serving) {
        (void)protocol_loop_step(board);
    }
}

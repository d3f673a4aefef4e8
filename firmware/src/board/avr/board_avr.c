/*
 * Board glue of the ATmega328P (an Arduino Uno's chip, without the Arduino
 * framework), on the board or in simavr: USART0 polled for the host link,
 * Timer0 for the clock, free RAM measured by stack painting, and an exit that
 * ends a simavr run.
 */
#include "lpn_board.h"

#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/sleep.h>

#include "lpn_storage.h"
#include "lpn_storage_avr_eeprom.h"
#include "stack_watermark.h"
#include "timer0_clock.h"
#include "uart0.h"

#ifndef F_CPU
#error "F_CPU (the core clock in Hz) comes from the board manifest's build.f_cpu"
#endif

/* simavr models the baud rate, so emulator builds pass a fast one
 * (envs/avr.ini: 1 Mbaud, exact at 16 MHz); a real Uno's USB bridge runs
 * 115200 reliably. */
#ifndef LPN_SERIAL_BAUD
#define LPN_SERIAL_BAUD 115200
#endif

#define STRINGIFY_VALUE(x) #x
#define STRINGIFY(x) STRINGIFY_VALUE(x)

/* Sleeping with interrupts off is how a firmware ends a simavr run (the
 * bridge then reports `exit done`); a real chip just stays asleep. The code
 * itself cannot be handed over, so it is dropped. */
static void stop(int code)
{
    (void)code;
    uart0_flush();
    cli();
    sleep_enable();
    sleep_cpu();
    for (;;) {
    }
}

/* main() returning ends in avr-libc's exit(), which runs the .fini sections
 * down to .fini0 (interrupts off, then an endless loop); stopping here, just
 * before, ends a simulation instead of spinning in it forever. */
void stop_after_main(void) __attribute__((naked, used, section(".fini1")));
void stop_after_main(void)
{
    __asm__ volatile("cli\n\t"
                     "ldi r24, %[enable]\n\t"
                     "out %[smcr], r24\n\t"
                     "sleep\n\t"
                     :
                     : [enable] "M"(1u << SE), [smcr] "I"(_SFR_IO_ADDR(SMCR)));
}

/* The learner's saved state lives in the internal EEPROM (1 KB on the
 * ATmega328P): two slots of half of it each, from address 0. */
#define STORAGE_SLOT_SIZE 512u

static struct lpn_storage_config eeprom_storage;
static struct lpn_storage_avr_eeprom eeprom_place;

/* Designated initialisers: optional fields this file does not know stay NULL. */
static struct lpn_board avr_board = {
    .name = STRINGIFY(LPN_BOARD_MCU),
    .uart = {.read_byte = uart0_read_byte, .write = uart0_write, .wait = NULL, .context = NULL},
    .clock = {.millis = timer0_clock_millis, .context = NULL},
    .exit = stop,
    .free_ram = stack_watermark_untouched,
};

const struct lpn_board *lpn_board_init(void)
{
    uart0_init(UART0_UBRR(F_CPU, LPN_SERIAL_BAUD));
    timer0_clock_init((uint32_t)F_CPU);
    if (lpn_storage_avr_eeprom_init(&eeprom_storage, &eeprom_place, 0u, STORAGE_SLOT_SIZE) == 0) {
        avr_board.storage = &eeprom_storage;
    }
    sei();
    return &avr_board;
}

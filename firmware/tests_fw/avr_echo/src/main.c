/*
 * Test firmware of the simavr bridge (see platformio.ini in this folder).
 *
 * At boot it raises and lowers PB5 around four pieces of code whose cycle
 * counts are known from the datasheet, so the bridge's edge cycles can be
 * checked exactly:
 *   1. nothing:               SBI (2 cycles) then CBI      -> 2 cycles between the edges
 *   2. a loop of LOOP_A:      SBI, LDI (1), LOOP_A x (DEC 1 + BRNE 2), the last BRNE 1
 *                                                           -> 2 + 3 * LOOP_A cycles
 *   3. the same loop again (repeatability), 4. a loop of LOOP_B.
 * Written in assembly so the compiler cannot change the counts.
 * Then it counts the boot in EEPROM through lpn_storage (a 1-byte state in two
 * 32-byte slots at address 0; none stored counts as 0), sends
 * "avr-echo boot N\n" and echoes every byte; after echoing 0x04 it waits
 * for the last byte to leave and stops (interrupts off, then sleep: simavr
 * ends the run).
 */
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/sleep.h>
#include <stdint.h>

#include "lpn_storage.h"
#include "lpn_storage_avr_eeprom.h"

#define LOOP_A 200
#define LOOP_B 17
#define END_OF_RUN 0x04

/* 1 Mbaud at 16 MHz: U2X0 with UBRR0 = 1 (16e6 / (8 * 2)), exact. simavr models
 * the baud rate, so a fast one keeps the emulated link quick. */
#define UBRR_VALUE 1

#define MARK_NOTHING()                                                      \
    __asm__ __volatile__("sbi %[port], %[pin]\n\t"                          \
                         "cbi %[port], %[pin]\n\t"                          \
                         :                                                  \
                         : [port] "I"(_SFR_IO_ADDR(PORTB)), [pin] "I"(PORTB5))

#define MARK_LOOP(count)                                                    \
    __asm__ __volatile__("sbi %[port], %[pin]\n\t"                          \
                         "ldi r24, %[n]\n"                                  \
                         "1:\n\t"                                           \
                         "dec r24\n\t"                                      \
                         "brne 1b\n\t"                                      \
                         "cbi %[port], %[pin]\n\t"                          \
                         :                                                  \
                         : [port] "I"(_SFR_IO_ADDR(PORTB)), [pin] "I"(PORTB5), [n] "M"(count) \
                         : "r24")

static void uart_init(void)
{
    UBRR0H = 0;
    UBRR0L = UBRR_VALUE;
    UCSR0A = (uint8_t)(1u << U2X0);
    UCSR0C = (uint8_t)((1u << UCSZ01) | (1u << UCSZ00)); /* 8 data bits, no parity, 1 stop */
    UCSR0B = (uint8_t)((1u << RXEN0) | (1u << TXEN0));
}

static void uart_put(uint8_t byte)
{
    while (!(UCSR0A & (1u << UDRE0))) {
    }
    UDR0 = byte;
}

static uint8_t uart_get(void)
{
    /* Polling UCSR0A is also what tells the bridge the UART can take input. */
    while (!(UCSR0A & (1u << RXC0))) {
    }
    return UDR0;
}

static void uart_puts(const char *text)
{
    while (*text != '\0') {
        uart_put((uint8_t)*text++);
    }
}

int main(void)
{
    DDRB |= (uint8_t)(1u << DDB5);
    MARK_NOTHING();
    MARK_LOOP(LOOP_A);
    MARK_LOOP(LOOP_A);
    MARK_LOOP(LOOP_B);

    struct lpn_storage_config storage;
    struct lpn_storage_avr_eeprom eeprom;
    uint8_t boots = 0;
    uint32_t length = 0;
    if (lpn_storage_avr_eeprom_init(&storage, &eeprom, 0u, 32u) != 0 ||
        lpn_storage_load(&storage, &boots, sizeof boots, &length) != 0 || length != 1u) {
        boots = 0; /* nothing stored yet */
    }
    boots = (uint8_t)(boots % 9u + 1u); /* one digit: 1..9 */
    (void)lpn_storage_save(&storage, &boots, sizeof boots);

    uart_init();
    uart_puts("avr-echo boot ");
    uart_put((uint8_t)('0' + boots));
    uart_put((uint8_t)'\n');
    for (;;) {
        uint8_t byte = uart_get();
        uart_put(byte);
        if (byte == END_OF_RUN) {
            break;
        }
    }
    /* Let the last byte leave the shift register before stopping. */
    UCSR0A |= (uint8_t)(1u << TXC0);
    while (!(UCSR0A & (1u << TXC0))) {
    }
    cli();
    sleep_enable();
    sleep_cpu();
    return 0;
}

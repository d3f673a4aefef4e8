/*
 * USART0 of the ATmega328P, polled: the host link of the AVR builds (on an
 * Uno it is the USB-serial bridge's line; under simavr, the bridge's socket).
 */
#ifndef UART0_H
#define UART0_H

#include <stddef.h>
#include <stdint.h>

/* The baud-rate register value for `baud` at `cpu_hz` in double-speed mode
 * (U2X0), rounded to the nearest rate the clock divides to: 1 Mbaud at 16 MHz
 * is exact (1), 115200 is 2.1 % fast (16). A macro, so that the division is
 * done by the compiler rather than by a 32-bit division routine in flash. */
#define UART0_UBRR(cpu_hz, baud) ((uint16_t)(((cpu_hz) + 4UL * (baud)) / (8UL * (baud)) - 1UL))

/* 8 data bits, no parity, 1 stop bit, double speed, at the rate UART0_UBRR gave. */
void uart0_init(uint16_t ubrr);

/* lpn_uart callbacks; the context is unused. */
int uart0_read_byte(void *context);
int uart0_write(void *context, const uint8_t *bytes, size_t length);

/* Waits until the last byte written has left the shift register. */
void uart0_flush(void);

#endif /* UART0_H */

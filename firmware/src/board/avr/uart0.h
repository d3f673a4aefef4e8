/*
 * USART0 of the ATmega328P, polled: the host link of the AVR builds (on an
 * Uno it is the USB-serial bridge's line; under simavr, the bridge's socket).
 */
#ifndef UART0_H
#define UART0_H

#include <stddef.h>
#include <stdint.h>

/* 8 data bits, no parity, 1 stop bit, double speed (U2X0), at the rate
 * nearest `baud` that the clock divides to. */
void uart0_init(uint32_t cpu_hz, uint32_t baud);

/* lpn_uart callbacks; the context is unused. */
int uart0_read_byte(void *context);
int uart0_write(void *context, const uint8_t *bytes, size_t length);

/* Waits until the last byte written has left the shift register. */
void uart0_flush(void);

#endif /* UART0_H */

#include "uart0.h"

#include <avr/io.h>

#include "lpn_board.h"

void uart0_init(uint16_t ubrr)
{
    UBRR0H = (uint8_t)(ubrr >> 8);
    UBRR0L = (uint8_t)(ubrr & 0xFFu);
    UCSR0A = (uint8_t)(1u << U2X0);
    UCSR0C = (uint8_t)((1u << UCSZ01) | (1u << UCSZ00));
    UCSR0B = (uint8_t)((1u << RXEN0) | (1u << TXEN0));
}

int uart0_read_byte(void *context)
{
    (void)context;
    /* Reading UCSR0A with nothing received is also what tells simavr's UART
     * (and so the bridge) that it may deliver the next byte. */
    if ((UCSR0A & (1u << RXC0)) == 0u) {
        return LPN_UART_NO_BYTE;
    }
    return (int)UDR0;
}

int uart0_write(void *context, const uint8_t *bytes, size_t length)
{
    size_t i;

    (void)context;
    for (i = 0; i < length; i++) {
        while ((UCSR0A & (1u << UDRE0)) == 0u) {
        }
        /* TXC0 is cleared by writing a one, so uart0_flush sees this byte's end. */
        UCSR0A = (uint8_t)((UCSR0A & (1u << U2X0)) | (1u << TXC0));
        UDR0 = bytes[i];
    }
    return LPN_BOARD_OK;
}

void uart0_flush(void)
{
    if ((UCSR0B & (1u << TXEN0)) == 0u) {
        return;
    }
    while ((UCSR0A & (1u << TXC0)) == 0u) {
    }
}

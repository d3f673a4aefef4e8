#include "cmsdk_uart.h"

#include "lpn_board.h"

#define STATE_TX_FULL 0x1u
#define STATE_RX_FULL 0x2u
#define CTRL_TX_ENABLE 0x1u
#define CTRL_RX_ENABLE 0x2u
#define CTRL_RX_IRQ_ENABLE 0x8u
#define INT_RX 0x2u

#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)

void cmsdk_uart_init(struct cmsdk_uart *uart, uint32_t pclk_hz, uint32_t baud)
{
    /* The UART needs a divider of at least 16; QEMU ignores the rate itself. */
    uint32_t divider = pclk_hz / baud;
    uart->bauddiv = divider < 16u ? 16u : divider;
    /* Both enables are needed or nothing moves; the RX interrupt exists only
     * to end the WFI in cmsdk_uart_wait when a byte arrives. */
    uart->ctrl = CTRL_TX_ENABLE | CTRL_RX_ENABLE | CTRL_RX_IRQ_ENABLE;
    NVIC_ISER0 = 1u << CMSDK_UART0_RX_IRQ;
}

int cmsdk_uart_read_byte(void *context)
{
    struct cmsdk_uart *uart = context;
    if ((uart->state & STATE_RX_FULL) == 0u) {
        return LPN_UART_NO_BYTE;
    }
    return (int)(uart->data & 0xFFu);
}

int cmsdk_uart_write(void *context, const uint8_t *bytes, size_t length)
{
    struct cmsdk_uart *uart = context;
    for (size_t i = 0; i < length; i++) {
        while ((uart->state & STATE_TX_FULL) != 0u) {
        }
        uart->data = bytes[i];
    }
    return LPN_BOARD_OK;
}

void cmsdk_uart_wait(void *context)
{
    struct cmsdk_uart *uart = context;
    /* Interrupts stay masked so the check and the WFI cannot race with the
     * handler: a pending interrupt still ends WFI, and is taken right after. */
    __asm__ volatile("cpsid i" ::: "memory");
    if ((uart->state & STATE_RX_FULL) == 0u) {
        __asm__ volatile("wfi" ::: "memory");
    }
    __asm__ volatile("cpsie i" ::: "memory");
}

void cmsdk_uart0_rx_handler(void)
{
    CMSDK_UART0->intstatus = INT_RX;
}

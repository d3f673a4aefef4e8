/*
 * Arm CMSDK APB UART, as on the MPS2 FPGA images (and QEMU's mps2-an385/386).
 * Polled for data; its RX interrupt only wakes the core from WFI.
 */
#ifndef CMSDK_UART_H
#define CMSDK_UART_H

#include <stddef.h>
#include <stdint.h>

struct cmsdk_uart {
    volatile uint32_t data;       /* +0x00 */
    volatile uint32_t state;      /* +0x04 bit0 TX full, bit1 RX full */
    volatile uint32_t ctrl;       /* +0x08 bit0 TX enable, bit1 RX enable, bit3 RX irq enable */
    volatile uint32_t intstatus;  /* +0x0C read: pending; write 1: clear */
    volatile uint32_t bauddiv;    /* +0x10 */
};

#define CMSDK_UART0 ((struct cmsdk_uart *)0x40004000u)
/* NVIC line of UART0's RX interrupt on AN385/AN386. */
#define CMSDK_UART0_RX_IRQ 0u

void cmsdk_uart_init(struct cmsdk_uart *uart, uint32_t pclk_hz, uint32_t baud);

/* lpn_uart callbacks; `context` is the struct cmsdk_uart. */
int cmsdk_uart_read_byte(void *context);
int cmsdk_uart_write(void *context, const uint8_t *bytes, size_t length);
void cmsdk_uart_wait(void *context);

/* The RX interrupt handler, placed in the vector table by the startup code. */
void cmsdk_uart0_rx_handler(void);

#endif /* CMSDK_UART_H */

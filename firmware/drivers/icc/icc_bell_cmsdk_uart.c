/* Doorbell on a CMSDK APB UART, for mps2-an386 under QEMU, which has no mailbox peripheral.
 * Into this core: the connected core writes any byte to the UART's character device; the RX
 * interrupt sets a flag and WFI returns. Out: we write one byte, which QEMU delivers to the
 * character device at once (QEMU models no baud-rate delay).
 *
 * Sleeping without a lost wake-up: interrupts are masked (PRIMASK) while the flag is tested;
 * WFI still wakes on a pending interrupt with PRIMASK set, and the handler runs as soon as
 * interrupts are unmasked. Only one UART doorbell per image (the handler is IRQ2, UART1 RX). */
#include <stdint.h>

#include "icc_rt.h"

#define REG(base, off) (*(volatile uint32_t *)((base) + (off)))
#define DATA 0x00u
#define STATE 0x04u
#define CTRL 0x08u
#define INTCLEAR 0x0Cu
#define BAUDDIV 0x10u
#define STATE_TXFULL 0x1u
#define STATE_RXFULL 0x2u
#define CTRL_TXEN 0x1u
#define CTRL_RXEN 0x2u
#define CTRL_RXINTEN 0x8u
#define INT_RX 0x2u
#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)

static uintptr_t bell_uart;
static volatile uint32_t rung;

static void uart_ring(void *ctx)
{
    (void)ctx;
    while (REG(bell_uart, STATE) & STATE_TXFULL) {
    }
    REG(bell_uart, DATA) = 1u;
}

static void uart_wait(void *ctx)
{
    (void)ctx;
    __asm volatile("cpsid i" ::: "memory");
    if (!rung) {
        __asm volatile("dsb\n wfi" ::: "memory");
    }
    rung = 0;
    __asm volatile("cpsie i\n isb" ::: "memory");
}

/* UART1 RX on mps2-an386. */
void IRQ2_Handler(void)
{
    while (REG(bell_uart, STATE) & STATE_RXFULL) {
        (void)REG(bell_uart, DATA);
    }
    REG(bell_uart, INTCLEAR) = INT_RX;
    rung = 1;
}

void keel_icc_rt_uart_bell_init(keel_icc_rt_bell *bell, uintptr_t uart_base, unsigned rx_irq)
{
    bell_uart = uart_base;
    REG(uart_base, BAUDDIV) = 16u;
    REG(uart_base, CTRL) = CTRL_TXEN | CTRL_RXEN | CTRL_RXINTEN;
    NVIC_ISER0 = 1u << rx_irq;
    bell->ring = uart_ring;
    bell->wait = uart_wait;
    bell->gone = 0;
    bell->ctx = 0;
}

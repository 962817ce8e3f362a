/* Doorbell on a CMSDK APB UART, for mps2-an386 under QEMU, which has no mailbox peripheral.
 * Into this core: the connected core writes any byte to the UART's character device; the RX
 * interrupt drains it and sets a flag (and calls the wake hook an RTOS variant installs).
 * Out: we write one byte, which QEMU delivers to the character device at once (QEMU models no
 * baud-rate delay).
 *
 * Bare-metal sleeping without a lost wake-up: interrupts are masked (PRIMASK) while the flag
 * is tested; WFI still wakes on a pending interrupt with PRIMASK set, and the handler runs as
 * soon as interrupts are unmasked. */
#include <stdint.h>

#include "board.h"
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
/* Below the RTOS's syscall ceiling (numerically above), so the wake hook may call the kernel. */
#define BELL_IRQ_PRIORITY 0x80u

static void uart_ring(void *ctx)
{
    keel_icc_rt_uart *u = ctx;
    while (REG(u->base, STATE) & STATE_TXFULL) {
    }
    REG(u->base, DATA) = 1u;
}

static void uart_wait(void *ctx)
{
    keel_icc_rt_uart *u = ctx;
    __asm volatile("cpsid i" ::: "memory");
    if (!u->rung) {
        __asm volatile("dsb\n wfi" ::: "memory");
    }
    u->rung = 0;
    __asm volatile("cpsie i\n isb" ::: "memory");
}

static void uart_rx_irq(void *arg)
{
    keel_icc_rt_uart *u = arg;
    while (REG(u->base, STATE) & STATE_RXFULL) {
        (void)REG(u->base, DATA);
    }
    REG(u->base, INTCLEAR) = INT_RX;
    u->rung = 1;
    if (u->wake) {
        u->wake(u->wake_arg);
    }
}

void keel_icc_rt_uart_bell_init(keel_icc_rt_uart *u, keel_icc_rt_bell *bell, uintptr_t uart_base,
                                unsigned rx_irq)
{
    u->base = uart_base;
    u->rung = 0;
    REG(uart_base, BAUDDIV) = 16u;
    REG(uart_base, CTRL) = CTRL_TXEN | CTRL_RXEN | CTRL_RXINTEN;
    board_irq_attach(rx_irq, uart_rx_irq, u, BELL_IRQ_PRIORITY);
    bell->ring = uart_ring;
    bell->wait = uart_wait;
    bell->gone = 0;
    bell->ctx = u;
}

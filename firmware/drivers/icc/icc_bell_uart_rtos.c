/* The UART doorbell for a thread on Keel's RTOS: the bare-metal UART bell's interrupt also
 * puts a binary semaphore, and waiting takes it. A ring that lands between the ring-core's
 * "arm and re-check" and the take leaves the semaphore at 1, so the take returns at once. */
#include "icc_rt_rtos.h"

static void sem_wake(void *arg)
{
    (void)keel_rtos_sem_put(arg);
}

static void sem_wait(void *ctx)
{
    keel_icc_rt_uart *uart = ctx;
    (void)keel_rtos_sem_get(uart->wake_arg, KEEL_RTOS_WAIT_FOREVER);
}

keel_icc_err keel_icc_rt_uart_rtos_bell_init(keel_icc_rt_uart_rtos *u, keel_icc_rt_bell *bell,
                                             uintptr_t uart_base, unsigned rx_irq)
{
    if (keel_rtos_sem_create(&u->sem, 0, 1) != KEEL_RTOS_OK) {
        return KEEL_ICC_ERR_ARG;
    }
    u->uart.wake = sem_wake;
    u->uart.wake_arg = &u->sem;
    keel_icc_rt_uart_bell_init(&u->uart, bell, uart_base, rx_irq);
    bell->wait = sem_wait;
    return KEEL_ICC_OK;
}

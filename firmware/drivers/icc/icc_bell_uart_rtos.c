/* The UART doorbell for a thread on Keel's RTOS: the bare-metal UART bell's interrupt also
 * puts a binary semaphore, and waiting takes it. A ring that lands between the ring-core's
 * "arm and re-check" and the take leaves the semaphore at 1, so the take returns at once.
 * A group shares one UART among several channels: the interrupt puts every member's
 * semaphore. */
#include "icc_rt_rtos.h"

static void sem_wake(void *arg)
{
    (void)keel_rtos_sem_put(arg);
}

/* The wait is bounded to one tick: the ring core re-checks the ring after every wake, so a
 * timeout costs one look, and it bounds a doorbell lost to a store-load reordering the
 * platform does not fence. QEMU's single-threaded TCG (-icount) emits no host fence for a
 * guest DMB, so on an x86 host the guest's "arm, then re-check" can pass the connected core's
 * "publish, then look at the flag" and neither side rings: without the bound the RT thread
 * would sleep until the next message, which may never come. */
#define ICC_BELL_POLL_TICKS 1u

static void sem_wait(void *ctx)
{
    keel_icc_rt_uart *uart = ctx;
    (void)keel_rtos_sem_get(uart->wake_arg, ICC_BELL_POLL_TICKS);
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

static void group_wake(void *arg)
{
    keel_icc_rt_uart_group *g = arg;
    for (unsigned i = 0; i < g->count; i++) {
        (void)keel_rtos_sem_put(&g->member[i].sem);
    }
}

static void member_wait(void *ctx)
{
    keel_icc_rt_uart_member *m = ctx;
    (void)keel_rtos_sem_get(&m->sem, ICC_BELL_POLL_TICKS);
}

static void member_ring(void *ctx)
{
    keel_icc_rt_uart_member *m = ctx;
    m->group->out.ring(m->group->out.ctx);
}

keel_icc_err keel_icc_rt_uart_group_init(keel_icc_rt_uart_group *g, keel_icc_rt_bell *bells,
                                         unsigned count, uintptr_t uart_base, unsigned rx_irq)
{
    if (!g || !bells || count == 0 || count > KEEL_ICC_RT_UART_GROUP_MAX) {
        return KEEL_ICC_ERR_ARG;
    }
    g->count = 0;
    for (unsigned i = 0; i < count; i++) {
        if (keel_rtos_sem_create(&g->member[i].sem, 0, 1) != KEEL_RTOS_OK) {
            return KEEL_ICC_ERR_ARG;
        }
        g->member[i].group = g;
        bells[i] =
            (keel_icc_rt_bell){.ring = member_ring, .wait = member_wait, .ctx = &g->member[i]};
    }
    g->count = count; /* before the interrupt is attached: it reads count */
    g->uart.wake = group_wake;
    g->uart.wake_arg = g;
    keel_icc_rt_uart_bell_init(&g->uart, &g->out, uart_base, rx_irq);
    return KEEL_ICC_OK;
}

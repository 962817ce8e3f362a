/* Doorbell for the RTOS sim port: the real-time core is a host process, the connected core
 * rings it through an eventfd. The sim watches that fd and raises a virtual interrupt line
 * while it is readable; the handler drains it and gives a semaphore the waiting thread takes.
 * Ringing the other way writes the connected core's eventfd, as a real core writes its
 * mailbox register.
 *
 * The optional link fd is the channel's hang-up socket: when the connected core dies it
 * becomes readable (EOF), the sim raises a second line, and the handler marks the peer gone
 * and wakes the thread so it can stop instead of waiting forever. */
#include <stdint.h>
#include <unistd.h>

#include "icc_rt_sim.h"
#include "keel/rtos_sim.h"

static void bell_irq(void *arg)
{
    keel_icc_rt_sim_bell *b = arg;
    uint64_t v;
    ssize_t n = read(b->bell_in, &v, sizeof v); /* level-triggered: must drain */
    (void)n;
    (void)keel_rtos_sem_put(&b->sem);
}

static void link_irq(void *arg)
{
    keel_icc_rt_sim_bell *b = arg;
    /* A hung-up socket stays readable: stop watching it, or the line would never drop. */
    (void)keel_sim_fd_detach(b->link);
    b->peer_gone = true;
    (void)keel_rtos_sem_put(&b->sem);
}

static void sim_ring(void *ctx)
{
    keel_icc_rt_sim_bell *b = ctx;
    uint64_t one = 1;
    ssize_t n = write(b->bell_out, &one, sizeof one);
    (void)n;
}

static bool sim_gone(void *ctx)
{
    return ((keel_icc_rt_sim_bell *)ctx)->peer_gone;
}

static void sim_wait(void *ctx)
{
    keel_icc_rt_sim_bell *b = ctx;
    if (!b->peer_gone) {
        (void)keel_rtos_sem_get(&b->sem, KEEL_RTOS_WAIT_FOREVER);
    }
}

keel_icc_err keel_icc_rt_sim_bell_init(keel_icc_rt_sim_bell *b, keel_icc_rt_bell *bell, int bell_in,
                                       int bell_out, int link, unsigned irq)
{
    b->bell_in = bell_in;
    b->bell_out = bell_out;
    b->link = link;
    b->peer_gone = false;
    if (keel_rtos_sem_create(&b->sem, 0, 1) != KEEL_RTOS_OK ||
        keel_sim_irq_attach(irq, bell_irq, b) != KEEL_SIM_OK ||
        keel_sim_fd_attach(bell_in, irq) != KEEL_SIM_OK) {
        return KEEL_ICC_ERR_ARG;
    }
    if (link >= 0 && (keel_sim_irq_attach(irq + 1, link_irq, b) != KEEL_SIM_OK ||
                      keel_sim_fd_attach(link, irq + 1) != KEEL_SIM_OK)) {
        return KEEL_ICC_ERR_ARG;
    }
    bell->ring = sim_ring;
    bell->wait = sim_wait;
    bell->gone = sim_gone;
    bell->ctx = b;
    return KEEL_ICC_OK;
}

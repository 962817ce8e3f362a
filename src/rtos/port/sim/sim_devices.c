/* The sim port's devices side: the heap of timed events (ordered by instant, then by the
 * order they were scheduled, so equal instants are deterministic), interrupt lines, and host
 * file descriptors that raise lines while readable. */
#include <poll.h>
#include <time.h>

#include "keel/rtos_sim.h"
#include "rtos_private.h"
#include "sim_private.h"

static const char *const sim_err_names[KEEL_SIM_ERR_COUNT] = {
    [KEEL_SIM_OK] = "KEEL_SIM_OK",
    [KEEL_SIM_ERR_INVALID] = "KEEL_SIM_ERR_INVALID",
    [KEEL_SIM_ERR_BUSY] = "KEEL_SIM_ERR_BUSY",
    [KEEL_SIM_ERR_NO_SIM] = "KEEL_SIM_ERR_NO_SIM",
    [KEEL_SIM_ERR_FULL] = "KEEL_SIM_ERR_FULL",
};

const char *keel_sim_err_name(keel_sim_err e)
{
    if ((unsigned)e >= KEEL_SIM_ERR_COUNT) {
        return "KEEL_SIM_ERR_UNKNOWN";
    }
    return sim_err_names[e];
}

/* ---- the event heap ---- */

static bool ev_before(const keel_sim_event *a, const keel_sim_event *b)
{
    return a->at_ns < b->at_ns || (a->at_ns == b->at_ns && a->seq < b->seq);
}

static void heap_set(size_t i, keel_sim_event *ev)
{
    S.heap[i] = ev;
    ev->slot = (int32_t)i;
}

static void heap_up(size_t i)
{
    keel_sim_event *ev = S.heap[i];
    while (i > 0 && ev_before(ev, S.heap[(i - 1) / 2])) {
        heap_set(i, S.heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(i, ev);
}

static void heap_down(size_t i)
{
    keel_sim_event *ev = S.heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= S.nheap) {
            break;
        }
        if (c + 1 < S.nheap && ev_before(S.heap[c + 1], S.heap[c])) {
            c++;
        }
        if (!ev_before(S.heap[c], ev)) {
            break;
        }
        heap_set(i, S.heap[c]);
        i = c;
    }
    heap_set(i, ev);
}

void sim_heap_remove(size_t i)
{
    keel_sim_event *gone = S.heap[i];
    S.nheap--;
    if (i < S.nheap && S.nheap < SIM_MAX_EVENTS) {
        heap_set(i, S.heap[S.nheap]);
        /* i < nheap < SIM_MAX_EVENTS here, which cppcheck cannot follow through slot. */
        // cppcheck-suppress arrayIndexOutOfBoundsCond
        if (i > 0 && ev_before(S.heap[i], S.heap[(i - 1) / 2])) {
            heap_up(i);
        } else {
            heap_down(i);
        }
    }
    gone->slot = -1;
}

bool sim_poll_fds(uint64_t timeout_ns)
{
    struct pollfd p[KEEL_SIM_MAX_FDS];
    for (size_t i = 0; i < S.nfds; i++) {
        p[i].fd = S.fds[i].fd;
        p[i].events = POLLIN;
        p[i].revents = 0;
    }
    struct timespec ts, *tsp = NULL;
    if (timeout_ns != KEEL_SIM_FOREVER) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000ull);
        ts.tv_nsec = (long)(timeout_ns % 1000000000ull);
        tsp = &ts;
    }
    int r = ppoll(p, S.nfds, tsp, NULL);
    if (r <= 0) {
        return false;
    }
    for (size_t i = 0; i < S.nfds; i++) {
        if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
            S.irq_pending |= 1ull << S.fds[i].irq;
        }
    }
    return true;
}


/* ---- events ---- */

bool keel_sim_event_pending(const keel_sim_event *ev)
{
    return ev != NULL && ev->slot >= 0 && (size_t)ev->slot < S.nheap && S.heap[ev->slot] == ev;
}

keel_sim_err keel_sim_event_schedule(keel_sim_event *ev, uint64_t at_ns, void (*fn)(void *arg),
                                     void *arg)
{
    if (!S.exists) {
        return KEEL_SIM_ERR_NO_SIM;
    }
    if (ev == NULL || fn == NULL || at_ns < S.now) {
        return KEEL_SIM_ERR_INVALID;
    }
    if (keel_sim_event_pending(ev)) {
        sim_heap_remove((size_t)ev->slot);
    }
    if (S.nheap == SIM_MAX_EVENTS) {
        return KEEL_SIM_ERR_FULL;
    }
    ev->at_ns = at_ns;
    ev->seq = S.seq++;
    ev->fn = fn;
    ev->arg = arg;
    S.heap[S.nheap] = ev;
    ev->slot = (int32_t)S.nheap;
    S.nheap++;
    heap_up(S.nheap - 1);
    return KEEL_SIM_OK;
}

void keel_sim_event_cancel(keel_sim_event *ev)
{
    if (keel_sim_event_pending(ev)) {
        sim_heap_remove((size_t)ev->slot);
    }
}

/* ---- interrupt lines ---- */

keel_sim_err keel_sim_irq_attach(unsigned irq, void (*handler)(void *arg), void *arg)
{
    if (!S.exists) {
        return KEEL_SIM_ERR_NO_SIM;
    }
    if (irq >= KEEL_SIM_IRQ_COUNT || handler == NULL) {
        return KEEL_SIM_ERR_INVALID;
    }
    S.irq[irq].fn = handler;
    S.irq[irq].arg = arg;
    S.irq_enabled |= 1ull << irq;
    return KEEL_SIM_OK;
}

keel_sim_err keel_sim_irq_enable(unsigned irq, bool enabled)
{
    if (irq >= KEEL_SIM_IRQ_COUNT || (enabled && S.irq[irq].fn == NULL)) {
        return KEEL_SIM_ERR_INVALID;
    }
    if (enabled) {
        S.irq_enabled |= 1ull << irq;
    } else {
        S.irq_enabled &= ~(1ull << irq);
    }
    return KEEL_SIM_OK;
}

keel_sim_err keel_sim_irq_raise(unsigned irq)
{
    if (!S.exists) {
        return KEEL_SIM_ERR_NO_SIM;
    }
    if (irq >= KEEL_SIM_IRQ_COUNT) {
        return KEEL_SIM_ERR_INVALID;
    }
    S.irq_pending |= 1ull << irq;
    if (keel_sim_cpu.in_run && keel_sim_cpu.isr_depth == 0 && keel_sim_cpu.nesting == 0 &&
        keel_rtos_k.current != &keel_rtos_k.idle && S.parked == NULL) {
        sim_thread_point(); /* a thread raised it: taken at once */
    }
    return KEEL_SIM_OK;
}

bool keel_sim_irq_pending(unsigned irq)
{
    return irq < KEEL_SIM_IRQ_COUNT && (S.irq_pending & (1ull << irq)) != 0;
}

keel_sim_err keel_sim_fd_attach(int fd, unsigned irq)
{
    if (!S.exists) {
        return KEEL_SIM_ERR_NO_SIM;
    }
    if (fd < 0 || irq >= KEEL_SIM_IRQ_COUNT) {
        return KEEL_SIM_ERR_INVALID;
    }
    if (S.nfds == KEEL_SIM_MAX_FDS) {
        return KEEL_SIM_ERR_FULL;
    }
    S.fds[S.nfds].fd = fd;
    S.fds[S.nfds].irq = irq;
    S.nfds++;
    return KEEL_SIM_OK;
}

keel_sim_err keel_sim_fd_detach(int fd)
{
    for (size_t i = 0; i < S.nfds; i++) {
        if (S.fds[i].fd == fd) {
            S.fds[i] = S.fds[--S.nfds];
            return KEEL_SIM_OK;
        }
    }
    return KEEL_SIM_ERR_INVALID;
}

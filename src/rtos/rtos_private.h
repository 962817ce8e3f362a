/* Kernel internals shared by the kernel's files and its ports: the kernel state, intrusive
 * lists, and the port contract.
 *
 * The port contract (each port's keel_port.h supplies these, mostly inline):
 *   keel_port_irq_t keel_port_lock(void)        enter a critical section (nests)
 *   void keel_port_unlock(keel_port_irq_t)      leave it; a pending switch happens here
 *   bool keel_port_in_isr(void)                 interrupt context?
 *   void keel_port_pend_switch(void)            switch to keel_rtos_k.next when possible
 *   void keel_port_service_cost(void)           charge a kernel service's time (sim only)
 *   uint64_t keel_port_timestamp(void)          run-time statistics clock
 *   void keel_port_thread_init(keel_rtos_thread *t)  build t's first context on its stack
 *   void keel_port_start(void)                  start scheduling (keel_rtos_start)
 * and calls keel_rtos_tick_announce() from its tick source and keel_rtos_idle_hook() when idle.
 *
 * Invariants: the running thread stays at the head of its priority's ready list;
 * keel_rtos_k.next is always the head of the most urgent non-empty ready list (or the idle
 * thread), recomputed by kr_reschedule() after any change to the ready lists. */
#ifndef KEEL_RTOS_PRIVATE_H
#define KEEL_RTOS_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "keel/rtos.h"

#if KEEL_RTOS_PRIORITIES > 32 || KEEL_RTOS_PRIORITIES < 2
#error "KEEL_RTOS_PRIORITIES must be 2..32"
#endif

#define KR_TIMEOUT_THREAD 1u
#define KR_TIMEOUT_TIMER 2u

#define KR_STACK_PAINT 0xa5u
#define KR_STACK_GUARD_BYTES 16u

struct keel_rtos_kernel {
    keel_rtos_thread *current;
    keel_rtos_thread *next;
    uint32_t ready_map; /* bit p set: ready[p] not empty */
    uint32_t switch_count;
    struct keel_rtos_list ready[KEEL_RTOS_PRIORITIES];
    struct keel_rtos_list timeouts; /* sorted by deadline, FIFO among equals */
    struct keel_rtos_list threads;
    uint64_t ticks;
    keel_rtos_thread idle;
    keel_rtos_overflow_handler overflow;
    int started;
};

extern struct keel_rtos_kernel keel_rtos_k;

#include "keel_port.h"

#define KR_CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static inline void kr_list_init(struct keel_rtos_list *l)
{
    l->next = l->prev = l;
}
static inline int kr_list_empty(const struct keel_rtos_list *l)
{
    return l->next == l;
}
static inline void kr_list_insert_before(struct keel_rtos_list *pos, struct keel_rtos_list *n)
{
    n->next = pos;
    n->prev = pos->prev;
    pos->prev->next = n;
    pos->prev = n;
}
static inline void kr_list_append(struct keel_rtos_list *l, struct keel_rtos_list *n)
{
    kr_list_insert_before(l, n);
}
static inline void kr_list_remove(struct keel_rtos_list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = NULL;
}
static inline int kr_list_linked(const struct keel_rtos_list *n)
{
    return n->next != NULL;
}

static inline keel_rtos_thread *kr_thread_of(struct keel_rtos_list *n)
{
    return KR_CONTAINER(n, keel_rtos_thread, node);
}

/* Ready lists. */
static inline void kr_ready_insert(keel_rtos_thread *t)
{
    kr_list_append(&keel_rtos_k.ready[t->priority], &t->node);
    keel_rtos_k.ready_map |= 1u << t->priority;
}
static inline void kr_ready_insert_head(keel_rtos_thread *t)
{
    kr_list_insert_before(keel_rtos_k.ready[t->priority].next, &t->node);
    keel_rtos_k.ready_map |= 1u << t->priority;
}
static inline void kr_ready_remove(keel_rtos_thread *t)
{
    kr_list_remove(&t->node);
    if (kr_list_empty(&keel_rtos_k.ready[t->priority])) {
        keel_rtos_k.ready_map &= ~(1u << t->priority);
    }
}

void kr_check_stack(keel_rtos_thread *t);

/* Picks the thread to run and asks the port to switch if it changed. Inside a critical
 * section. The outgoing thread's stack guard is checked here, the last moment it is known. */
static inline void kr_reschedule(void)
{
    uint32_t map = keel_rtos_k.ready_map;
    keel_rtos_thread *next =
        map ? kr_thread_of(keel_rtos_k.ready[__builtin_ctz(map)].next) : &keel_rtos_k.idle;
    keel_rtos_k.next = next;
    if (next != keel_rtos_k.current) {
        kr_check_stack(keel_rtos_k.current);
        keel_port_pend_switch();
    }
}

/* Waiting. kr_wait() blocks the current thread on q (priority order; NULL: just a timeout),
 * leaves the critical section `s`, and returns the status its waker gave. */
keel_rtos_err kr_wait(struct keel_rtos_list *q, uint32_t timeout, keel_port_irq_t s);
/* Ends t's wait with `status` and makes it ready (or suspended). No reschedule. */
void kr_wake(keel_rtos_thread *t, keel_rtos_err status);
/* Wakes every waiter on q with status (object deletion). No reschedule. */
void kr_wake_all(struct keel_rtos_list *q, keel_rtos_err status);
void kr_waitq_insert(struct keel_rtos_list *q, keel_rtos_thread *t);

/* Priority inheritance (mutex.c): recomputes an owner's effective priority from its base and
 * the most urgent waiter of every mutex it owns, and follows the chain if it waits too. */
void kr_mutex_recompute(keel_rtos_thread *owner);
/* Changes t's effective priority, moving it in its ready or wait list (kernel.c). */
void kr_set_priority(keel_rtos_thread *t, uint8_t prio);
void kr_thread_exit(void);

/* Fast word copy for messages (newlib-nano's memcpy copies bytes). */
static inline void kr_copy(void *dst, const void *src, uint32_t n)
{
    if ((((uintptr_t)dst | (uintptr_t)src | n) & 3u) == 0) {
        uint32_t *d = dst;
        const uint32_t *s = src;
        for (uint32_t i = 0; i < n / 4u; i++) {
            d[i] = s[i];
        }
    } else {
        uint8_t *d = dst;
        const uint8_t *s = src;
        for (uint32_t i = 0; i < n; i++) {
            d[i] = s[i];
        }
    }
}

#endif

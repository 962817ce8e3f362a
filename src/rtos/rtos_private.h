/* Kernel internals shared by the kernel's files and its ports: the kernel state, intrusive
 * lists, and the port contract.
 *
 * The port contract (each port's keel_port.h supplies these, mostly inline):
 *   keel_port_irq_t keel_port_lock(void)        enter a critical section (nests)
 *   void keel_port_unlock(keel_port_irq_t)      leave it; a pending switch happens here
 *   void keel_port_unlock_switch(keel_port_irq_t)  leave it, and do not return before a
 *                                               pending switch has happened (blocking paths)
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

/* ready[p] is the head of a ring of the ready threads of priority p (the running thread is
 * the head of its ring), NULL if none; ready[32] is always the idle thread, so the most
 * urgent ready thread is ready[kr_first(ready_map)] with kr_first(0) == 32. */
#define KR_IDLE_INDEX 32u
struct keel_rtos_kernel {
    keel_rtos_thread *current;
    keel_rtos_thread *next;
    uint32_t ready_map; /* bit p set: ready[p] not empty */
    uint32_t switch_count;
    keel_rtos_thread *ready[KR_IDLE_INDEX + 1u];
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

/* Index of the lowest set bit, 32 for none. */
static inline uint32_t kr_first(uint32_t map)
{
#if defined(__arm__) && !defined(__linux__)
    uint32_t r;
    __asm("rbit %0, %1\n\tclz %0, %0" : "=r"(r) : "r"(map)); /* clz(0) == 32 */
    return r;
#else
    return map ? (uint32_t)__builtin_ctz(map) : KR_IDLE_INDEX;
#endif
}

/* Ready rings. */
static inline void kr_ready_insert(keel_rtos_thread *t)
{
    keel_rtos_thread **h = &keel_rtos_k.ready[t->priority];
    keel_rtos_thread *head = *h;
    if (head == NULL) {
        *h = t;
        t->rnext = t->rprev = t;
        keel_rtos_k.ready_map |= 1u << t->priority;
    } else {
        t->rnext = head;
        t->rprev = head->rprev;
        head->rprev->rnext = t;
        head->rprev = t;
    }
}
static inline void kr_ready_insert_head(keel_rtos_thread *t)
{
    kr_ready_insert(t);
    keel_rtos_k.ready[t->priority] = t;
}
static inline void kr_ready_remove(keel_rtos_thread *t)
{
    if (t->rnext == t) {
        keel_rtos_k.ready[t->priority] = NULL;
        keel_rtos_k.ready_map &= ~(1u << t->priority);
    } else {
        t->rprev->rnext = t->rnext;
        t->rnext->rprev = t->rprev;
        if (keel_rtos_k.ready[t->priority] == t) {
            keel_rtos_k.ready[t->priority] = t->rnext;
        }
    }
}

#define KR_PAINT_WORD (0x01010101u * KR_STACK_PAINT)
void kr_stack_overflow(keel_rtos_thread *t);

/* Picks the thread to run and asks the port to switch if it changed. Inside a critical
 * section. The outgoing thread's stack guard (its lowest and highest guard words) is checked
 * here, the last moment it is known; the idle thread has a painted guard of its own. */
static inline void kr_reschedule(void)
{
    keel_rtos_thread *next = keel_rtos_k.ready[kr_first(keel_rtos_k.ready_map)];
    keel_rtos_thread *cur = keel_rtos_k.current;
    keel_rtos_k.next = next;
    if (next != cur) {
        const uint32_t *g = (const uint32_t *)(void *)cur->stack;
        if (__builtin_expect(g[0] != KR_PAINT_WORD || g[3] != KR_PAINT_WORD, 0)) {
            kr_stack_overflow(cur);
        }
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

#endif

/* Mutexes: recursive, owned, with priority inheritance through chains.
 *
 * An owner's effective priority is the most urgent of its base priority and the head waiter
 * of every mutex it owns (wait lists are in priority order). Whenever a waiter arrives,
 * leaves (timeout, abort, deletion) or changes priority, the owner is recomputed; if the
 * owner itself waits on a mutex, its new priority moves it in that wait list and the
 * recomputation continues with that mutex's owner, so a chain A -> B -> C lifts C too.
 * Unlock hands the mutex straight to the most urgent waiter, so it cannot be stolen. */
#include "rtos_private.h"

void kr_mutex_recompute(keel_rtos_thread *owner)
{
    uint8_t p = owner->base_priority;
    for (struct keel_rtos_list *n = owner->owned_mutexes.next; n != &owner->owned_mutexes;
         n = n->next) {
        keel_rtos_mutex *m = KR_CONTAINER(n, keel_rtos_mutex, owned);
        if (!kr_list_empty(&m->waiters)) {
            uint8_t wp = kr_thread_of(m->waiters.next)->priority;
            if (wp < p) {
                p = wp;
            }
        }
    }
    kr_set_priority(owner, p); /* follows the chain if owner waits on a mutex */
}

keel_rtos_err keel_rtos_mutex_create(keel_rtos_mutex *m)
{
    if (m == NULL) {
        return KEEL_RTOS_ERR_INVALID;
    }
    kr_list_init(&m->waiters);
    m->owned.next = m->owned.prev = NULL;
    m->owner = NULL;
    m->recursion = 0;
    return KEEL_RTOS_OK;
}

keel_rtos_err keel_rtos_mutex_delete(keel_rtos_mutex *m)
{
    keel_port_service_cost();
    if (m == NULL) {
        return KEEL_RTOS_ERR_INVALID;
    }
    keel_port_irq_t s = keel_port_lock();
    keel_rtos_thread *owner = m->owner;
    /* Waking a mutex waiter recomputes the owner; detach first so nothing points here. */
    m->owner = NULL;
    if (owner != NULL) {
        kr_list_remove(&m->owned);
    }
    while (!kr_list_empty(&m->waiters)) {
        keel_rtos_thread *w = kr_thread_of(m->waiters.next);
        w->blocked_on = NULL;
        kr_wake(w, KEEL_RTOS_ERR_DELETED);
    }
    if (owner != NULL) {
        kr_mutex_recompute(owner);
    }
    m->recursion = 0;
    kr_reschedule();
    keel_port_unlock(s);
    return KEEL_RTOS_OK;
}

keel_rtos_err keel_rtos_mutex_lock(keel_rtos_mutex *m, uint32_t timeout)
{
    keel_port_service_cost();
    keel_port_irq_t s = keel_port_lock();
    keel_rtos_thread *self = keel_rtos_k.current;
    if (keel_port_in_isr() || self == &keel_rtos_k.idle) {
        keel_port_unlock(s);
        return KEEL_RTOS_ERR_ISR;
    }
    if (m->owner == NULL) {
        m->owner = self;
        m->recursion = 1;
        kr_list_append(&self->owned_mutexes, &m->owned);
        keel_port_unlock(s);
        return KEEL_RTOS_OK;
    }
    if (m->owner == self) {
        m->recursion++;
        keel_port_unlock(s);
        return KEEL_RTOS_OK;
    }
    if (timeout == KEEL_RTOS_NO_WAIT) {
        keel_port_unlock(s);
        return KEEL_RTOS_ERR_UNAVAILABLE;
    }
    /* kr_wait() queues us and then lifts the owner's chain (see blocked_on). */
    self->blocked_on = m;
    return kr_wait(&m->waiters, timeout, s);
}

keel_rtos_err keel_rtos_mutex_unlock(keel_rtos_mutex *m)
{
    keel_port_service_cost();
    keel_port_irq_t s = keel_port_lock();
    keel_rtos_thread *self = keel_rtos_k.current;
    if (keel_port_in_isr()) {
        keel_port_unlock(s); /* an interrupt owns nothing, whatever thread it interrupted */
        return KEEL_RTOS_ERR_ISR;
    }
    if (m->owner != self || self == &keel_rtos_k.idle) {
        keel_port_unlock(s);
        return KEEL_RTOS_ERR_NOT_OWNER;
    }
    if (--m->recursion != 0) {
        keel_port_unlock(s);
        return KEEL_RTOS_OK;
    }
    kr_list_remove(&m->owned);
    m->owner = NULL;
    if (!kr_list_empty(&m->waiters)) {
        keel_rtos_thread *w = kr_thread_of(m->waiters.next);
        w->blocked_on = NULL;
        m->owner = w;
        m->recursion = 1;
        kr_list_append(&w->owned_mutexes, &m->owned);
        kr_wake(w, KEEL_RTOS_OK);
        kr_mutex_recompute(w); /* remaining waiters now lift the new owner */
    }
    kr_mutex_recompute(self); /* drop what this mutex lent us */
    kr_reschedule();
    keel_port_unlock(s);
    return KEEL_RTOS_OK;
}

keel_rtos_thread *keel_rtos_mutex_owner(const keel_rtos_mutex *m)
{
    return m->owner;
}

/* Counting semaphores. The fast paths (a count to take, no waiter to wake) touch no list. */
#include "rtos_private.h"

keel_rtos_err keel_rtos_sem_create(keel_rtos_sem *s, uint32_t initial, uint32_t max)
{
    if (s == NULL) {
        return KEEL_RTOS_ERR_INVALID;
    }
    if (max == 0) {
        max = UINT32_MAX;
    }
    if (initial > max) {
        return KEEL_RTOS_ERR_INVALID;
    }
    kr_list_init(&s->waiters);
    s->count = initial;
    s->max = max;
    return KEEL_RTOS_OK;
}

keel_rtos_err keel_rtos_sem_delete(keel_rtos_sem *s)
{
    keel_port_service_cost();
    if (s == NULL) {
        return KEEL_RTOS_ERR_INVALID;
    }
    keel_port_irq_t st = keel_port_lock();
    kr_wake_all(&s->waiters, KEEL_RTOS_ERR_DELETED);
    s->count = 0;
    kr_reschedule();
    keel_port_unlock(st);
    return KEEL_RTOS_OK;
}

keel_rtos_err keel_rtos_sem_get(keel_rtos_sem *s, uint32_t timeout)
{
    keel_port_service_cost();
    keel_port_irq_t st = keel_port_lock();
    if (s->count != 0) {
        s->count--;
        keel_port_unlock(st);
        return KEEL_RTOS_OK;
    }
    if (timeout == KEEL_RTOS_NO_WAIT) {
        keel_port_unlock(st);
        return KEEL_RTOS_ERR_UNAVAILABLE;
    }
    keel_rtos_err e = kr_wait(&s->waiters, timeout, st);
    return e;
}

keel_rtos_err keel_rtos_sem_put(keel_rtos_sem *s)
{
    keel_port_service_cost();
    keel_port_irq_t st = keel_port_lock();
    if (!kr_list_empty(&s->waiters)) {
        /* The count goes straight to the most urgent waiter. */
        kr_wake(kr_thread_of(s->waiters.next), KEEL_RTOS_OK);
        kr_reschedule();
        keel_port_unlock(st);
        return KEEL_RTOS_OK;
    }
    if (s->count == s->max) {
        keel_port_unlock(st);
        return KEEL_RTOS_ERR_OVERFLOW;
    }
    s->count++;
    keel_port_unlock(st);
    return KEEL_RTOS_OK;
}

uint32_t keel_rtos_sem_count(const keel_rtos_sem *s)
{
    return s->count;
}

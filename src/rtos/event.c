/* Event flags: 32 flags per group; a waiter asks for any (OR) or all (AND) of a set and may
 * clear what it asked for when satisfied. Setting flags walks the waiters in priority order,
 * so with CLEAR the most urgent waiter consumes the flags first. */
#include "rtos_private.h"

static int satisfied(uint32_t flags, uint32_t requested, uint32_t options)
{
    return (options & KEEL_RTOS_EVENT_AND) ? (flags & requested) == requested
                                           : (flags & requested) != 0;
}

keel_rtos_err keel_rtos_event_create(keel_rtos_event *e)
{
    if (e == NULL) {
        return KEEL_RTOS_ERR_INVALID;
    }
    kr_list_init(&e->waiters);
    e->flags = 0;
    return KEEL_RTOS_OK;
}

keel_rtos_err keel_rtos_event_delete(keel_rtos_event *e)
{
    keel_port_service_cost();
    if (e == NULL) {
        return KEEL_RTOS_ERR_INVALID;
    }
    keel_port_irq_t s = keel_port_lock();
    kr_wake_all(&e->waiters, KEEL_RTOS_ERR_DELETED);
    e->flags = 0;
    kr_reschedule();
    keel_port_unlock(s);
    return KEEL_RTOS_OK;
}

keel_rtos_err keel_rtos_event_set(keel_rtos_event *e, uint32_t flags)
{
    keel_port_service_cost();
    keel_port_irq_t s = keel_port_lock();
    e->flags |= flags;
    struct keel_rtos_list *n = e->waiters.next;
    int woke = 0;
    while (n != &e->waiters && e->flags != 0) {
        struct keel_rtos_list *next = n->next;
        keel_rtos_thread *w = kr_thread_of(n);
        if (satisfied(e->flags, w->wait_value, w->wait_option)) {
            if (w->wait_data != NULL) {
                *(uint32_t *)w->wait_data = e->flags;
            }
            if (w->wait_option & KEEL_RTOS_EVENT_CLEAR) {
                e->flags &= ~w->wait_value;
            }
            kr_wake(w, KEEL_RTOS_OK);
            woke = 1;
        }
        n = next;
    }
    if (woke) {
        kr_reschedule();
    }
    keel_port_unlock(s);
    return KEEL_RTOS_OK;
}

keel_rtos_err keel_rtos_event_clear(keel_rtos_event *e, uint32_t flags)
{
    keel_port_service_cost();
    keel_port_irq_t s = keel_port_lock();
    e->flags &= ~flags;
    keel_port_unlock(s);
    return KEEL_RTOS_OK;
}

keel_rtos_err keel_rtos_event_wait(keel_rtos_event *e, uint32_t requested, uint32_t options,
                                   uint32_t *actual, uint32_t timeout)
{
    keel_port_service_cost();
    if (e == NULL || requested == 0 || (options & ~3u) != 0) {
        return KEEL_RTOS_ERR_INVALID;
    }
    keel_port_irq_t s = keel_port_lock();
    if (satisfied(e->flags, requested, options)) {
        if (actual != NULL) {
            *actual = e->flags;
        }
        if (options & KEEL_RTOS_EVENT_CLEAR) {
            e->flags &= ~requested;
        }
        keel_port_unlock(s);
        return KEEL_RTOS_OK;
    }
    if (timeout == KEEL_RTOS_NO_WAIT) {
        keel_port_unlock(s);
        return KEEL_RTOS_ERR_UNAVAILABLE;
    }
    keel_rtos_thread *t = keel_rtos_k.current;
    t->wait_value = requested;
    t->wait_option = options;
    t->wait_data = actual;
    return kr_wait(&e->waiters, timeout, s);
}

uint32_t keel_rtos_event_get(const keel_rtos_event *e)
{
    return e->flags;
}

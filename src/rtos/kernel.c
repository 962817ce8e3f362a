/* The kernel core: ready lists and the scheduling decision, threads, the tick with its one
 * sorted list of deadlines (thread timeouts and software timers), waiting and waking.
 *
 * Everything here runs inside a critical section (keel_port_lock) and trusts its caller once
 * the public function has checked the arguments. A switch is only requested here
 * (kr_reschedule -> keel_port_pend_switch); the port performs it when the critical section
 * ends and no interrupt handler is running. */
#include <string.h>

#include "rtos_private.h"

struct keel_rtos_kernel keel_rtos_k;
/* The idle thread's stack guard (its stack is the port's: the host's, or the port's own). */
static uint32_t idle_guard[KR_STACK_GUARD_BYTES / 4u];

static const char *const err_names[KEEL_RTOS_ERR_COUNT] = {
    [KEEL_RTOS_OK] = "KEEL_RTOS_OK",
    [KEEL_RTOS_ERR_TIMEOUT] = "KEEL_RTOS_ERR_TIMEOUT",
    [KEEL_RTOS_ERR_UNAVAILABLE] = "KEEL_RTOS_ERR_UNAVAILABLE",
    [KEEL_RTOS_ERR_DELETED] = "KEEL_RTOS_ERR_DELETED",
    [KEEL_RTOS_ERR_INVALID] = "KEEL_RTOS_ERR_INVALID",
    [KEEL_RTOS_ERR_ISR] = "KEEL_RTOS_ERR_ISR",
    [KEEL_RTOS_ERR_NOT_OWNER] = "KEEL_RTOS_ERR_NOT_OWNER",
    [KEEL_RTOS_ERR_OVERFLOW] = "KEEL_RTOS_ERR_OVERFLOW",
    [KEEL_RTOS_ERR_STATE] = "KEEL_RTOS_ERR_STATE",
    [KEEL_RTOS_ERR_ABORTED] = "KEEL_RTOS_ERR_ABORTED",
};

const char *keel_rtos_err_name(keel_rtos_err e)
{
    if ((unsigned)e >= KEEL_RTOS_ERR_COUNT) {
        return "KEEL_RTOS_ERR_UNKNOWN";
    }
    return err_names[e];
}

void keel_rtos_init(void)
{
    memset(&keel_rtos_k, 0, sizeof keel_rtos_k);
    kr_list_init(&keel_rtos_k.timeouts);
    kr_list_init(&keel_rtos_k.threads);
    keel_rtos_thread *idle = &keel_rtos_k.idle;
    idle->name = "idle";
    idle->priority = idle->base_priority = KEEL_RTOS_PRIORITIES;
    idle->state = KEEL_RTOS_THREAD_READY;
    idle->rnext = idle->rprev = idle;
    for (unsigned i = 0; i < sizeof idle_guard / sizeof idle_guard[0]; i++) {
        idle_guard[i] = KR_PAINT_WORD;
    }
    idle->stack = (uint8_t *)idle_guard;
    keel_rtos_k.ready[KR_IDLE_INDEX] = idle;
    kr_list_init(&idle->owned_mutexes);
    keel_rtos_k.current = keel_rtos_k.next = idle;
    keel_port_init();
}

void keel_rtos_start(void)
{
    keel_rtos_k.started = 1;
    keel_port_start();
}

uint64_t keel_rtos_ticks(void)
{
    keel_port_irq_t s = keel_port_lock();
    uint64_t t = keel_rtos_k.ticks;
    keel_port_unlock(s);
    return t;
}

bool keel_rtos_in_isr(void)
{
    return keel_port_in_isr();
}

void keel_rtos_set_overflow_handler(keel_rtos_overflow_handler fn)
{
    keel_rtos_k.overflow = fn;
}

/* ---- deadlines ---- */

static void timeout_insert(struct keel_rtos_timeout *to)
{
    /* From the tail: a new deadline is usually the latest. Equal deadlines keep FIFO order. */
    struct keel_rtos_list *pos = keel_rtos_k.timeouts.prev;
    while (pos != &keel_rtos_k.timeouts &&
           KR_CONTAINER(pos, struct keel_rtos_timeout, node)->deadline > to->deadline) {
        pos = pos->prev;
    }
    kr_list_insert_before(pos->next, &to->node);
}

uint32_t keel_rtos_idle_ticks(void)
{
    keel_port_irq_t s = keel_port_lock();
    uint32_t n = UINT32_MAX;
    if (!kr_list_empty(&keel_rtos_k.timeouts)) {
        uint64_t d = KR_CONTAINER(keel_rtos_k.timeouts.next, struct keel_rtos_timeout, node)
                         ->deadline;
        n = d <= keel_rtos_k.ticks ? 0u
            : d - keel_rtos_k.ticks >= UINT32_MAX ? UINT32_MAX - 1u
                                                   : (uint32_t)(d - keel_rtos_k.ticks);
    }
    keel_port_unlock(s);
    return n;
}

__attribute__((weak)) void keel_rtos_idle_hook(uint32_t ticks)
{
    (void)ticks;
}

/* ---- waiting ---- */

void kr_waitq_insert(struct keel_rtos_list *q, keel_rtos_thread *t)
{
    struct keel_rtos_list *pos = q->next;
    while (pos != q && kr_thread_of(pos)->priority <= t->priority) {
        pos = pos->next;
    }
    kr_list_insert_before(pos, &t->node);
    t->wait_list = q;
}

keel_rtos_err kr_wait(struct keel_rtos_list *q, uint32_t timeout, keel_port_irq_t s)
{
    keel_rtos_thread *t = keel_rtos_k.current;
    if (keel_port_in_isr() || t == &keel_rtos_k.idle) {
        keel_port_unlock(s);
        return KEEL_RTOS_ERR_ISR;
    }
    kr_ready_remove(t);
    t->state = KEEL_RTOS_THREAD_WAITING;
    t->wait_status = KEEL_RTOS_OK;
    t->wait_list = NULL;
    if (q != NULL) {
        kr_waitq_insert(q, t);
        if (t->blocked_on != NULL) {
            kr_mutex_recompute(t->blocked_on->owner); /* priority inheritance */
        }
    }
    if (timeout != KEEL_RTOS_WAIT_FOREVER) {
        t->timeout.deadline = keel_rtos_k.ticks + timeout;
        timeout_insert(&t->timeout);
    }
    kr_reschedule();
    keel_port_unlock_switch(s); /* the switch happens here; we resume once woken */
    return (keel_rtos_err)t->wait_status;
}

void kr_wake(keel_rtos_thread *t, keel_rtos_err status)
{
    if (t->wait_list != NULL) {
        kr_list_remove(&t->node);
        t->wait_list = NULL;
    }
    if (kr_list_linked(&t->timeout.node)) {
        kr_list_remove(&t->timeout.node);
    }
    if (t->blocked_on != NULL) {
        keel_rtos_mutex *m = t->blocked_on;
        t->blocked_on = NULL;
        if (m->owner != NULL) {
            kr_mutex_recompute(m->owner);
        }
    }
    t->wait_status = (uint8_t)status;
    if (t->suspend_pending) {
        t->suspend_pending = 0;
        t->state = KEEL_RTOS_THREAD_SUSPENDED;
    } else {
        t->state = KEEL_RTOS_THREAD_READY;
        kr_ready_insert(t);
    }
}

void kr_wake_all(struct keel_rtos_list *q, keel_rtos_err status)
{
    while (!kr_list_empty(q)) {
        kr_wake(kr_thread_of(q->next), status);
    }
}

void kr_set_priority(keel_rtos_thread *t, uint8_t prio)
{
    if (t->priority == prio) {
        return;
    }
    if (t->state == KEEL_RTOS_THREAD_READY) {
        kr_ready_remove(t);
        t->priority = prio;
        if (t == keel_rtos_k.current) {
            kr_ready_insert_head(t);
        } else {
            kr_ready_insert(t);
        }
        return;
    }
    t->priority = prio;
    if (t->state == KEEL_RTOS_THREAD_WAITING && t->wait_list != NULL) {
        struct keel_rtos_list *q = t->wait_list;
        kr_list_remove(&t->node);
        kr_waitq_insert(q, t);
        if (t->blocked_on != NULL && t->blocked_on->owner != NULL) {
            kr_mutex_recompute(t->blocked_on->owner);
        }
    }
}

/* ---- stack guard ---- */

static void default_overflow(keel_rtos_thread *t);

/* Slow path of the guard check in kr_reschedule(): report, then retire the thread. */
void kr_stack_overflow(keel_rtos_thread *t)
{
    if (t == &keel_rtos_k.idle || t->state >= KEEL_RTOS_THREAD_COMPLETED) {
        if (t == &keel_rtos_k.idle) {
            keel_port_fatal("idle thread guard overwritten", "idle");
        }
        return;
    }
    keel_rtos_overflow_handler h = keel_rtos_k.overflow ? keel_rtos_k.overflow : default_overflow;
    h(t);
    /* The handler returned: the thread cannot be trusted to run again. */
    if (t->state == KEEL_RTOS_THREAD_READY) {
        kr_ready_remove(t);
    } else if (t->state == KEEL_RTOS_THREAD_WAITING) {
        kr_wake(t, KEEL_RTOS_ERR_ABORTED);
        if (t->state == KEEL_RTOS_THREAD_READY) {
            kr_ready_remove(t);
        }
    }
    t->state = KEEL_RTOS_THREAD_TERMINATED;
    if (kr_list_linked(&t->all)) {
        kr_list_remove(&t->all);
    }
    keel_rtos_k.next = keel_rtos_k.ready[kr_first(keel_rtos_k.ready_map)];
}

static void default_overflow(keel_rtos_thread *t)
{
    keel_port_fatal("stack overflow", t->name);
}

/* ---- threads ---- */

keel_rtos_err keel_rtos_thread_create(keel_rtos_thread *t, const keel_rtos_thread_config *cfg)
{
    if (t == NULL || cfg == NULL || cfg->entry == NULL || cfg->stack == NULL ||
        cfg->stack_size < KEEL_RTOS_MIN_STACK || cfg->priority >= KEEL_RTOS_PRIORITIES ||
        ((uintptr_t)cfg->stack & 7u) != 0) {
        return KEEL_RTOS_ERR_INVALID;
    }
    memset(t, 0, sizeof *t);
    t->name = cfg->name ? cfg->name : "thread";
    t->entry = cfg->entry;
    t->arg = cfg->arg;
    t->stack = cfg->stack;
    t->stack_size = cfg->stack_size & ~(size_t)7u;
    t->priority = t->base_priority = cfg->priority;
    t->time_slice = t->slice_left = cfg->time_slice;
    t->timeout.kind = KR_TIMEOUT_THREAD;
    kr_list_init(&t->owned_mutexes);
    keel_port_stack_prepare(t->stack, t->stack_size);
    memset(t->stack, KR_STACK_PAINT, t->stack_size);
    keel_port_thread_init(t);

    keel_port_irq_t s = keel_port_lock();
    kr_list_append(&keel_rtos_k.threads, &t->all);
    if (cfg->start_suspended) {
        t->state = KEEL_RTOS_THREAD_SUSPENDED;
    } else {
        t->state = KEEL_RTOS_THREAD_READY;
        kr_ready_insert(t);
        kr_reschedule();
    }
    keel_port_unlock(s);
    return KEEL_RTOS_OK;
}

keel_rtos_thread *keel_rtos_thread_self(void)
{
    keel_rtos_thread *t = keel_rtos_k.current;
    return t == &keel_rtos_k.idle ? NULL : t;
}

void kr_thread_exit(void)
{
    keel_port_irq_t s = keel_port_lock();
    keel_rtos_thread *t = keel_rtos_k.current;
    kr_ready_remove(t);
    t->state = KEEL_RTOS_THREAD_COMPLETED;
    kr_list_remove(&t->all);
    kr_reschedule();
    keel_port_unlock_switch(s);
    keel_port_fatal("a completed thread ran again", t->name);
}

keel_rtos_err keel_rtos_thread_sleep(uint32_t ticks)
{
    keel_port_service_cost();
    if (ticks == 0) {
        keel_rtos_thread_relinquish();
        return KEEL_RTOS_OK;
    }
    keel_port_irq_t s = keel_port_lock();
    keel_rtos_err e = kr_wait(NULL, ticks, s);
    return e == KEEL_RTOS_ERR_TIMEOUT ? KEEL_RTOS_OK : e;
}

void keel_rtos_thread_relinquish(void)
{
    keel_port_service_cost();
    keel_port_irq_t s = keel_port_lock();
    keel_rtos_thread *t = keel_rtos_k.current;
    keel_rtos_thread *n = t->rnext; /* the idle thread's ring is itself alone */
    if (n != t) {
        /* We are the head of our ring: the next one becomes head, we become the tail. */
        keel_rtos_k.ready[t->priority] = n;
        t->slice_left = t->time_slice;
        kr_reschedule();
    }
    keel_port_unlock(s);
}

keel_rtos_err keel_rtos_thread_suspend(keel_rtos_thread *t)
{
    keel_port_service_cost();
    if (t == NULL) {
        return KEEL_RTOS_ERR_INVALID;
    }
    keel_port_irq_t s = keel_port_lock();
    keel_rtos_err e = KEEL_RTOS_OK;
    switch (t->state) {
    case KEEL_RTOS_THREAD_READY:
        kr_ready_remove(t);
        t->state = KEEL_RTOS_THREAD_SUSPENDED;
        kr_reschedule();
        break;
    case KEEL_RTOS_THREAD_WAITING:
        t->suspend_pending = 1;
        break;
    case KEEL_RTOS_THREAD_SUSPENDED:
        break;
    default:
        e = KEEL_RTOS_ERR_STATE;
    }
    keel_port_unlock_switch(s); /* a thread suspending itself stops here */
    return e;
}

keel_rtos_err keel_rtos_thread_resume(keel_rtos_thread *t)
{
    keel_port_service_cost();
    if (t == NULL) {
        return KEEL_RTOS_ERR_INVALID;
    }
    keel_port_irq_t s = keel_port_lock();
    keel_rtos_err e = KEEL_RTOS_OK;
    if (t->state == KEEL_RTOS_THREAD_SUSPENDED) {
        t->state = KEEL_RTOS_THREAD_READY;
        kr_ready_insert(t);
        kr_reschedule();
    } else if (t->state == KEEL_RTOS_THREAD_WAITING && t->suspend_pending) {
        t->suspend_pending = 0;
    } else {
        e = KEEL_RTOS_ERR_STATE;
    }
    keel_port_unlock(s);
    return e;
}

keel_rtos_err keel_rtos_thread_terminate(keel_rtos_thread *t)
{
    keel_port_service_cost();
    if (t == NULL || t == keel_rtos_k.current) {
        return KEEL_RTOS_ERR_INVALID;
    }
    keel_port_irq_t s = keel_port_lock();
    keel_rtos_err e = KEEL_RTOS_OK;
    switch (t->state) {
    case KEEL_RTOS_THREAD_WAITING:
        t->suspend_pending = 0;
        kr_wake(t, KEEL_RTOS_ERR_ABORTED);
        kr_ready_remove(t);
        break;
    case KEEL_RTOS_THREAD_READY:
        kr_ready_remove(t);
        break;
    case KEEL_RTOS_THREAD_SUSPENDED:
        break;
    default:
        e = KEEL_RTOS_ERR_STATE;
    }
    if (e == KEEL_RTOS_OK) {
        t->state = KEEL_RTOS_THREAD_TERMINATED;
        kr_list_remove(&t->all);
        kr_reschedule();
    }
    keel_port_unlock(s);
    return e;
}

keel_rtos_err keel_rtos_thread_wait_abort(keel_rtos_thread *t)
{
    keel_port_service_cost();
    if (t == NULL) {
        return KEEL_RTOS_ERR_INVALID;
    }
    keel_port_irq_t s = keel_port_lock();
    keel_rtos_err e = KEEL_RTOS_ERR_STATE;
    if (t->state == KEEL_RTOS_THREAD_WAITING) {
        kr_wake(t, KEEL_RTOS_ERR_ABORTED);
        kr_reschedule();
        e = KEEL_RTOS_OK;
    }
    keel_port_unlock(s);
    return e;
}

keel_rtos_err keel_rtos_thread_set_priority(keel_rtos_thread *t, uint8_t priority)
{
    keel_port_service_cost();
    if (t == NULL || priority >= KEEL_RTOS_PRIORITIES) {
        return KEEL_RTOS_ERR_INVALID;
    }
    keel_port_irq_t s = keel_port_lock();
    t->base_priority = priority;
    kr_mutex_recompute(t); /* effective = min(base, inherited) */
    kr_reschedule();
    keel_port_unlock(s);
    return KEEL_RTOS_OK;
}

__attribute__((no_sanitize("address"))) static size_t stack_used(const keel_rtos_thread *t)
{
    size_t i = 0;
    while (i < t->stack_size && t->stack[i] == KR_STACK_PAINT) {
        i++;
    }
    return t->stack_size - i;
}

keel_rtos_err keel_rtos_thread_stats_get(const keel_rtos_thread *t, keel_rtos_thread_stats *out)
{
    if (t == NULL || out == NULL) {
        return KEEL_RTOS_ERR_INVALID;
    }
    keel_port_irq_t s = keel_port_lock();
    out->state = (keel_rtos_thread_state)t->state;
    out->priority = t->priority;
    out->base_priority = t->base_priority;
    out->switches_in = t->switches_in;
    out->run_time = t->run_time;
    if (t == keel_rtos_k.current) {
        out->run_time += keel_port_timestamp() - t->run_start;
    }
    out->stack_size = t->stack_size;
    keel_port_unlock(s);
    out->stack_used = stack_used(t);
    return KEEL_RTOS_OK;
}

void keel_rtos_thread_foreach(void (*fn)(keel_rtos_thread *t, void *arg), void *arg)
{
    struct keel_rtos_list *n = keel_rtos_k.threads.next;
    while (n != &keel_rtos_k.threads) {
        struct keel_rtos_list *next = n->next;
        fn(KR_CONTAINER(n, keel_rtos_thread, all), arg);
        n = next;
    }
}

/* ---- the tick ---- */

void keel_rtos_tick_announce(uint32_t ticks)
{
    keel_port_irq_t s = keel_port_lock();
    keel_rtos_k.ticks += ticks;
    struct keel_rtos_list *head = &keel_rtos_k.timeouts;
    while (!kr_list_empty(head)) {
        struct keel_rtos_timeout *to = KR_CONTAINER(head->next, struct keel_rtos_timeout, node);
        if (to->deadline > keel_rtos_k.ticks) {
            break;
        }
        kr_list_remove(&to->node);
        if (to->kind == KR_TIMEOUT_THREAD) {
            kr_wake(KR_CONTAINER(to, keel_rtos_thread, timeout), KEEL_RTOS_ERR_TIMEOUT);
            continue;
        }
        keel_rtos_timer *tm = KR_CONTAINER(to, keel_rtos_timer, timeout);
        if (tm->period != 0) {
            to->deadline += tm->period;
            timeout_insert(to);
        } else {
            tm->active = false;
        }
        /* Callbacks run outside the critical section so higher interrupts stay live; the
         * list is re-read from its head after each one. */
        keel_port_unlock(s);
        tm->fn(tm->arg);
        s = keel_port_lock();
    }
    keel_rtos_thread *cur = keel_rtos_k.current;
    if (cur->time_slice != 0 && cur->state == KEEL_RTOS_THREAD_READY && cur != &keel_rtos_k.idle) {
        if (cur->slice_left > ticks) {
            cur->slice_left -= ticks;
        } else {
            cur->slice_left = cur->time_slice;
            if (keel_rtos_k.ready[cur->priority] == cur) {
                keel_rtos_k.ready[cur->priority] = cur->rnext; /* to the back of its ring */
            }
        }
    }
    kr_reschedule();
    keel_port_unlock(s);
}

/* ---- software timers ---- */

keel_rtos_err keel_rtos_timer_create(keel_rtos_timer *tm, void (*fn)(void *arg), void *arg)
{
    if (tm == NULL || fn == NULL) {
        return KEEL_RTOS_ERR_INVALID;
    }
    memset(tm, 0, sizeof *tm);
    tm->fn = fn;
    tm->arg = arg;
    tm->timeout.kind = KR_TIMEOUT_TIMER;
    return KEEL_RTOS_OK;
}

keel_rtos_err keel_rtos_timer_start(keel_rtos_timer *tm, uint32_t initial, uint32_t period)
{
    keel_port_service_cost();
    if (tm == NULL || tm->fn == NULL || initial == 0) {
        return KEEL_RTOS_ERR_INVALID;
    }
    keel_port_irq_t s = keel_port_lock();
    if (kr_list_linked(&tm->timeout.node)) {
        kr_list_remove(&tm->timeout.node);
    }
    tm->period = period;
    tm->active = true;
    tm->timeout.deadline = keel_rtos_k.ticks + initial;
    timeout_insert(&tm->timeout);
    keel_port_unlock(s);
    return KEEL_RTOS_OK;
}

keel_rtos_err keel_rtos_timer_stop(keel_rtos_timer *tm)
{
    keel_port_service_cost();
    if (tm == NULL) {
        return KEEL_RTOS_ERR_INVALID;
    }
    keel_port_irq_t s = keel_port_lock();
    keel_rtos_err e = KEEL_RTOS_ERR_STATE;
    if (kr_list_linked(&tm->timeout.node)) {
        kr_list_remove(&tm->timeout.node);
        e = KEEL_RTOS_OK;
    }
    tm->active = false;
    keel_port_unlock(s);
    return e;
}

bool keel_rtos_timer_active(const keel_rtos_timer *tm)
{
    return tm != NULL && tm->active;
}

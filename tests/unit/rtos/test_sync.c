/* Semaphores, mutexes (recursion, priority inheritance and its chains) and event flags,
 * including timeouts that race wake-ups and deleting objects that have waiters. */
#include "rtos_test.h"

static keel_rtos_sem sem;
static keel_rtos_err results[8];
static uint64_t times[8];

static void sem_waiter(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    results[i] = keel_rtos_sem_get(&sem, 5);
    times[i] = keel_sim_now_ns();
    rt_mark((char)('0' + i));
}

static void test_sem_get_no_wait_unavailable_and_overflow(void **state)
{
    (void)state;
    assert_int_equal(keel_rtos_sem_create(&sem, 1, 2), KEEL_RTOS_OK);
    assert_int_equal(keel_rtos_sem_create(&sem, 3, 2), KEEL_RTOS_ERR_INVALID);
    assert_int_equal(keel_rtos_sem_create(&sem, 1, 2), KEEL_RTOS_OK);
    assert_int_equal(keel_rtos_sem_get(&sem, KEEL_RTOS_NO_WAIT), KEEL_RTOS_OK);
    assert_int_equal(keel_rtos_sem_get(&sem, KEEL_RTOS_NO_WAIT), KEEL_RTOS_ERR_UNAVAILABLE);
    assert_int_equal(keel_rtos_sem_put(&sem), KEEL_RTOS_OK);
    assert_int_equal(keel_rtos_sem_put(&sem), KEEL_RTOS_OK);
    assert_int_equal(keel_rtos_sem_put(&sem), KEEL_RTOS_ERR_OVERFLOW);
    assert_int_equal(keel_rtos_sem_count(&sem), 2);
}

static void test_sem_timeout_expires_on_its_tick(void **state)
{
    (void)state;
    assert_int_equal(keel_rtos_sem_create(&sem, 0, 0), KEEL_RTOS_OK);
    rt_spawn("w", sem_waiter, (void *)0, 5);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_int_equal(results[0], KEEL_RTOS_ERR_TIMEOUT);
    assert_int_equal(times[0], 5 * MS + 500);
}

static void sem_put_isr(void *arg)
{
    (void)arg;
    assert_int_equal(keel_rtos_sem_put(&sem), KEEL_RTOS_OK);
}

static keel_sim_event ev;

static void raise_3(void *arg)
{
    (void)arg;
    keel_sim_irq_raise(3);
}

/* The put and the timeout are due at the same instant: device lines are taken before the
 * tick, so the put wins; one nanosecond later the timeout wins and the put is kept. */
static void test_sem_put_racing_timeout_same_instant_put_wins(void **state)
{
    (void)state;
    assert_int_equal(keel_rtos_sem_create(&sem, 0, 0), KEEL_RTOS_OK);
    assert_int_equal(keel_sim_irq_attach(3, sem_put_isr, NULL), KEEL_SIM_OK);
    assert_int_equal(keel_sim_event_schedule(&ev, 5 * MS, raise_3, NULL), KEEL_SIM_OK);
    rt_spawn("w", sem_waiter, (void *)0, 5);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_int_equal(results[0], KEEL_RTOS_OK);
    assert_int_equal(keel_rtos_sem_count(&sem), 0);
}

static void test_sem_put_just_after_timeout_count_kept(void **state)
{
    (void)state;
    assert_int_equal(keel_rtos_sem_create(&sem, 0, 0), KEEL_RTOS_OK);
    assert_int_equal(keel_sim_irq_attach(3, sem_put_isr, NULL), KEEL_SIM_OK);
    /* the tick at 5 ms is taken at 5 ms + 500 ns (entry); a put at 5 ms + 1 ns arrives
     * during that entry, but the line is taken after the tick handler */
    assert_int_equal(keel_sim_event_schedule(&ev, 5 * MS + 1, raise_3, NULL), KEEL_SIM_OK);
    rt_spawn("w", sem_waiter, (void *)0, 5);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_int_equal(results[0], KEEL_RTOS_ERR_TIMEOUT);
    assert_int_equal(keel_rtos_sem_count(&sem), 1); /* nothing lost */
}

static void sem_waiter_forever(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    results[i] = keel_rtos_sem_get(&sem, KEEL_RTOS_WAIT_FOREVER);
    rt_mark((char)('0' + i));
}

static void test_sem_put_wakes_most_urgent_waiter_first(void **state)
{
    (void)state;
    assert_int_equal(keel_rtos_sem_create(&sem, 0, 0), KEEL_RTOS_OK);
    rt_spawn("a", sem_waiter_forever, (void *)0, 9);
    rt_spawn("b", sem_waiter_forever, (void *)1, 4);
    rt_spawn("c", sem_waiter_forever, (void *)2, 9);
    rt_spawn("d", sem_waiter_forever, (void *)3, 6);
    keel_sim_run_for(MS);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(keel_rtos_sem_put(&sem), KEEL_RTOS_OK);
        keel_sim_run_for(MS);
    }
    assert_string_equal(rt_trace, "1302"); /* priority, then FIFO among equals */
}

static void test_sem_delete_with_waiters_wakes_them_deleted(void **state)
{
    (void)state;
    assert_int_equal(keel_rtos_sem_create(&sem, 0, 0), KEEL_RTOS_OK);
    rt_spawn("a", sem_waiter_forever, (void *)0, 9);
    rt_spawn("b", sem_waiter_forever, (void *)1, 4);
    keel_sim_run_for(MS);
    assert_int_equal(keel_rtos_sem_delete(&sem), KEEL_RTOS_OK);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_int_equal(results[0], KEEL_RTOS_ERR_DELETED);
    assert_int_equal(results[1], KEEL_RTOS_ERR_DELETED);
    assert_string_equal(rt_trace, "10");
}

/* ---- mutexes ---- */

static keel_rtos_mutex m1, m2;
static keel_rtos_thread *th_low, *th_mid, *th_high;
static uint8_t observed_prio[4];

static void recursive(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(keel_rtos_mutex_lock(&m1, KEEL_RTOS_NO_WAIT), KEEL_RTOS_OK);
    }
    assert_ptr_equal(keel_rtos_mutex_owner(&m1), keel_rtos_thread_self());
    for (int i = 0; i < 3; i++) {
        assert_int_equal(keel_rtos_mutex_unlock(&m1), KEEL_RTOS_OK);
    }
    assert_null(keel_rtos_mutex_owner(&m1));
    assert_int_equal(keel_rtos_mutex_unlock(&m1), KEEL_RTOS_ERR_NOT_OWNER);
    rt_mark('r');
}

static void test_mutex_recursive_lock_needs_as_many_unlocks(void **state)
{
    (void)state;
    assert_int_equal(keel_rtos_mutex_create(&m1), KEEL_RTOS_OK);
    rt_spawn("r", recursive, NULL, 5);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_string_equal(rt_trace, "r");
}

/* Classic inversion: low holds the mutex, high waits for it, mid is ready and busy. With
 * inheritance low runs at high's priority, so high gets the mutex before mid runs. */
static void pi_low(void *arg)
{
    (void)arg;
    assert_int_equal(keel_rtos_mutex_lock(&m1, KEEL_RTOS_WAIT_FOREVER), KEEL_RTOS_OK);
    rt_mark('L');
    keel_sim_busy_ns(5 * MS); /* high and mid wake during this */
    observed_prio[0] = th_low->priority;
    rt_mark('l');
    assert_int_equal(keel_rtos_mutex_unlock(&m1), KEEL_RTOS_OK);
    observed_prio[1] = th_low->priority;
    rt_mark('x');
}

static void pi_mid(void *arg)
{
    (void)arg;
    keel_rtos_thread_sleep(1);
    rt_mark('M');
    keel_sim_busy_ns(10 * MS);
    rt_mark('m');
}

static void pi_high(void *arg)
{
    (void)arg;
    keel_rtos_thread_sleep(2);
    rt_mark('H');
    assert_int_equal(keel_rtos_mutex_lock(&m1, KEEL_RTOS_WAIT_FOREVER), KEEL_RTOS_OK);
    rt_mark('h');
    assert_int_equal(keel_rtos_mutex_unlock(&m1), KEEL_RTOS_OK);
}

static void test_mutex_priority_inversion_resolved_by_inheritance(void **state)
{
    (void)state;
    assert_int_equal(keel_rtos_mutex_create(&m1), KEEL_RTOS_OK);
    th_low = rt_spawn("low", pi_low, NULL, 20);
    th_mid = rt_spawn("mid", pi_mid, NULL, 10);
    th_high = rt_spawn("high", pi_high, NULL, 2);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    /* mid preempts low at 1 ms; high at 2 ms blocks, lifting low above mid */
    assert_string_equal(rt_trace, "LMHlhmx");
    assert_int_equal(observed_prio[0], 2);
    assert_int_equal(observed_prio[1], 20);
}

/* Chain: C holds m2; B holds m1 and waits for m2; A waits for m1. C must run at A's
 * priority; when A gives up (timeout), C falls back to B's. */
static keel_rtos_err chain_a_result;

static void chain_c(void *arg)
{
    (void)arg;
    assert_int_equal(keel_rtos_mutex_lock(&m2, KEEL_RTOS_NO_WAIT), KEEL_RTOS_OK);
    keel_rtos_thread_sleep(10); /* B and A queue up meanwhile */
    observed_prio[0] = keel_rtos_thread_self()->priority;
    keel_rtos_thread_sleep(10); /* A times out at 17 ms */
    observed_prio[1] = keel_rtos_thread_self()->priority;
    assert_int_equal(keel_rtos_mutex_unlock(&m2), KEEL_RTOS_OK);
    observed_prio[2] = keel_rtos_thread_self()->priority;
}

static void chain_b(void *arg)
{
    (void)arg;
    keel_rtos_thread_sleep(1);
    assert_int_equal(keel_rtos_mutex_lock(&m1, KEEL_RTOS_NO_WAIT), KEEL_RTOS_OK);
    assert_int_equal(keel_rtos_mutex_lock(&m2, KEEL_RTOS_WAIT_FOREVER), KEEL_RTOS_OK);
    observed_prio[3] = keel_rtos_thread_self()->priority;
    assert_int_equal(keel_rtos_mutex_unlock(&m2), KEEL_RTOS_OK);
    assert_int_equal(keel_rtos_mutex_unlock(&m1), KEEL_RTOS_OK);
}

static void chain_a(void *arg)
{
    (void)arg;
    keel_rtos_thread_sleep(2);
    chain_a_result = keel_rtos_mutex_lock(&m1, 15);
}

static void test_mutex_inheritance_chain_lifts_and_drops_every_owner(void **state)
{
    (void)state;
    assert_int_equal(keel_rtos_mutex_create(&m1), KEEL_RTOS_OK);
    assert_int_equal(keel_rtos_mutex_create(&m2), KEEL_RTOS_OK);
    rt_spawn("C", chain_c, NULL, 20);
    rt_spawn("B", chain_b, NULL, 15);
    rt_spawn("A", chain_a, NULL, 5);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_int_equal(observed_prio[0], 5);  /* A -> m1 (B) -> m2 (C) */
    assert_int_equal(observed_prio[1], 15); /* A timed out: only B waits on C */
    assert_int_equal(observed_prio[2], 20); /* after unlock: own priority */
    assert_int_equal(observed_prio[3], 15); /* B had no waiter left */
    assert_int_equal(chain_a_result, KEEL_RTOS_ERR_TIMEOUT);
}

static keel_rtos_err del_result;

static void holds_m1(void *arg)
{
    (void)arg;
    assert_int_equal(keel_rtos_mutex_lock(&m1, KEEL_RTOS_NO_WAIT), KEEL_RTOS_OK);
    keel_rtos_thread_sleep(5);
    observed_prio[0] = keel_rtos_thread_self()->priority;
}

static void waits_m1(void *arg)
{
    (void)arg;
    keel_rtos_thread_sleep(1);
    del_result = keel_rtos_mutex_lock(&m1, KEEL_RTOS_WAIT_FOREVER);
}

static void deleter(void *arg)
{
    (void)arg;
    keel_rtos_thread_sleep(2);
    observed_prio[1] = th_low->priority;
    assert_int_equal(keel_rtos_mutex_delete(&m1), KEEL_RTOS_OK);
}

static void test_mutex_delete_with_waiter_wakes_deleted_restores_owner(void **state)
{
    (void)state;
    assert_int_equal(keel_rtos_mutex_create(&m1), KEEL_RTOS_OK);
    th_low = rt_spawn("owner", holds_m1, NULL, 20);
    rt_spawn("waiter", waits_m1, NULL, 3);
    rt_spawn("deleter", deleter, NULL, 1);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_int_equal(observed_prio[1], 3);
    assert_int_equal(del_result, KEEL_RTOS_ERR_DELETED);
    assert_int_equal(observed_prio[0], 20);
}

static void isr_locks(void *arg)
{
    (void)arg;
    assert_int_equal(keel_rtos_mutex_lock(&m1, KEEL_RTOS_NO_WAIT), KEEL_RTOS_ERR_ISR);
    /* the interrupted thread owns m1: the handler still may not unlock it */
    assert_int_equal(keel_rtos_mutex_unlock(&m1), KEEL_RTOS_ERR_ISR);
    rt_mark('i');
}

static void owner_raises(void *arg)
{
    (void)arg;
    assert_int_equal(keel_rtos_mutex_lock(&m1, KEEL_RTOS_NO_WAIT), KEEL_RTOS_OK);
    assert_int_equal(keel_sim_irq_raise(1), KEEL_SIM_OK);
    assert_ptr_equal(keel_rtos_mutex_owner(&m1), keel_rtos_thread_self());
    assert_int_equal(keel_rtos_mutex_unlock(&m1), KEEL_RTOS_OK);
}

static void test_mutex_lock_from_isr_refused(void **state)
{
    (void)state;
    assert_int_equal(keel_rtos_mutex_create(&m1), KEEL_RTOS_OK);
    assert_int_equal(keel_sim_irq_attach(1, isr_locks, NULL), KEEL_SIM_OK);
    rt_spawn("owner", owner_raises, NULL, 5);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_string_equal(rt_trace, "i");
    assert_null(keel_rtos_mutex_owner(&m1));
}

/* ---- event flags ---- */

static keel_rtos_event evf;
static uint32_t actual[4];

static void ev_wait(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    static const uint32_t req[] = {0x3, 0x3, 0x10, 0x4};
    static const uint32_t opt[] = {KEEL_RTOS_EVENT_AND, KEEL_RTOS_EVENT_OR | KEEL_RTOS_EVENT_CLEAR,
                                   KEEL_RTOS_EVENT_OR, KEEL_RTOS_EVENT_AND};
    results[i] = keel_rtos_event_wait(&evf, req[i], opt[i], &actual[i], 20);
    rt_mark((char)('0' + i));
}

static void ev_set_isr(void *arg)
{
    (void)arg;
    keel_rtos_event_set(&evf, 0x1);
}

static void test_event_and_or_clear_wake_the_right_waiters(void **state)
{
    (void)state;
    assert_int_equal(keel_rtos_event_create(&evf), KEEL_RTOS_OK);
    rt_spawn("and", ev_wait, (void *)0, 5);
    rt_spawn("orc", ev_wait, (void *)1, 6);
    rt_spawn("other", ev_wait, (void *)2, 7);
    keel_sim_run_for(MS);
    /* 0x1 from an interrupt: satisfies the OR|CLEAR waiter only, which clears it */
    assert_int_equal(keel_sim_irq_attach(2, ev_set_isr, NULL), KEEL_SIM_OK);
    keel_sim_irq_raise(2);
    keel_sim_run_for(MS);
    assert_string_equal(rt_trace, "1");
    assert_int_equal(actual[1], 0x1);
    assert_int_equal(keel_rtos_event_get(&evf), 0);
    assert_int_equal(keel_rtos_event_set(&evf, 0x2), KEEL_RTOS_OK);
    assert_int_equal(keel_rtos_event_set(&evf, 0x1), KEEL_RTOS_OK);
    keel_sim_run_for(MS);
    assert_string_equal(rt_trace, "10");
    assert_int_equal(actual[0], 0x3);
    assert_int_equal(keel_rtos_event_get(&evf), 0x3); /* AND without CLEAR leaves them */
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_int_equal(results[2], KEEL_RTOS_ERR_TIMEOUT);
    assert_int_equal(keel_rtos_event_wait(&evf, 0x3, KEEL_RTOS_EVENT_AND | KEEL_RTOS_EVENT_CLEAR,
                                          NULL, KEEL_RTOS_NO_WAIT),
                     KEEL_RTOS_OK);
    assert_int_equal(keel_rtos_event_get(&evf), 0);
    assert_int_equal(keel_rtos_event_wait(&evf, 0, 0, NULL, 0), KEEL_RTOS_ERR_INVALID);
}

static void test_event_delete_with_waiter_deleted(void **state)
{
    (void)state;
    assert_int_equal(keel_rtos_event_create(&evf), KEEL_RTOS_OK);
    rt_spawn("w", ev_wait, (void *)3, 5);
    keel_sim_run_for(MS);
    assert_int_equal(keel_rtos_event_delete(&evf), KEEL_RTOS_OK);
    keel_sim_run_for(MS);
    assert_int_equal(results[3], KEEL_RTOS_ERR_DELETED);
}

static void test_err_name_every_value_named(void **state)
{
    (void)state;
    for (int e = 0; e < KEEL_RTOS_ERR_COUNT; e++) {
        assert_non_null(strstr(keel_rtos_err_name((keel_rtos_err)e), "KEEL_RTOS_"));
    }
    assert_string_equal(keel_rtos_err_name(KEEL_RTOS_ERR_TIMEOUT), "KEEL_RTOS_ERR_TIMEOUT");
    assert_string_equal(keel_rtos_err_name((keel_rtos_err)99), "KEEL_RTOS_ERR_UNKNOWN");
    assert_string_equal(keel_sim_err_name(KEEL_SIM_ERR_BUSY), "KEEL_SIM_ERR_BUSY");
}

int main(void)
{
    memset(results, 0xff, sizeof results);
    const struct CMUnitTest tests[] = {
        RT_TEST(test_sem_get_no_wait_unavailable_and_overflow),
        RT_TEST(test_sem_timeout_expires_on_its_tick),
        RT_TEST(test_sem_put_racing_timeout_same_instant_put_wins),
        RT_TEST(test_sem_put_just_after_timeout_count_kept),
        RT_TEST(test_sem_put_wakes_most_urgent_waiter_first),
        RT_TEST(test_sem_delete_with_waiters_wakes_them_deleted),
        RT_TEST(test_mutex_recursive_lock_needs_as_many_unlocks),
        RT_TEST(test_mutex_priority_inversion_resolved_by_inheritance),
        RT_TEST(test_mutex_inheritance_chain_lifts_and_drops_every_owner),
        RT_TEST(test_mutex_delete_with_waiter_wakes_deleted_restores_owner),
        RT_TEST(test_mutex_lock_from_isr_refused),
        RT_TEST(test_event_and_or_clear_wake_the_right_waiters),
        RT_TEST(test_event_delete_with_waiter_deleted),
        RT_TEST(test_err_name_every_value_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Threads and the scheduler: priorities, sleep, preemption from interrupts, time slicing,
 * relinquish, suspend/resume, stack guard, run-time statistics, determinism. */
#include "rtos_test.h"

static void mark_entry(void *arg)
{
    rt_mark((char)(uintptr_t)arg);
}

static void test_thread_create_priority_order_runs_most_urgent_first(void **state)
{
    (void)state;
    rt_spawn("low", mark_entry, (void *)'l', 20);
    rt_spawn("high", mark_entry, (void *)'h', 3);
    rt_spawn("mid", mark_entry, (void *)'m', 10);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_string_equal(rt_trace, "hml");
}

static void test_thread_create_bad_arguments_invalid(void **state)
{
    (void)state;
    keel_rtos_thread t;
    keel_rtos_thread_config cfg = {.entry = mark_entry, .stack = rt_stacks[0],
                                   .stack_size = RT_STACK, .priority = 1};
    keel_rtos_thread_config bad = cfg;
    bad.entry = NULL;
    assert_int_equal(keel_rtos_thread_create(&t, &bad), KEEL_RTOS_ERR_INVALID);
    bad = cfg;
    bad.stack_size = 100;
    assert_int_equal(keel_rtos_thread_create(&t, &bad), KEEL_RTOS_ERR_INVALID);
    bad = cfg;
    bad.priority = KEEL_RTOS_PRIORITIES;
    assert_int_equal(keel_rtos_thread_create(&t, &bad), KEEL_RTOS_ERR_INVALID);
    bad = cfg;
    bad.stack = rt_stacks[0] + 1;
    assert_int_equal(keel_rtos_thread_create(&t, &bad), KEEL_RTOS_ERR_INVALID);
    assert_int_equal(keel_rtos_thread_create(NULL, &cfg), KEEL_RTOS_ERR_INVALID);
}

static uint64_t woke_at[4];

static void sleeper(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    assert_int_equal(keel_rtos_thread_sleep((uint32_t)(i + 1) * 5u), KEEL_RTOS_OK);
    woke_at[i] = keel_sim_now_ns();
}

static void test_thread_sleep_wakes_on_its_tick(void **state)
{
    (void)state;
    rt_spawn("s0", sleeper, (void *)0, 5);
    rt_spawn("s1", sleeper, (void *)1, 5);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    /* tick interrupt entry (500 ns) after the tick boundary */
    assert_int_equal(woke_at[0], 5 * MS + 500);
    assert_int_equal(woke_at[1], 10 * MS + 500);
    keel_sim_stats st;
    keel_sim_stats_get(&st);
    /* tickless: only the two ticks with a deadline were taken, both announcing many ticks */
    assert_int_equal(st.interrupts, 2);
    assert_int_equal(st.ticks, 10);
    assert_int_equal(keel_rtos_ticks(), 10);
}

static keel_rtos_sem isr_sem;
static keel_sim_event dev_event;
static uint64_t high_woke;

static void isr_put(void *arg)
{
    (void)arg;
    assert_true(keel_rtos_in_isr());
    assert_int_equal(keel_rtos_sem_get(&isr_sem, 5), KEEL_RTOS_ERR_ISR);
    assert_int_equal(keel_rtos_sem_put(&isr_sem), KEEL_RTOS_OK);
    rt_mark('i');
}

static void device_fires(void *arg)
{
    (void)arg;
    assert_int_equal(keel_sim_irq_raise(7), KEEL_SIM_OK);
}

static void waiter_high(void *arg)
{
    (void)arg;
    assert_int_equal(keel_rtos_sem_get(&isr_sem, KEEL_RTOS_WAIT_FOREVER), KEEL_RTOS_OK);
    high_woke = keel_sim_now_ns();
    rt_mark('H');
}

static void busy_low(void *arg)
{
    (void)arg;
    rt_mark('L');
    keel_sim_busy_ns(10 * MS);
    rt_mark('l');
}

static void test_thread_isr_wakes_higher_thread_preempts_at_interrupt(void **state)
{
    (void)state;
    assert_int_equal(keel_rtos_sem_create(&isr_sem, 0, 0), KEEL_RTOS_OK);
    assert_int_equal(keel_sim_irq_attach(7, isr_put, NULL), KEEL_SIM_OK);
    assert_int_equal(keel_sim_event_schedule(&dev_event, 3 * MS + 200000, device_fires, NULL),
                     KEEL_SIM_OK);
    rt_spawn("high", waiter_high, NULL, 2);
    rt_spawn("low", busy_low, NULL, 9);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_string_equal(rt_trace, "LiHl");
    /* interrupt-to-thread latency: exactly the interrupt entry cost */
    assert_int_equal(high_woke, 3 * MS + 200000 + 500);
    /* the low thread's 10 ms of work, plus the interrupts that preempted it */
    assert_true(keel_sim_now_ns() > 10 * MS);
}

static uint64_t spun[3];
static volatile int spin_stop;

static void spinner(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    while (!spin_stop) {
        keel_sim_busy_ns(100000);
        spun[i] += 100000;
    }
}

static void stopper(void *arg)
{
    (void)arg;
    keel_rtos_thread_sleep(300);
    spin_stop = 1;
}

static void test_thread_time_slice_equal_priorities_share_fairly(void **state)
{
    (void)state;
    spin_stop = 0;
    memset(spun, 0, sizeof spun);
    rt_spawn("stop", stopper, NULL, 1);
    for (uintptr_t i = 0; i < 3; i++) {
        rt_spawn_opts("spin", spinner, (void *)i, 8, 2, false);
    }
    assert_int_equal(keel_sim_run_until(400 * MS), KEEL_SIM_STOP_TIME);
    for (int i = 0; i < 3; i++) {
        /* 300 ms shared three ways, within one 2-tick slice */
        assert_in_range(spun[i], 98 * MS, 102 * MS);
    }
    keel_rtos_thread_stats st;
    assert_int_equal(keel_rtos_thread_stats_get(&rt_threads[1], &st), KEEL_RTOS_OK);
    assert_in_range(st.switches_in, 45, 55); /* every 2 ms among 3 threads over 300 ms */
}

static void test_thread_no_slice_equal_priority_runs_to_block(void **state)
{
    (void)state;
    spin_stop = 0;
    memset(spun, 0, sizeof spun);
    rt_spawn("stop", stopper, NULL, 1);
    for (uintptr_t i = 0; i < 2; i++) {
        rt_spawn_opts("spin", spinner, (void *)i, 8, 0, false);
    }
    assert_int_equal(keel_sim_run_until(400 * MS), KEEL_SIM_STOP_TIME);
    /* all of the CPU but the tick interrupts' entry cost (500 ns a ms) */
    assert_in_range(spun[0], 299 * MS, 300 * MS);
    assert_int_equal(spun[1], 0); /* first ran after the stop: never spun */
}

static void relinquisher(void *arg)
{
    for (int i = 0; i < 3; i++) {
        rt_mark((char)(uintptr_t)arg);
        keel_rtos_thread_relinquish();
    }
}

static void test_thread_relinquish_round_robins(void **state)
{
    (void)state;
    rt_spawn("a", relinquisher, (void *)'a', 4);
    rt_spawn("b", relinquisher, (void *)'b', 4);
    rt_spawn("c", relinquisher, (void *)'c', 4);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_string_equal(rt_trace, "abcabcabc");
}

static keel_rtos_thread *self_suspender;

static void suspends_self(void *arg)
{
    (void)arg;
    rt_mark('1');
    assert_int_equal(keel_rtos_thread_suspend(keel_rtos_thread_self()), KEEL_RTOS_OK);
    rt_mark('3');
}

static void resumer(void *arg)
{
    (void)arg;
    rt_mark('2');
    assert_int_equal(keel_rtos_thread_resume(self_suspender), KEEL_RTOS_OK);
    rt_mark('4');
    assert_int_equal(keel_rtos_thread_resume(self_suspender), KEEL_RTOS_ERR_STATE);
}

static void test_thread_suspend_resume_preempts(void **state)
{
    (void)state;
    self_suspender = rt_spawn("hi", suspends_self, NULL, 1);
    rt_spawn("lo", resumer, NULL, 2);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_string_equal(rt_trace, "1234");
}

static keel_rtos_sem susp_sem;
static keel_rtos_err susp_result = KEEL_RTOS_ERR_COUNT;

static void waits_sem(void *arg)
{
    (void)arg;
    susp_result = keel_rtos_sem_get(&susp_sem, KEEL_RTOS_WAIT_FOREVER);
    rt_mark('w');
}

static void test_thread_suspend_waiting_thread_suspends_after_wait(void **state)
{
    (void)state;
    assert_int_equal(keel_rtos_sem_create(&susp_sem, 0, 0), KEEL_RTOS_OK);
    keel_rtos_thread *w = rt_spawn("w", waits_sem, NULL, 3);
    keel_sim_run_for(MS);
    assert_int_equal(keel_rtos_thread_suspend(w), KEEL_RTOS_OK);
    assert_int_equal(keel_rtos_sem_put(&susp_sem), KEEL_RTOS_OK);
    keel_sim_run_for(MS);
    keel_rtos_thread_stats st;
    assert_int_equal(keel_rtos_thread_stats_get(w, &st), KEEL_RTOS_OK);
    assert_int_equal(st.state, KEEL_RTOS_THREAD_SUSPENDED);
    assert_string_equal(rt_trace, "");
    assert_int_equal(keel_rtos_sem_count(&susp_sem), 0); /* the count went to the waiter */
    assert_int_equal(keel_rtos_thread_resume(w), KEEL_RTOS_OK);
    keel_sim_run_for(MS);
    assert_string_equal(rt_trace, "w");
    assert_int_equal(susp_result, KEEL_RTOS_OK);
}

static keel_rtos_thread *overflowed;
static int overflow_calls;

static void on_overflow(keel_rtos_thread *t)
{
    overflowed = t;
    overflow_calls++;
}

static void scribbler(void *arg)
{
    (void)arg;
    /* What a stack overflow does: the stack grows down into the top of the 16-byte guard
     * (the kernel checks the guard's highest and lowest words). */
    keel_rtos_thread *self = keel_rtos_thread_self();
    memset(self->stack + 8, 0, 8);
    keel_rtos_thread_sleep(1); /* switch: the guard is checked here */
    rt_mark('X');              /* never runs again */
}

static void test_thread_stack_guard_overwritten_detected_at_switch(void **state)
{
    (void)state;
    keel_rtos_set_overflow_handler(on_overflow);
    overflowed = NULL;
    overflow_calls = 0;
    keel_rtos_thread *t = rt_spawn("scribbler", scribbler, NULL, 5);
    keel_rtos_thread *ok = rt_spawn("fine", sleeper, (void *)0, 6);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_ptr_equal(overflowed, t);
    assert_int_equal(overflow_calls, 1);
    assert_string_equal(rt_trace, "");
    keel_rtos_thread_stats st;
    assert_int_equal(keel_rtos_thread_stats_get(t, &st), KEEL_RTOS_OK);
    assert_int_equal(st.state, KEEL_RTOS_THREAD_TERMINATED);
    assert_int_equal(keel_rtos_thread_stats_get(ok, &st), KEEL_RTOS_OK);
    assert_int_equal(st.state, KEEL_RTOS_THREAD_COMPLETED);
}

static void worker_3ms(void *arg)
{
    (void)arg;
    volatile char buf[2048];
    for (size_t i = 0; i < sizeof buf; i++) {
        buf[i] = 1; /* volatile stores: -O2 drops a memset into a buffer nobody reads */
    }
    keel_sim_busy_ns(3 * MS);
}

static void test_thread_stats_count_run_time_and_stack(void **state)
{
    (void)state;
    keel_rtos_thread *t = rt_spawn("w", worker_3ms, NULL, 5);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    keel_rtos_thread_stats st;
    assert_int_equal(keel_rtos_thread_stats_get(t, &st), KEEL_RTOS_OK);
    assert_int_equal(st.state, KEEL_RTOS_THREAD_COMPLETED);
    assert_int_equal(st.switches_in, 1);
    /* 3 ms of work plus three tick interrupts' entry (500 ns each) taken while it ran */
    assert_int_equal(st.run_time, 3 * MS + 3 * 500);
    assert_true(st.stack_used >= 2048 && st.stack_used < RT_STACK);
}

static keel_rtos_sem abort_sem;
static keel_rtos_err abort_result;

static void waits_abort(void *arg)
{
    (void)arg;
    abort_result = keel_rtos_sem_get(&abort_sem, 1000);
}

static void test_thread_wait_abort_returns_aborted(void **state)
{
    (void)state;
    assert_int_equal(keel_rtos_sem_create(&abort_sem, 0, 0), KEEL_RTOS_OK);
    keel_rtos_thread *t = rt_spawn("w", waits_abort, NULL, 5);
    keel_sim_run_for(2 * MS);
    assert_int_equal(keel_rtos_thread_wait_abort(t), KEEL_RTOS_OK);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_int_equal(abort_result, KEEL_RTOS_ERR_ABORTED);
    assert_int_equal(keel_rtos_thread_wait_abort(t), KEEL_RTOS_ERR_STATE);
}

static void test_thread_terminate_ready_thread_never_runs(void **state)
{
    (void)state;
    keel_rtos_thread *t = rt_spawn("x", mark_entry, (void *)'x', 5);
    assert_int_equal(keel_rtos_thread_terminate(t), KEEL_RTOS_OK);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_string_equal(rt_trace, "");
    assert_int_equal(keel_rtos_thread_terminate(t), KEEL_RTOS_ERR_STATE);
}

/* A random workload: threads sleep, spin and signal each other with random amounts drawn
 * from the seed; the digest of (time, thread) at every step must depend only on the seed. */
static uint64_t digest;
static keel_rtos_sem det_sem;

static void random_worker(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    for (int i = 0; i < 40; i++) {
        uint64_t r = keel_sim_random();
        switch (r % 4) {
        case 0:
            keel_rtos_thread_sleep((uint32_t)(r >> 8) % 7u);
            break;
        case 1:
            keel_sim_busy_ns((r >> 8) % 3000000u);
            break;
        case 2:
            (void)keel_rtos_sem_put(&det_sem);
            break;
        default:
            (void)keel_rtos_sem_get(&det_sem, (uint32_t)(r >> 8) % 5u);
        }
        digest = digest * 1099511628211ull ^ (keel_sim_now_ns() * 31u + id);
    }
}

static uint64_t run_random(uint64_t seed)
{
    keel_sim_destroy();
    keel_sim_config c = keel_sim_config_default();
    c.seed = seed;
    assert_int_equal(rt_setup_cfg(&c), 0);
    digest = 14695981039346656037ull;
    assert_int_equal(keel_rtos_sem_create(&det_sem, 0, 0), KEEL_RTOS_OK);
    for (uintptr_t i = 0; i < 5; i++) {
        rt_spawn_opts("r", random_worker, (void *)i, (uint8_t)(3 + i % 3), 1, false);
    }
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    return digest ^ keel_sim_now_ns();
}

static void test_sim_same_seed_same_run(void **state)
{
    (void)state;
    uint64_t a = run_random(42), b = run_random(42), c = run_random(43);
    assert_int_equal(a, b);
    assert_true(a != c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RT_TEST(test_thread_create_priority_order_runs_most_urgent_first),
        RT_TEST(test_thread_create_bad_arguments_invalid),
        RT_TEST(test_thread_sleep_wakes_on_its_tick),
        RT_TEST(test_thread_isr_wakes_higher_thread_preempts_at_interrupt),
        RT_TEST(test_thread_time_slice_equal_priorities_share_fairly),
        RT_TEST(test_thread_no_slice_equal_priority_runs_to_block),
        RT_TEST(test_thread_relinquish_round_robins),
        RT_TEST(test_thread_suspend_resume_preempts),
        RT_TEST(test_thread_suspend_waiting_thread_suspends_after_wait),
        RT_TEST(test_thread_stack_guard_overwritten_detected_at_switch),
        RT_TEST(test_thread_stats_count_run_time_and_stack),
        RT_TEST(test_thread_wait_abort_returns_aborted),
        RT_TEST(test_thread_terminate_ready_thread_never_runs),
        RT_TEST(test_sim_same_seed_same_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

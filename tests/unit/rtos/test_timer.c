/* Software timers: exact expiry ticks, periods without drift, equal deadlines in start order,
 * stop, callbacks in interrupt context. */
#include "rtos_test.h"

static keel_rtos_timer timers[4];
static uint64_t fired_at[4][8];
static int fired[4];

static void on_timer(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    assert_true(keel_rtos_in_isr());
    if (fired[i] < 8) {
        fired_at[i][fired[i]] = keel_rtos_ticks();
    }
    fired[i]++;
    rt_mark((char)('a' + i));
}

static void test_timer_one_shot_and_periodic_fire_on_their_ticks(void **state)
{
    (void)state;
    memset(fired, 0, sizeof fired);
    assert_int_equal(keel_rtos_timer_create(&timers[0], on_timer, (void *)0), KEEL_RTOS_OK);
    assert_int_equal(keel_rtos_timer_create(&timers[1], on_timer, (void *)1), KEEL_RTOS_OK);
    assert_int_equal(keel_rtos_timer_start(&timers[0], 7, 0), KEEL_RTOS_OK);
    assert_int_equal(keel_rtos_timer_start(&timers[1], 3, 5), KEEL_RTOS_OK);
    assert_true(keel_rtos_timer_active(&timers[0]));
    assert_int_equal(keel_sim_run_until(25 * MS + 900), KEEL_SIM_STOP_TIME);
    assert_int_equal(fired[0], 1);
    assert_int_equal(fired_at[0][0], 7);
    assert_false(keel_rtos_timer_active(&timers[0]));
    assert_int_equal(fired[1], 5);
    for (int k = 0; k < 5; k++) {
        assert_int_equal(fired_at[1][k], 3 + 5 * k);
    }
    assert_int_equal(keel_rtos_timer_stop(&timers[1]), KEEL_RTOS_OK);
    assert_int_equal(keel_rtos_timer_stop(&timers[1]), KEEL_RTOS_ERR_STATE);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_int_equal(fired[1], 5);
    assert_int_equal(keel_rtos_timer_start(&timers[0], 0, 0), KEEL_RTOS_ERR_INVALID);
}

static void test_timer_equal_deadlines_fire_in_start_order(void **state)
{
    (void)state;
    memset(fired, 0, sizeof fired);
    static const int order[] = {2, 0, 3, 1};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(keel_rtos_timer_create(&timers[i], on_timer, (void *)(uintptr_t)i),
                         KEEL_RTOS_OK);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(keel_rtos_timer_start(&timers[order[i]], 4, 0), KEEL_RTOS_OK);
    }
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_string_equal(rt_trace, "cadb");
}

static void restarter(void *arg)
{
    (void)arg;
    assert_int_equal(keel_rtos_timer_start(&timers[0], 2, 0), KEEL_RTOS_OK);
    keel_rtos_thread_sleep(1);
    /* restart before expiry: moves the deadline, fires once */
    assert_int_equal(keel_rtos_timer_start(&timers[0], 2, 0), KEEL_RTOS_OK);
}

static void test_timer_restart_moves_deadline(void **state)
{
    (void)state;
    memset(fired, 0, sizeof fired);
    assert_int_equal(keel_rtos_timer_create(&timers[0], on_timer, (void *)0), KEEL_RTOS_OK);
    rt_spawn("r", restarter, NULL, 5);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_int_equal(fired[0], 1);
    assert_int_equal(fired_at[0][0], 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RT_TEST(test_timer_one_shot_and_periodic_fire_on_their_ticks),
        RT_TEST(test_timer_equal_deadlines_fire_in_start_order),
        RT_TEST(test_timer_restart_moves_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

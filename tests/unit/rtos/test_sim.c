/* The sim port itself: event order at one instant, cancel, stopping a run in the middle of
 * a thread's busy time and resuming it, run-until-condition, service costs, host fds as
 * interrupt sources (fast and paced), one simulation at a time. */
#include <pthread.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "rtos_test.h"

static keel_sim_event evs[4];

static void mark_ev(void *arg)
{
    rt_mark((char)(uintptr_t)arg);
    assert_true(keel_rtos_in_isr());
}

static void test_sim_events_same_instant_run_in_schedule_order(void **state)
{
    (void)state;
    assert_int_equal(keel_sim_event_schedule(&evs[0], 5000, mark_ev, (void *)'a'), KEEL_SIM_OK);
    assert_int_equal(keel_sim_event_schedule(&evs[1], 3000, mark_ev, (void *)'b'), KEEL_SIM_OK);
    assert_int_equal(keel_sim_event_schedule(&evs[2], 5000, mark_ev, (void *)'c'), KEEL_SIM_OK);
    assert_int_equal(keel_sim_event_schedule(&evs[3], 4000, mark_ev, (void *)'d'), KEEL_SIM_OK);
    keel_sim_event_cancel(&evs[3]);
    assert_false(keel_sim_event_pending(&evs[3]));
    assert_true(keel_sim_event_pending(&evs[0]));
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_string_equal(rt_trace, "bac");
    assert_int_equal(keel_sim_now_ns(), 5000);
    assert_int_equal(keel_sim_event_schedule(&evs[0], 10, mark_ev, NULL), KEEL_SIM_ERR_INVALID);
    assert_int_equal(keel_sim_create(NULL), KEEL_SIM_ERR_BUSY);
}

static uint64_t finished_at;

static void long_worker(void *arg)
{
    (void)arg;
    keel_sim_busy_ns(10 * MS);
    finished_at = keel_sim_now_ns();
}

static void test_sim_run_stops_mid_busy_and_resumes_exactly(void **state)
{
    (void)state;
    keel_sim_destroy();
    keel_sim_config c = keel_sim_config_default();
    c.service_cost_ns = 0;
    c.irq_entry_ns = 0;
    assert_int_equal(rt_setup_cfg(&c), 0);
    finished_at = 0;
    rt_spawn("w", long_worker, NULL, 5);
    for (int i = 1; i <= 9; i++) {
        assert_int_equal(keel_sim_run_until((uint64_t)i * MS + 123), KEEL_SIM_STOP_TIME);
        assert_int_equal(keel_sim_now_ns(), (uint64_t)i * MS + 123);
        assert_int_equal(finished_at, 0);
    }
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_int_equal(finished_at, 10 * MS);
}

static int counter;

static void counting(void *arg)
{
    (void)arg;
    for (;;) {
        keel_rtos_thread_sleep(1);
        counter++;
    }
}

static bool reached_5(void *arg)
{
    (void)arg;
    return counter >= 5;
}

static void test_sim_run_until_condition_stops_when_true(void **state)
{
    (void)state;
    counter = 0;
    rt_spawn("c", counting, NULL, 5);
    assert_int_equal(keel_sim_run_until_cond(reached_5, NULL, 100 * MS), KEEL_SIM_STOP_CONDITION);
    assert_int_equal(counter, 5);
    assert_true(keel_sim_now_ns() >= 5 * MS && keel_sim_now_ns() < 6 * MS);
    assert_int_equal(keel_sim_run_until_cond(reached_5, NULL, 100 * MS), KEEL_SIM_STOP_CONDITION);
    assert_int_equal(keel_sim_run_for(3 * MS), KEEL_SIM_STOP_TIME);
    assert_int_equal(counter, 8);
}

static void stopper(void *arg)
{
    (void)arg;
    keel_rtos_thread_sleep(4);
    keel_sim_request_stop();
    keel_rtos_thread_sleep(1000);
}

static void test_sim_request_stop_from_thread(void **state)
{
    (void)state;
    rt_spawn("s", stopper, NULL, 5);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_REQUEST);
    assert_int_equal(keel_sim_now_ns(), 4 * MS + 500);
}

static keel_rtos_sem cost_sem;

static void ping(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++) {
        (void)keel_rtos_sem_put(&cost_sem);
    }
}

static void test_sim_service_cost_charged_per_call(void **state)
{
    (void)state;
    keel_sim_destroy();
    keel_sim_config c = keel_sim_config_default();
    c.service_cost_ns = 2000;
    c.irq_entry_ns = 0;
    assert_int_equal(rt_setup_cfg(&c), 0);
    assert_int_equal(keel_rtos_sem_create(&cost_sem, 0, 0), KEEL_RTOS_OK);
    rt_spawn("p", ping, NULL, 5);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_int_equal(keel_sim_now_ns(), 100 * 2000);
    assert_int_equal(keel_rtos_sem_count(&cost_sem), 100);
}

/* ---- host fds ---- */

static int efd;
static keel_rtos_sem door_sem;
static uint64_t door_value;

static void doorbell_isr(void *arg)
{
    (void)arg;
    uint64_t v;
    if (read(efd, &v, sizeof v) == (ssize_t)sizeof v) {
        door_value += v;
        (void)keel_rtos_sem_put(&door_sem);
    }
}

static void door_thread(void *arg)
{
    (void)arg;
    assert_int_equal(keel_rtos_sem_get(&door_sem, KEEL_RTOS_WAIT_FOREVER), KEEL_RTOS_OK);
    rt_mark('d');
    keel_sim_request_stop();
}

static void test_sim_fd_readable_raises_interrupt(void **state)
{
    (void)state;
    efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    assert_true(efd >= 0);
    door_value = 0;
    assert_int_equal(keel_rtos_sem_create(&door_sem, 0, 0), KEEL_RTOS_OK);
    assert_int_equal(keel_sim_irq_attach(9, doorbell_isr, NULL), KEEL_SIM_OK);
    assert_int_equal(keel_sim_fd_attach(efd, 9), KEEL_SIM_OK);
    assert_int_equal(keel_sim_fd_attach(efd, 99), KEEL_SIM_ERR_INVALID);
    rt_spawn("d", door_thread, NULL, 5);
    uint64_t one = 3;
    assert_int_equal(write(efd, &one, sizeof one), (ssize_t)sizeof one);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_REQUEST);
    assert_string_equal(rt_trace, "d");
    assert_int_equal(door_value, 3);
    assert_int_equal(keel_sim_fd_detach(efd), KEEL_SIM_OK);
    close(efd);
}

static void *ring_later(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 30 * 1000 * 1000};
    nanosleep(&ts, NULL); /* the other side of the channel acting later, not a sync */
    uint64_t one = 1;
    if (write(efd, &one, sizeof one) != (ssize_t)sizeof one) {
        return NULL;
    }
    return NULL;
}

static uint64_t wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Paced: virtual time never runs ahead of the wall clock, and an idle simulation wakes for a
 * doorbell rung by another host thread. */
static void test_sim_paced_idle_waits_on_fd_and_tracks_wall_clock(void **state)
{
    (void)state;
    keel_sim_destroy();
    keel_sim_config c = keel_sim_config_default();
    c.paced = true;
    assert_int_equal(rt_setup_cfg(&c), 0);
    efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    assert_true(efd >= 0);
    door_value = 0;
    assert_int_equal(keel_rtos_sem_create(&door_sem, 0, 0), KEEL_RTOS_OK);
    assert_int_equal(keel_sim_irq_attach(9, doorbell_isr, NULL), KEEL_SIM_OK);
    assert_int_equal(keel_sim_fd_attach(efd, 9), KEEL_SIM_OK);
    rt_spawn("d", door_thread, NULL, 5);
    uint64_t w0 = wall();
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, ring_later, NULL), 0);
    assert_int_equal(keel_sim_run_until(5000 * MS), KEEL_SIM_STOP_REQUEST);
    uint64_t elapsed = wall() - w0;
    pthread_join(th, NULL);
    assert_int_equal(door_value, 1);
    /* woke for the doorbell (long before the 5 s limit) and never ran ahead of the wall */
    assert_true(keel_sim_now_ns() <= elapsed);
    assert_true(keel_sim_now_ns() >= 20 * MS);
    close(efd);
}

/* Destroying a simulation whose thread is parked mid-busy, then building a new one in the
 * same memory, must work like a fresh start. */
static void test_sim_destroy_with_parked_thread_then_recreate(void **state)
{
    (void)state;
    finished_at = 0;
    rt_spawn("w", long_worker, NULL, 5);
    assert_int_equal(keel_sim_run_until(2 * MS), KEEL_SIM_STOP_TIME);
    keel_sim_destroy();
    keel_sim_config c = keel_sim_config_default();
    c.service_cost_ns = 0;
    c.irq_entry_ns = 0;
    assert_int_equal(rt_setup_cfg(&c), 0);
    assert_int_equal(keel_sim_now_ns(), 0);
    rt_spawn("w", long_worker, NULL, 5);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_int_equal(finished_at, 10 * MS);
}

static uint64_t handler_saw[2];

static void slow_handler(void *arg)
{
    (void)arg;
    keel_sim_busy_us(30); /* an interrupt handler that takes 30 us */
    handler_saw[0] = keel_sim_now_ns();
}

static void late_event(void *arg)
{
    (void)arg;
    handler_saw[1] = keel_sim_now_ns(); /* hardware keeps its own time */
}

static void raise_slow(void *arg)
{
    (void)arg;
    keel_sim_irq_raise(5);
}

static void test_sim_busy_in_handler_hardware_runs_on_time(void **state)
{
    (void)state;
    assert_int_equal(keel_sim_irq_attach(5, slow_handler, NULL), KEEL_SIM_OK);
    assert_int_equal(keel_sim_event_schedule(&evs[0], 100000, raise_slow, NULL), KEEL_SIM_OK);
    assert_int_equal(keel_sim_event_schedule(&evs[1], 110000, late_event, NULL), KEEL_SIM_OK);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_int_equal(handler_saw[1], 110000);             /* fired during the handler */
    assert_int_equal(handler_saw[0], 100000 + 500 + 30000); /* entry + 30 us */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RT_TEST(test_sim_events_same_instant_run_in_schedule_order),
        RT_TEST(test_sim_run_stops_mid_busy_and_resumes_exactly),
        RT_TEST(test_sim_run_until_condition_stops_when_true),
        RT_TEST(test_sim_request_stop_from_thread),
        RT_TEST(test_sim_service_cost_charged_per_call),
        RT_TEST(test_sim_fd_readable_raises_interrupt),
        RT_TEST(test_sim_paced_idle_waits_on_fd_and_tracks_wall_clock),
        RT_TEST(test_sim_destroy_with_parked_thread_then_recreate),
        RT_TEST(test_sim_busy_in_handler_hardware_runs_on_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

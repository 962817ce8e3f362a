/* Message queues: FIFO order, full and empty queues with and without waiting, direct hand-off
 * to waiters, sends from interrupts, deletion with waiters. */
#include "rtos_test.h"

typedef struct msg {
    uint32_t seq;
    uint32_t payload[3];
} msg;

static keel_rtos_queue q;
static msg qbuf[4];
static msg received[16];
static int nreceived;
static keel_rtos_err results[4];

static void test_queue_fifo_full_and_empty_no_wait(void **state)
{
    (void)state;
    assert_int_equal(keel_rtos_queue_create(&q, qbuf, sizeof(msg), 4), KEEL_RTOS_OK);
    for (uint32_t i = 0; i < 4; i++) {
        msg m = {.seq = i, .payload = {i, i * 2, i * 3}};
        assert_int_equal(keel_rtos_queue_send(&q, &m, KEEL_RTOS_NO_WAIT), KEEL_RTOS_OK);
    }
    msg extra = {.seq = 99};
    assert_int_equal(keel_rtos_queue_send(&q, &extra, KEEL_RTOS_NO_WAIT),
                     KEEL_RTOS_ERR_UNAVAILABLE);
    assert_int_equal(keel_rtos_queue_count(&q), 4);
    for (uint32_t i = 0; i < 4; i++) {
        msg m;
        assert_int_equal(keel_rtos_queue_receive(&q, &m, KEEL_RTOS_NO_WAIT), KEEL_RTOS_OK);
        assert_int_equal(m.seq, i);
        assert_int_equal(m.payload[2], i * 3);
    }
    msg m;
    assert_int_equal(keel_rtos_queue_receive(&q, &m, KEEL_RTOS_NO_WAIT),
                     KEEL_RTOS_ERR_UNAVAILABLE);
    assert_int_equal(keel_rtos_queue_create(&q, qbuf, 0, 4), KEEL_RTOS_ERR_INVALID);
    assert_int_equal(keel_rtos_queue_create(&q, NULL, 4, 4), KEEL_RTOS_ERR_INVALID);
}

static void producer(void *arg)
{
    (void)arg;
    for (uint32_t i = 0; i < 10; i++) {
        msg m = {.seq = i, .payload = {i ^ 0xabcdu, 0, 0}};
        assert_int_equal(keel_rtos_queue_send(&q, &m, KEEL_RTOS_WAIT_FOREVER), KEEL_RTOS_OK);
    }
}

static void slow_consumer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++) {
        keel_rtos_thread_sleep(1);
        assert_int_equal(keel_rtos_queue_receive(&q, &received[nreceived], 100), KEEL_RTOS_OK);
        nreceived++;
    }
}

static void test_queue_blocked_sender_resumes_in_order(void **state)
{
    (void)state;
    nreceived = 0;
    assert_int_equal(keel_rtos_queue_create(&q, qbuf, sizeof(msg), 4), KEEL_RTOS_OK);
    rt_spawn("prod", producer, NULL, 3);
    rt_spawn("cons", slow_consumer, NULL, 5);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_int_equal(nreceived, 10);
    for (uint32_t i = 0; i < 10; i++) {
        assert_int_equal(received[i].seq, i);
        assert_int_equal(received[i].payload[0], i ^ 0xabcdu);
    }
}

static void fast_consumer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++) {
        results[i] = keel_rtos_queue_receive(&q, &received[nreceived], 3);
        if (results[i] == KEEL_RTOS_OK) {
            nreceived++;
        }
    }
}

static keel_sim_event ev;
static void isr_send(void *arg)
{
    (void)arg;
    msg m = {.seq = 7};
    assert_int_equal(keel_rtos_queue_send(&q, &m, KEEL_RTOS_NO_WAIT), KEEL_RTOS_OK);
}
static void raise_line(void *arg)
{
    (void)arg;
    keel_sim_irq_raise(4);
}

static void test_queue_isr_send_hands_off_to_waiting_receiver(void **state)
{
    (void)state;
    nreceived = 0;
    assert_int_equal(keel_rtos_queue_create(&q, qbuf, sizeof(msg), 4), KEEL_RTOS_OK);
    assert_int_equal(keel_sim_irq_attach(4, isr_send, NULL), KEEL_SIM_OK);
    assert_int_equal(keel_sim_event_schedule(&ev, 2 * MS + 100, raise_line, NULL), KEEL_SIM_OK);
    rt_spawn("cons", fast_consumer, NULL, 5);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_int_equal(results[0], KEEL_RTOS_OK);
    assert_int_equal(received[0].seq, 7);
    assert_int_equal(keel_rtos_queue_count(&q), 0); /* handed over, never queued */
    assert_int_equal(results[1], KEEL_RTOS_ERR_TIMEOUT);
    assert_int_equal(results[2], KEEL_RTOS_ERR_TIMEOUT);
}

static void full_sender(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    msg m = {.seq = 100};
    results[i] = keel_rtos_queue_send(&q, &m, KEEL_RTOS_WAIT_FOREVER);
}

static void test_queue_delete_with_blocked_senders_deleted(void **state)
{
    (void)state;
    assert_int_equal(keel_rtos_queue_create(&q, qbuf, sizeof(msg), 1), KEEL_RTOS_OK);
    msg m = {.seq = 1};
    assert_int_equal(keel_rtos_queue_send(&q, &m, KEEL_RTOS_NO_WAIT), KEEL_RTOS_OK);
    rt_spawn("s0", full_sender, (void *)0, 5);
    rt_spawn("s1", full_sender, (void *)1, 6);
    keel_sim_run_for(MS);
    assert_int_equal(keel_rtos_queue_delete(&q), KEEL_RTOS_OK);
    assert_int_equal(keel_sim_run_until(KEEL_SIM_FOREVER), KEEL_SIM_STOP_IDLE);
    assert_int_equal(results[0], KEEL_RTOS_ERR_DELETED);
    assert_int_equal(results[1], KEEL_RTOS_ERR_DELETED);
}

static void test_queue_odd_message_size_copied_exactly(void **state)
{
    (void)state;
    static uint8_t buf[3 * 7];
    assert_int_equal(keel_rtos_queue_create(&q, buf, 7, 3), KEEL_RTOS_OK);
    for (int round = 0; round < 5; round++) {
        uint8_t in[7], out[8];
        for (int i = 0; i < 7; i++) {
            in[i] = (uint8_t)(round * 16 + i);
        }
        out[7] = 0xee;
        assert_int_equal(keel_rtos_queue_send(&q, in, KEEL_RTOS_NO_WAIT), KEEL_RTOS_OK);
        assert_int_equal(keel_rtos_queue_receive(&q, out, KEEL_RTOS_NO_WAIT), KEEL_RTOS_OK);
        assert_memory_equal(in, out, 7);
        assert_int_equal(out[7], 0xee);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        RT_TEST(test_queue_fifo_full_and_empty_no_wait),
        RT_TEST(test_queue_blocked_sender_resumes_in_order),
        RT_TEST(test_queue_isr_send_hands_off_to_waiting_receiver),
        RT_TEST(test_queue_delete_with_blocked_senders_deleted),
        RT_TEST(test_queue_odd_message_size_copied_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

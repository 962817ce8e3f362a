/* Message processing: one thread sends a 16-byte message to a queue and receives it back. */
#include "tm.h"

const char tm_test_name[] = "message";
static keel_rtos_thread t0;
static keel_rtos_queue queue;
static uint32_t qbuf[10][4];
static volatile uint32_t counter;

static void work(void *arg)
{
    (void)arg;
    uint32_t out[4] = {0x11u, 0x22u, 0x33u, 0};
    uint32_t in[4];
    for (;;) {
        out[3] = counter;
        (void)keel_rtos_queue_send(&queue, out, KEEL_RTOS_WAIT_FOREVER);
        (void)keel_rtos_queue_receive(&queue, in, KEEL_RTOS_WAIT_FOREVER);
        if (in[3] != counter) {
            break; /* a corrupt message stops the count */
        }
        counter++;
    }
    for (;;) {
        keel_rtos_thread_sleep(1000);
    }
}

void tm_test_init(void)
{
    if (keel_rtos_queue_create(&queue, qbuf, sizeof qbuf[0], 10) != KEEL_RTOS_OK) {
        return;
    }
    tm_thread_create(0, &t0, work, NULL, 10, false);
}

uint32_t tm_test_count(void)
{
    return counter;
}

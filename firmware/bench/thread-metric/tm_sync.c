/* Synchronization processing: one thread takes and gives a semaphore. */
#include "tm.h"

const char tm_test_name[] = "synchronization";
static keel_rtos_thread t0;
static keel_rtos_sem sem;
static volatile uint32_t counter;

static void work(void *arg)
{
    (void)arg;
    for (;;) {
        (void)keel_rtos_sem_get(&sem, KEEL_RTOS_WAIT_FOREVER);
        (void)keel_rtos_sem_put(&sem);
        counter++;
    }
}

void tm_test_init(void)
{
    if (keel_rtos_sem_create(&sem, 1, 0) != KEEL_RTOS_OK) {
        return;
    }
    tm_thread_create(0, &t0, work, NULL, 10, false);
}

uint32_t tm_test_count(void)
{
    return counter;
}

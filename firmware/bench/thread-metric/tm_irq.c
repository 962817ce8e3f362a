/* Interrupt processing: a thread causes the software interrupt and takes a semaphore the
 * handler gives; both count. */
#include "tm.h"

const char tm_test_name[] = "interrupt";
static keel_rtos_thread t0;
static keel_rtos_sem sem;
static volatile uint32_t thread_counter, isr_counter;

void tm_test_isr(void)
{
    isr_counter++;
    (void)keel_rtos_sem_put(&sem);
}

static void work(void *arg)
{
    (void)arg;
    for (;;) {
        tm_cause_interrupt();
        (void)keel_rtos_sem_get(&sem, KEEL_RTOS_WAIT_FOREVER);
        thread_counter++;
    }
}

void tm_test_init(void)
{
    if (keel_rtos_sem_create(&sem, 0, 0) != KEEL_RTOS_OK) {
        return;
    }
    tm_thread_create(0, &t0, work, NULL, 10, false);
}

uint32_t tm_test_count(void)
{
    return thread_counter + isr_counter;
}

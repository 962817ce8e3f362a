/* Interrupt preemption processing: a thread causes the software interrupt; the handler
 * resumes a more urgent thread, which preempts the first as the handler returns, counts and
 * suspends itself. All three count. */
#include "tm.h"

const char tm_test_name[] = "interrupt-preemption";
static keel_rtos_thread low, high;
static volatile uint32_t low_counter, high_counter, isr_counter;

void tm_test_isr(void)
{
    isr_counter++;
    (void)keel_rtos_thread_resume(&high);
}

static void low_work(void *arg)
{
    (void)arg;
    for (;;) {
        tm_cause_interrupt();
        low_counter++;
    }
}

static void high_work(void *arg)
{
    (void)arg;
    for (;;) {
        high_counter++;
        (void)keel_rtos_thread_suspend(&high);
    }
}

void tm_test_init(void)
{
    tm_thread_create(0, &low, low_work, NULL, 10, false);
    tm_thread_create(1, &high, high_work, NULL, 5, true);
}

uint32_t tm_test_count(void)
{
    return low_counter + high_counter + isr_counter;
}

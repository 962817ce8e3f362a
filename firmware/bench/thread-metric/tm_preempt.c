/* Preemptive scheduling: five threads of rising priority. The least urgent counts and resumes
 * the next, which preempts it, counts, resumes the next, ... the most urgent counts and
 * suspends itself, and each in turn suspends itself back down the chain. */
#include "tm.h"

const char tm_test_name[] = "preemptive";
static keel_rtos_thread th[5];
static volatile uint32_t counter[5];

static void level(void *arg)
{
    int i = (int)(uintptr_t)arg;
    for (;;) {
        counter[i]++;
        if (i < 4) {
            (void)keel_rtos_thread_resume(&th[i + 1]);
        }
        if (i > 0) {
            (void)keel_rtos_thread_suspend(&th[i]);
        }
    }
}

void tm_test_init(void)
{
    for (int i = 0; i < 5; i++) {
        tm_thread_create(i, &th[i], level, (void *)(uintptr_t)i, (uint8_t)(10 - i), i != 0);
    }
}

uint32_t tm_test_count(void)
{
    uint32_t s = 0;
    for (int i = 0; i < 5; i++) {
        s += counter[i];
    }
    return s;
}

/* Cooperative scheduling: five threads of one priority each count and relinquish. */
#include "tm.h"

const char tm_test_name[] = "cooperative";
static keel_rtos_thread th[5];
static volatile uint32_t counter[5];

static void coop(void *arg)
{
    volatile uint32_t *c = arg;
    for (;;) {
        (*c)++;
        keel_rtos_thread_relinquish();
    }
}

void tm_test_init(void)
{
    for (int i = 0; i < 5; i++) {
        tm_thread_create(i, &th[i], coop, (void *)&counter[i], 3, false);
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

/* Basic processing: one thread updates a 1024-word array and counts passes. No kernel work:
 * it calibrates the harness (every kernel scores the same). */
#include "tm.h"

const char tm_test_name[] = "basic";
static keel_rtos_thread t0;
static volatile uint32_t counter;
static volatile uint32_t array[1024];

static void work(void *arg)
{
    (void)arg;
    for (;;) {
        for (uint32_t i = 0; i < 1024u; i++) {
            array[i] = (array[i] + counter) ^ array[i];
        }
        counter++;
    }
}

void tm_test_init(void)
{
    tm_thread_create(0, &t0, work, NULL, 10, false);
}

uint32_t tm_test_count(void)
{
    return counter;
}

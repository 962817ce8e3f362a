/* Memory allocation: one thread allocates and frees a 128-byte block from a block pool. */
#include "tm.h"

const char tm_test_name[] = "memory";
static keel_rtos_thread t0;
static keel_rtos_block_pool pool;
static uint8_t pool_mem[2048] __attribute__((aligned(8)));
static volatile uint32_t counter;

static void work(void *arg)
{
    (void)arg;
    for (;;) {
        void *b;
        (void)keel_rtos_block_alloc(&pool, &b, KEEL_RTOS_WAIT_FOREVER);
        (void)keel_rtos_block_free(&pool, b);
        counter++;
    }
}

void tm_test_init(void)
{
    if (keel_rtos_block_pool_create(&pool, 128, pool_mem, sizeof pool_mem) != KEEL_RTOS_OK) {
        return;
    }
    tm_thread_create(0, &t0, work, NULL, 10, false);
}

uint32_t tm_test_count(void)
{
    return counter;
}

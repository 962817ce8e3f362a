/* Per-thread run time on the Cortex-M port: two threads of one priority alternate, one doing
 * three times the work of the other per turn; their accounted cycles must be in that ratio
 * (within 10 %), and their sum must not exceed the elapsed time. */
#include <stdint.h>

#include "board.h"
#include "keel/rtos.h"

static uint8_t stacks[3][1024] __attribute__((aligned(8)));
static keel_rtos_thread ctl, light, heavy;
static volatile uint32_t sink;

static void spin(uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        sink += i;
    }
}

static void worker(void *arg)
{
    uint32_t units = (uint32_t)(uintptr_t)arg;
    for (int turn = 0; turn < 200; turn++) {
        spin(units * 2000u);
        keel_rtos_thread_relinquish();
    }
}

static void control(void *arg)
{
    (void)arg;
    keel_rtos_thread_sleep(100); /* both workers finish long before */
    keel_rtos_thread_stats a, b;
    if (keel_rtos_thread_stats_get(&light, &a) != KEEL_RTOS_OK ||
        keel_rtos_thread_stats_get(&heavy, &b) != KEEL_RTOS_OK) {
        board_exit(3);
    }
    board_console_puts("light ");
    board_console_put_u32((uint32_t)a.run_time);
    board_console_puts(" heavy ");
    board_console_put_u32((uint32_t)b.run_time);
    board_console_puts(" switches ");
    board_console_put_u32(a.switches_in);
    board_console_puts("\n");
    int ok = a.run_time > 0 && b.run_time * 10u >= a.run_time * 27u &&
             b.run_time * 10u <= a.run_time * 33u && a.switches_in >= 200u &&
             a.run_time + b.run_time < 100ull * (BOARD_CPU_HZ / keel_rtos_tick_hz());
    board_console_puts(ok ? "PASS\n" : "FAIL\n");
    board_exit(ok ? 0 : 1);
}

int main(void)
{
    keel_rtos_init();
    keel_rtos_thread_config c = {.name = "ctl", .entry = control, .stack = stacks[0],
                                 .stack_size = sizeof stacks[0], .priority = 1};
    keel_rtos_thread_config l = {.name = "light", .entry = worker, .arg = (void *)1u,
                                 .stack = stacks[1], .stack_size = sizeof stacks[1],
                                 .priority = 5};
    keel_rtos_thread_config h = {.name = "heavy", .entry = worker, .arg = (void *)3u,
                                 .stack = stacks[2], .stack_size = sizeof stacks[2],
                                 .priority = 5};
    if (keel_rtos_thread_create(&ctl, &c) != KEEL_RTOS_OK ||
        keel_rtos_thread_create(&light, &l) != KEEL_RTOS_OK ||
        keel_rtos_thread_create(&heavy, &h) != KEEL_RTOS_OK) {
        return 100;
    }
    keel_rtos_start();
    return 101;
}

/* Stack overflow detection on the Cortex-M port: a thread's local array runs into the 16-byte
 * guard at the bottom of its 1 KiB stack, then the thread blocks. The overflow handler must
 * be called for that thread at the switch, and the rest of the system must keep running.
 * Exit 0 if so. The array stops near the bottom so little outside the stack array is touched
 * (the memory below it is a canary, checked too). */
#include <stdint.h>

#include "board.h"
#include "keel/rtos.h"

#define STACK 1024u
static struct {
    uint8_t below[64];
    uint8_t stack[STACK];
} __attribute__((aligned(8))) mem;
static uint8_t main_stack[2048] __attribute__((aligned(8)));
static keel_rtos_thread victim, watcher;
static keel_rtos_thread *reported;
static volatile uint8_t sink;

static void on_overflow(keel_rtos_thread *t)
{
    reported = t;
}

/* The overflow: a local array big enough to reach the bottom 8 bytes of the stack, as an
 * oversized buffer on a small stack would. */
static __attribute__((noinline)) void big_local(void)
{
    volatile uint8_t here;
    size_t n = (size_t)((uintptr_t)&here - ((uintptr_t)mem.stack + 8u));
    if (n < 64u || n > STACK) {
        return;
    }
    volatile uint8_t buf[n];
    for (size_t i = 0; i < n; i++) {
        buf[i] = (uint8_t)i;
    }
    sink = buf[0];
}

static void victim_entry(void *arg)
{
    (void)arg;
    big_local();
    keel_rtos_thread_sleep(1); /* the switch: guard checked here */
    board_console_puts("FAIL: overflowed thread ran again\n");
    board_exit(2);
}

static void watcher_entry(void *arg)
{
    (void)arg;
    keel_rtos_thread_sleep(3);
    int ok = reported == &victim && victim.state == KEEL_RTOS_THREAD_TERMINATED;
    for (unsigned i = 0; i < sizeof mem.below / 2; i++) {
        ok &= mem.below[i] == 0x3c; /* the overflow stayed near the guard */
    }
    board_console_puts(ok ? "PASS: overflow detected at switch\n" : "FAIL\n");
    board_exit(ok ? 0 : 1);
}

int main(void)
{
    for (unsigned i = 0; i < sizeof mem.below; i++) {
        mem.below[i] = 0x3c;
    }
    keel_rtos_init();
    keel_rtos_set_overflow_handler(on_overflow);
    keel_rtos_thread_config v = {.name = "victim", .entry = victim_entry, .stack = mem.stack,
                                 .stack_size = STACK, .priority = 5};
    keel_rtos_thread_config w = {.name = "watcher", .entry = watcher_entry, .stack = main_stack,
                                 .stack_size = sizeof main_stack, .priority = 2};
    if (keel_rtos_thread_create(&victim, &v) != KEEL_RTOS_OK ||
        keel_rtos_thread_create(&watcher, &w) != KEEL_RTOS_OK) {
        return 100;
    }
    keel_rtos_start();
    return 101;
}

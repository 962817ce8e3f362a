/* Thread-Metric harness: main, the reporting thread and the software interrupt.
 * The reporting thread has the most urgent priority; it sleeps one 3 s window and prints the
 * window's count x10 (the score: counts per 30 s, as the anchors report it) and the guest
 * instructions per counted event (3e9 instructions in the window under -icount shift=0). */
#include "board.h"
#include "tm.h"

static uint8_t stacks[9][TM_STACK] __attribute__((aligned(8)));
static keel_rtos_thread reporter;

void tm_thread_create(int i, keel_rtos_thread *t, void (*fn)(void *), void *arg, uint8_t prio,
                      bool suspended)
{
    keel_rtos_thread_config cfg = {.name = "tm", .entry = fn, .arg = arg, .stack = stacks[i + 1],
                                   .stack_size = TM_STACK, .priority = prio,
                                   .start_suspended = suspended};
    if (keel_rtos_thread_create(t, &cfg) != KEEL_RTOS_OK) {
        board_console_puts("tm: thread_create failed\n");
        board_exit(3);
    }
}

__attribute__((weak)) void tm_test_isr(void)
{
}

/* The software interrupt, wired straight into the vector table like the anchors' harness. */
void IRQ30_Handler(void)
{
    tm_test_isr();
}

static void report(void *arg)
{
    (void)arg;
    uint32_t start = tm_test_count();
    keel_rtos_thread_sleep(TM_WINDOW_TICKS);
    uint32_t n = tm_test_count() - start;
    board_console_puts("tm: ");
    board_console_puts(tm_test_name);
    board_console_puts(" score ");
    board_console_put_u32(n * (3000u / TM_WINDOW_TICKS));
    board_console_puts(" instr/event ");
    if (n != 0) {
        uint32_t tenths = (uint32_t)(TM_WINDOW_TICKS * 100000000ull / n);
        board_console_put_u32(tenths / 10u);
        board_console_puts(".");
        board_console_put_u32(tenths % 10u);
    } else {
        board_console_puts("-");
    }
    board_console_puts("\n");
    board_exit(0);
}

int main(void)
{
    keel_rtos_init();
    keel_rtos_thread_config cfg = {.name = "report", .entry = report, .stack = stacks[0],
                                   .stack_size = TM_STACK, .priority = 0};
    if (keel_rtos_thread_create(&reporter, &cfg) != KEEL_RTOS_OK) {
        return 3;
    }
    /* NVIC: IRQ 30 at 0x80, enabled. */
    *(volatile uint8_t *)(0xE000E400u + TM_SWI_IRQ) = 0x80u;
    *(volatile uint32_t *)0xE000E100u = 1u << TM_SWI_IRQ;
    tm_test_init();
    keel_rtos_start();
    return 4;
}

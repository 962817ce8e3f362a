/* Context switch and interrupt-to-thread latency, in guest instructions (under -icount
 * shift=0 one instruction is 1 ns; CMSDK timer 0 counts at 25 MHz, 40 ns a count). Each
 * figure is a mean over 10,000 events, so the 40-instruction resolution averages out.
 *  - yield, nothing else ready: relinquish with no switch;
 *  - yield with a switch: two threads of one priority relinquishing to each other;
 *    the difference is the context switch itself (PendSV and picking the thread);
 *  - interrupt to thread: a low thread stamps and pends IRQ 30; the handler gives a
 *    semaphore a more urgent thread waits on; that thread stamps when it runs. */
#include <stdint.h>

#include "board.h"
#include "keel/rtos.h"

#define N 10000u
#define TIMER0_CTRL (*(volatile uint32_t *)0x40000000u)
#define TIMER0_VALUE (*(volatile uint32_t *)0x40000004u)
#define TIMER0_RELOAD (*(volatile uint32_t *)0x40000008u)
#define NS_PER_COUNT 40u
#define IRQ 30u

static uint8_t stacks[5][1024] __attribute__((aligned(8)));
static keel_rtos_thread control_t, a_t, b_t, low_t, high_t;
static keel_rtos_sem done, isr_sem;
static volatile uint32_t stamp_before;
static uint64_t irq_sum;
static uint32_t yields_ab;

static inline uint32_t now(void)
{
    return ~TIMER0_VALUE; /* counts down; invert to count up */
}

static void spawn(keel_rtos_thread *t, int i, void (*fn)(void *), uint8_t prio)
{
    keel_rtos_thread_config cfg = {.name = "lat", .entry = fn, .stack = stacks[i],
                                   .stack_size = sizeof stacks[i], .priority = prio};
    if (keel_rtos_thread_create(t, &cfg) != KEEL_RTOS_OK) {
        board_exit(3);
    }
}

static void yielder(void *arg)
{
    (void)arg;
    for (uint32_t i = 0; i < N; i++) {
        keel_rtos_thread_relinquish();
        yields_ab++;
    }
    (void)keel_rtos_sem_put(&done);
}

void IRQ30_Handler(void)
{
    (void)keel_rtos_sem_put(&isr_sem);
}

static void high(void *arg)
{
    (void)arg;
    for (uint32_t i = 0; i < N; i++) {
        (void)keel_rtos_sem_get(&isr_sem, KEEL_RTOS_WAIT_FOREVER);
        uint32_t t = now();
        irq_sum += t - stamp_before;
    }
    (void)keel_rtos_sem_put(&done);
}

static void low(void *arg)
{
    (void)arg;
    for (uint32_t i = 0; i < N; i++) {
        stamp_before = now();
        *(volatile uint32_t *)0xE000E200u = 1u << IRQ;
        __asm volatile("dsb\n\tisb" ::: "memory");
    }
}

static void put_instr(const char *what, uint64_t counts, uint32_t events)
{
    uint64_t tenths = counts * NS_PER_COUNT * 10u / events;
    board_console_puts("tm: latency ");
    board_console_puts(what);
    board_console_puts(" ");
    board_console_put_u32((uint32_t)(tenths / 10u));
    board_console_puts(".");
    board_console_put_u32((uint32_t)(tenths % 10u));
    board_console_puts("\n");
}

static void control(void *arg)
{
    (void)arg;
    /* 1. yields with nothing to switch to */
    uint32_t t0 = now();
    for (uint32_t i = 0; i < N; i++) {
        keel_rtos_thread_relinquish();
    }
    uint32_t t1 = now();
    uint64_t noswitch = t1 - t0;
    /* 2. two threads at one priority (below ours) yielding to each other */
    if (keel_rtos_sem_create(&done, 0, 0) != KEEL_RTOS_OK) {
        board_exit(3);
    }
    spawn(&a_t, 1, yielder, 5);
    spawn(&b_t, 2, yielder, 5);
    t0 = now();
    (void)keel_rtos_sem_get(&done, KEEL_RTOS_WAIT_FOREVER);
    t1 = now();
    (void)keel_rtos_sem_get(&done, KEEL_RTOS_WAIT_FOREVER);
    uint64_t withswitch = t1 - t0;
    /* 3. interrupt to thread */
    if (keel_rtos_sem_create(&isr_sem, 0, 0) != KEEL_RTOS_OK) {
        board_exit(3);
    }
    *(volatile uint8_t *)(0xE000E400u + IRQ) = 0x80u;
    *(volatile uint32_t *)0xE000E100u = 1u << IRQ;
    spawn(&high_t, 3, high, 4);
    spawn(&low_t, 4, low, 6);
    (void)keel_rtos_sem_get(&done, KEEL_RTOS_WAIT_FOREVER);

    put_instr("yield-no-switch", noswitch, N);
    /* the first thread's last yield finds the second gone; 2N-1 switches in all */
    put_instr("yield-with-switch", withswitch, 2u * N - 1u);
    board_console_puts("tm: latency irq-to-thread-events ");
    board_console_put_u32(N);
    board_console_puts("\n");
    put_instr("irq-to-thread", irq_sum, N);
    board_exit(0);
}

int main(void)
{
    TIMER0_RELOAD = 0xffffffffu;
    TIMER0_VALUE = 0xffffffffu;
    TIMER0_CTRL = 1u; /* enable, no interrupt */
    keel_rtos_init();
    keel_rtos_thread_config cfg = {.name = "control", .entry = control, .stack = stacks[0],
                                   .stack_size = sizeof stacks[0], .priority = 1};
    if (keel_rtos_thread_create(&control_t, &cfg) != KEEL_RTOS_OK) {
        return 3;
    }
    keel_rtos_start();
    return 4;
}

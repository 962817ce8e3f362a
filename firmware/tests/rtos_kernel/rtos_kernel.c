/* Kernel tests that run on every board: a controller thread at the top priority runs each
 * case in turn; a case creates workers, waits for them on a semaphore and checks what they
 * recorded. Written only against board.h and rtos.h, so the same file checks the cortex-m
 * port on QEMU and the sim port on the host. The exit code is the number of failed cases.
 * Nothing here spins on a flag: a spin never ends on the sim board, where time passes only
 * in kernel calls. */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "keel/rtos.h"

#if KEEL_RTOS_MIN_STACK > 2048
#define STACK_BYTES (2u * KEEL_RTOS_MIN_STACK)
#else
#define STACK_BYTES 2048u
#endif
#define WORKERS 4
#define SWI_IRQ 30u

static uint8_t stacks[WORKERS + 1][STACK_BYTES] __attribute__((aligned(8)));
static keel_rtos_thread controller, workers[WORKERS];
static keel_rtos_sem done;
static char trace[64];
static volatile unsigned trace_len;
static int failures;

static void mark(char c)
{
    if (trace_len + 1 < sizeof trace) {
        trace[trace_len++] = c;
        trace[trace_len] = 0;
    }
}

static void check(int ok, const char *what)
{
    if (!ok) {
        board_console_puts("  FAIL: ");
        board_console_puts(what);
        board_console_puts("\n");
        failures++;
    }
}

static void spawn(int i, void (*fn)(void *), void *arg, uint8_t prio, uint32_t slice)
{
    keel_rtos_thread_config cfg = {.name = "worker", .entry = fn, .arg = arg,
                                   .stack = stacks[i + 1], .stack_size = STACK_BYTES,
                                   .priority = prio, .time_slice = slice};
    check(keel_rtos_thread_create(&workers[i], &cfg) == KEEL_RTOS_OK, "thread_create");
}

static void wait_done(int n)
{
    for (int i = 0; i < n; i++) {
        /* generous: without icount, guest time is host time on a loaded machine */
        check(keel_rtos_sem_get(&done, 1000) == KEEL_RTOS_OK, "worker finished in time");
    }
}

/* ---- cases ---- */

static void prio_worker(void *arg)
{
    mark((char)(uintptr_t)arg);
    (void)keel_rtos_sem_put(&done);
}

static void case_priorities(void)
{
    spawn(0, prio_worker, (void *)'c', 9, 0);
    spawn(1, prio_worker, (void *)'a', 3, 0);
    spawn(2, prio_worker, (void *)'b', 5, 0);
    wait_done(3);
    check(strcmp(trace, "abc") == 0, "most urgent first");
}

static keel_rtos_sem ping, pong;
static volatile uint32_t rounds;

static void pinger(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        (void)keel_rtos_sem_put(&ping);
        (void)keel_rtos_sem_get(&pong, KEEL_RTOS_WAIT_FOREVER);
    }
    (void)keel_rtos_sem_put(&done);
}

static void ponger(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        (void)keel_rtos_sem_get(&ping, KEEL_RTOS_WAIT_FOREVER);
        rounds++;
        (void)keel_rtos_sem_put(&pong);
    }
    (void)keel_rtos_sem_put(&done);
}

static void case_semaphore_ping_pong(void)
{
    check(keel_rtos_sem_create(&ping, 0, 0) == KEEL_RTOS_OK, "sem_create");
    check(keel_rtos_sem_create(&pong, 0, 0) == KEEL_RTOS_OK, "sem_create");
    rounds = 0;
    spawn(0, pinger, NULL, 6, 0);
    spawn(1, ponger, NULL, 5, 0);
    wait_done(2);
    check(rounds == 1000, "1000 rounds");
}

static keel_rtos_mutex mtx;
static volatile uint8_t seen_prio;

static void pi_low(void *arg)
{
    (void)arg;
    check(keel_rtos_mutex_lock(&mtx, KEEL_RTOS_NO_WAIT) == KEEL_RTOS_OK, "low locks");
    keel_rtos_thread_sleep(3); /* high blocks on the mutex meanwhile */
    mark('l');
    check(keel_rtos_mutex_unlock(&mtx) == KEEL_RTOS_OK, "low unlocks");
    mark('L');
    (void)keel_rtos_sem_put(&done);
}

static void pi_high(void *arg)
{
    (void)arg;
    keel_rtos_thread_sleep(1);
    check(keel_rtos_mutex_lock(&mtx, KEEL_RTOS_WAIT_FOREVER) == KEEL_RTOS_OK, "high locks");
    mark('h');
    check(keel_rtos_mutex_unlock(&mtx) == KEEL_RTOS_OK, "high unlocks");
    (void)keel_rtos_sem_put(&done);
}

static void case_mutex_inheritance(void)
{
    check(keel_rtos_mutex_create(&mtx) == KEEL_RTOS_OK, "mutex_create");
    spawn(0, pi_low, NULL, 20, 0);
    spawn(1, pi_high, NULL, 4, 0);
    keel_rtos_thread_sleep(2);
    seen_prio = workers[0].priority;
    wait_done(2);
    check(seen_prio == 4, "owner inherits the waiter's priority");
    check(workers[0].priority == 20, "and gives it back");
    check(strcmp(trace, "lhL") == 0, "high runs as soon as low unlocks");
}

static keel_rtos_queue queue;
static uint32_t qbuf[4][4];

static void producer(void *arg)
{
    (void)arg;
    for (uint32_t i = 0; i < 100; i++) {
        uint32_t m[4] = {i, ~i, i * 3u, 0x5eedu};
        check(keel_rtos_queue_send(&queue, m, KEEL_RTOS_WAIT_FOREVER) == KEEL_RTOS_OK, "send");
    }
    (void)keel_rtos_sem_put(&done);
}

static void consumer(void *arg)
{
    (void)arg;
    int in_order = 1;
    for (uint32_t i = 0; i < 100; i++) {
        uint32_t m[4];
        check(keel_rtos_queue_receive(&queue, m, 50) == KEEL_RTOS_OK, "receive");
        in_order &= m[0] == i && m[1] == ~i && m[2] == i * 3u && m[3] == 0x5eedu;
        if (i % 10 == 0) {
            keel_rtos_thread_sleep(1); /* let the queue fill and the producer block */
        }
    }
    check(in_order, "messages intact and in order");
    (void)keel_rtos_sem_put(&done);
}

static void case_queue(void)
{
    check(keel_rtos_queue_create(&queue, qbuf, sizeof qbuf[0], 4) == KEEL_RTOS_OK, "queue");
    spawn(0, producer, NULL, 5, 0);
    spawn(1, consumer, NULL, 6, 0);
    wait_done(2);
}

static keel_rtos_sem isr_sem;
static volatile uint32_t isr_count;

static void swi_handler(void *arg)
{
    (void)arg;
    isr_count++;
    check(keel_rtos_in_isr(), "handler in ISR context");
    (void)keel_rtos_sem_put(&isr_sem);
}

static void isr_thread(void *arg)
{
    (void)arg;
    int ok = 1;
    for (int i = 0; i < 200; i++) {
        board_irq_trigger(SWI_IRQ);
        ok &= keel_rtos_sem_get(&isr_sem, 10) == KEEL_RTOS_OK;
    }
    check(ok, "every interrupt woke the thread");
    (void)keel_rtos_sem_put(&done);
}

static void case_interrupt_wakes_thread(void)
{
    check(keel_rtos_sem_create(&isr_sem, 0, 0) == KEEL_RTOS_OK, "sem_create");
    isr_count = 0;
    board_irq_attach(SWI_IRQ, swi_handler, NULL, 0x80);
    spawn(0, isr_thread, NULL, 5, 0);
    wait_done(1);
    check(isr_count == 200, "200 interrupts");
}

static keel_rtos_timer timer;
static volatile uint32_t timer_fired;

static void on_timer(void *arg)
{
    (void)arg;
    timer_fired++;
}

static void case_timer(void)
{
    timer_fired = 0;
    check(keel_rtos_timer_create(&timer, on_timer, NULL) == KEEL_RTOS_OK, "timer_create");
    check(keel_rtos_timer_start(&timer, 3, 3) == KEEL_RTOS_OK, "timer_start");
    keel_rtos_thread_sleep(10);
    check(timer_fired == 3, "periodic timer fired at 3, 6, 9");
    check(keel_rtos_timer_stop(&timer) == KEEL_RTOS_OK, "timer_stop");
}

static keel_rtos_event events;

static void event_waiter(void *arg)
{
    (void)arg;
    uint32_t got = 0;
    check(keel_rtos_event_wait(&events, 0x5, KEEL_RTOS_EVENT_AND | KEEL_RTOS_EVENT_CLEAR, &got,
                               20) == KEEL_RTOS_OK,
          "AND wait satisfied");
    check(got == 0x7, "saw the flags");
    (void)keel_rtos_sem_put(&done);
}

static void case_events(void)
{
    check(keel_rtos_event_create(&events) == KEEL_RTOS_OK, "event_create");
    spawn(0, event_waiter, NULL, 5, 0);
    keel_rtos_thread_sleep(1);
    (void)keel_rtos_event_set(&events, 0x1);
    (void)keel_rtos_event_set(&events, 0x2);
    check(workers[0].state == KEEL_RTOS_THREAD_WAITING, "not yet");
    (void)keel_rtos_event_set(&events, 0x4);
    wait_done(1);
    check(keel_rtos_event_get(&events) == 0x2, "only the requested flags cleared");
}

/* Floating point across switches: each thread keeps values in FPU registers while the other
 * runs; with lazy stacking both must still see their own. */
static volatile float fp_result[2];

static void fp_worker(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    float acc = (float)id + 0.5f;
    for (int i = 0; i < 100; i++) {
        acc = acc * 1.001f + (float)id;
        keel_rtos_thread_relinquish();
    }
    fp_result[id] = acc;
    (void)keel_rtos_sem_put(&done);
}

static void case_fpu_context(void)
{
    spawn(0, fp_worker, (void *)0, 5, 0);
    spawn(1, fp_worker, (void *)1, 5, 0);
    wait_done(2);
    float expect[2];
    for (int id = 0; id < 2; id++) {
        float acc = (float)id + 0.5f;
        for (int i = 0; i < 100; i++) {
            acc = acc * 1.001f + (float)id;
        }
        expect[id] = acc;
    }
    check(fp_result[0] == expect[0] && fp_result[1] == expect[1], "FPU registers preserved");
}

static keel_rtos_block_pool pool;
static uint8_t pool_mem[4 * 64] __attribute__((aligned(8)));

static void case_block_pool(void)
{
    check(keel_rtos_block_pool_create(&pool, 64, pool_mem, sizeof pool_mem) == KEEL_RTOS_OK,
          "pool");
    void *b[5];
    for (int i = 0; i < 4; i++) {
        check(keel_rtos_block_alloc(&pool, &b[i], KEEL_RTOS_NO_WAIT) == KEEL_RTOS_OK, "alloc");
    }
    check(keel_rtos_block_alloc(&pool, &b[4], 2) == KEEL_RTOS_ERR_TIMEOUT, "empty: timeout");
    check(keel_rtos_block_free(&pool, (uint8_t *)b[0] + 1) == KEEL_RTOS_ERR_INVALID, "bad free");
    for (int i = 0; i < 4; i++) {
        check(keel_rtos_block_free(&pool, b[i]) == KEEL_RTOS_OK, "free");
    }
}

static const struct {
    const char *name;
    void (*fn)(void);
} cases[] = {
    {"priorities", case_priorities},
    {"semaphore ping-pong", case_semaphore_ping_pong},
    {"mutex inheritance", case_mutex_inheritance},
    {"queue", case_queue},
    {"interrupt wakes thread", case_interrupt_wakes_thread},
    {"timer", case_timer},
    {"events", case_events},
    {"fpu context", case_fpu_context},
    {"block pool", case_block_pool},
};

static void control(void *arg)
{
    (void)arg;
    int failed_cases = 0;
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int before = failures;
        trace_len = 0;
        trace[0] = 0;
        check(keel_rtos_sem_create(&done, 0, 0) == KEEL_RTOS_OK, "sem_create");
        cases[i].fn();
        keel_rtos_thread_sleep(2); /* let finished workers complete */
        board_console_puts(failures == before ? "ok   " : "FAIL ");
        board_console_puts(cases[i].name);
        board_console_puts("\n");
        failed_cases += failures != before;
    }
    /* Timing fingerprint: identical on every run under -icount shift=0 (rtos_kernel_repeat). */
    board_console_puts("ticks ");
    board_console_put_u32((uint32_t)keel_rtos_ticks());
    board_console_puts(" switches ");
    board_console_put_u32(controller.switches_in);
    board_console_puts(" isr ");
    board_console_put_u32(isr_count);
    board_console_puts("\n");
    board_console_puts(failed_cases == 0 ? "PASS\n" : "FAIL\n");
    board_exit(failed_cases);
}

int main(void)
{
    keel_rtos_init();
    keel_rtos_thread_config cfg = {.name = "control", .entry = control, .stack = stacks[0],
                                   .stack_size = STACK_BYTES, .priority = 1};
    if (keel_rtos_thread_create(&controller, &cfg) != KEEL_RTOS_OK) {
        return 100;
    }
    keel_rtos_start();
    return 101; /* the controller exits; reaching here means everything blocked */
}

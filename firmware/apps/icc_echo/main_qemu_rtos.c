/* Intercore echo firmware on QEMU mps2-an386 with Keel's RTOS. The PSRAM at 0x21000000 is
 * backed by a host file the connected core maps, and holds either
 *  - a channel table (keel/icc.h), written by the QEMU loader keeld runs (tools/keel-qemu):
 *    the echo serves every channel in it, one thread each, all rung through UART1 (a doorbell
 *    group), says it is ready in the table, and a watchdog thread beats (board_heartbeat)
 *    while every serving thread is waiting or making progress; or
 *  - one bare channel region (the intercore tests, scripts/qemu-run.sh): one thread, no
 *    watchdog.
 * A byte written to UART1 rings the connected core; its RX interrupt rings us. */
#include <stdint.h>

#include "board.h"
#include "icc_echo.h"
#include "icc_rt_rtos.h"

#define PSRAM ((void *)0x21000000u)
#define PSRAM_BYTES (16u * 1024u * 1024u)
#define UART1_BASE 0x40005000u
#define UART1_RX_IRQ 2u
#define WATCHDOG_MS 50u
#define MAX_CHANNELS KEEL_ICC_RT_UART_GROUP_MAX
#define SMALL_BUF 4096u /* channels 1..: the loader's channels carry at most a few KiB */

typedef struct server {
    keel_icc_rt chan;
    icc_echo_watch watch;
    keel_rtos_thread thread;
    _Alignas(8) uint8_t stack[4096];
    uint8_t *buf;
    size_t cap;
} server;

static server servers[MAX_CHANNELS];
static unsigned nservers;
static uint8_t big_buf[KEEL_ICC_MAX_MSG]; /* channel 0: any size the region allows */
static uint8_t small_bufs[MAX_CHANNELS - 1][SMALL_BUF];
static keel_rtos_thread dog;
static _Alignas(8) uint8_t dog_stack[1024];

static void block_forever(void)
{
    (void)keel_rtos_thread_suspend(keel_rtos_thread_self());
}

/* The firmware ends when any channel ends (QUIT or an error): its exit code is that one's. */
static void serve(void *arg)
{
    server *s = arg;
    board_exit(icc_echo_serve(&s->chan, &s->watch, s->buf, s->cap));
}

static void watchdog(void *arg)
{
    (void)arg;
    uint32_t last[MAX_CHANNELS] = {0};
    uint32_t ticks = (uint32_t)((uint64_t)WATCHDOG_MS * keel_rtos_tick_hz() / 1000u);
    for (;;) {
        bool alive = true;
        for (unsigned i = 0; i < nservers; i++) {
            alive = icc_echo_alive(&servers[i].watch, &last[i]) && alive;
        }
        if (alive) {
            board_heartbeat();
        }
        (void)keel_rtos_thread_sleep(ticks ? ticks : 1u);
    }
}

static int fail(const char *what, keel_icc_err rc)
{
    board_console_puts("icc_echo: ");
    board_console_puts(what);
    board_console_puts(": ");
    board_console_puts(keel_icc_err_name(rc));
    board_console_puts("\n");
    return 3;
}

int main(void)
{
    keel_rtos_init();
    void *region[MAX_CHANNELS];
    size_t size[MAX_CHANNELS];
    while (nservers < MAX_CHANNELS &&
           keel_icc_table_channel(PSRAM, PSRAM_BYTES, nservers, &region[nservers],
                                  &size[nservers]) == KEEL_ICC_OK) {
        nservers++;
    }
    bool table = nservers > 0;
    if (!table) {
        region[0] = PSRAM;
        size[0] = PSRAM_BYTES;
        nservers = 1;
    }
    static keel_icc_rt_uart_group uart;
    keel_icc_rt_bell bells[MAX_CHANNELS];
    keel_icc_err rc = keel_icc_rt_uart_group_init(&uart, bells, nservers, UART1_BASE, UART1_RX_IRQ);
    if (rc != KEEL_ICC_OK) {
        return fail("doorbell", rc);
    }
    for (unsigned i = 0; i < nservers; i++) {
        server *s = &servers[i];
        rc = keel_icc_rt_attach(&s->chan, region[i], size[i], KEEL_ICC_SIDE_B, &bells[i]);
        if (rc != KEEL_ICC_OK) {
            return fail("attach", rc);
        }
        s->watch.block = block_forever;
        s->buf = i == 0 ? big_buf : small_bufs[i - 1];
        s->cap = i == 0 ? sizeof big_buf : SMALL_BUF;
        keel_rtos_thread_config cfg = {.name = "icc_echo",
                                       .entry = serve,
                                       .arg = s,
                                       .stack = s->stack,
                                       .stack_size = sizeof s->stack,
                                       .priority = 4};
        if (keel_rtos_thread_create(&s->thread, &cfg) != KEEL_RTOS_OK) {
            return 3;
        }
    }
    keel_rtos_thread_config dcfg = {.name = "watchdog",
                                    .entry = watchdog,
                                    .stack = dog_stack,
                                    .stack_size = sizeof dog_stack,
                                    .priority = 2};
    if (table && keel_rtos_thread_create(&dog, &dcfg) != KEEL_RTOS_OK) {
        return 3;
    }
    if (table) {
        atomic_store_explicit(&((keel_icc_table *)PSRAM)->ready, 1u, memory_order_release);
        board_console_puts("icc_echo: attached (channel table, ");
        board_console_put_u32(nservers);
        board_console_puts(nservers == 1 ? " channel)\n" : " channels)\n");
    } else {
        board_console_puts("icc_echo: attached\n");
    }
    keel_rtos_start();
    return 5;
}

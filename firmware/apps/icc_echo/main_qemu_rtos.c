/* Intercore echo firmware on QEMU mps2-an386 with Keel's RTOS. The PSRAM at 0x21000000 is
 * backed by a host file the connected core maps, and holds either
 *  - a channel table (keel/icc.h), written by the QEMU loader keeld runs (tools/keel-qemu):
 *    the echo serves channel 0, says it is ready in the table, and a watchdog thread beats
 *    (board_heartbeat) while the serving thread is waiting or making progress; or
 *  - one bare channel region (the intercore tests, scripts/qemu-run.sh): no watchdog.
 * UART1's RX interrupt gives a semaphore the serving thread waits on; a byte written to UART1
 * rings the connected core. */
#include <stdint.h>

#include "board.h"
#include "icc_echo.h"
#include "icc_rt_rtos.h"

#define PSRAM ((void *)0x21000000u)
#define PSRAM_BYTES (16u * 1024u * 1024u)
#define UART1_BASE 0x40005000u
#define UART1_RX_IRQ 2u
#define WATCHDOG_MS 50u

static keel_icc_rt chan;
static keel_rtos_thread thread, dog;
static _Alignas(8) uint8_t stack[4096], dog_stack[1024];
static icc_echo_watch watch;

static void block_forever(void)
{
    (void)keel_rtos_thread_suspend(keel_rtos_thread_self());
}

static void serve(void *arg)
{
    (void)arg;
    board_exit(icc_echo_serve(&chan, &watch));
}

static void watchdog(void *arg)
{
    (void)arg;
    uint32_t last = 0;
    uint32_t ticks = (uint32_t)((uint64_t)WATCHDOG_MS * keel_rtos_tick_hz() / 1000u);
    for (;;) {
        if (icc_echo_alive(&watch, &last)) {
            board_heartbeat();
        }
        (void)keel_rtos_thread_sleep(ticks ? ticks : 1u);
    }
}

int main(void)
{
    keel_rtos_init();
    void *region = PSRAM;
    size_t size = PSRAM_BYTES;
    bool table = keel_icc_table_channel(PSRAM, PSRAM_BYTES, 0, &region, &size) == KEEL_ICC_OK;
    static keel_icc_rt_uart_rtos uart;
    keel_icc_rt_bell bell;
    keel_icc_err rc = keel_icc_rt_uart_rtos_bell_init(&uart, &bell, UART1_BASE, UART1_RX_IRQ);
    if (rc == KEEL_ICC_OK) {
        rc = keel_icc_rt_attach(&chan, region, size, KEEL_ICC_SIDE_B, &bell);
    }
    if (rc != KEEL_ICC_OK) {
        board_console_puts("icc_echo: attach: ");
        board_console_puts(keel_icc_err_name(rc));
        board_console_puts("\n");
        return 3;
    }
    watch.block = block_forever;
    keel_rtos_thread_config cfg = {.name = "icc_echo",
                                   .entry = serve,
                                   .stack = stack,
                                   .stack_size = sizeof stack,
                                   .priority = 4};
    keel_rtos_thread_config dcfg = {.name = "watchdog",
                                    .entry = watchdog,
                                    .stack = dog_stack,
                                    .stack_size = sizeof dog_stack,
                                    .priority = 2};
    if (keel_rtos_thread_create(&thread, &cfg) != KEEL_RTOS_OK ||
        (table && keel_rtos_thread_create(&dog, &dcfg) != KEEL_RTOS_OK)) {
        return 3;
    }
    if (table) {
        atomic_store_explicit(&((keel_icc_table *)PSRAM)->ready, 1u, memory_order_release);
    }
    board_console_puts(table ? "icc_echo: attached (channel table)\n" : "icc_echo: attached\n");
    keel_rtos_start();
    return 5;
}

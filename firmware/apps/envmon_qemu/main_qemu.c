/* The environment monitor's RT firmware on QEMU mps2-an386, as keeld runs it through keel-qemu:
 * the channel of the loader's channel table (keel/icc.h) whose peer is the envmon app (or
 * channel 0 if none is: a test pairing), UART1 as the doorbell, the envmon threads of
 * firmware/apps/envmon unchanged. Other channels (the RS485 bridge's, when the gateway app is
 * installed) are attached but not served: QEMU's board has no RS485 line to bridge to. The sensor
 * is synthetic (QEMU models none): a room at 21.5 C that drifts by a hundredth of a degree per
 * sample, 45 % humidity, standard pressure; the HVAC actuator is a variable. The sensor thread's
 * board_heartbeat() (once per 2 s sample) is what keel-qemu forwards to keeld. */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "envmon_rt.h"
#include "icc_rt_rtos.h"

#define PSRAM ((void *)0x21000000u)
#define PSRAM_BYTES (16u * 1024u * 1024u)
#define UART1_BASE 0x40005000u
#define UART1_RX_IRQ 2u

/* apps/envmon/app_manifest.json's id, 4e5d0a1c-7b3f-4c2e-9a61-0e4d1f2a3b5c, as frame bytes */
static const keel_icc_id envmon_app = {{0x4e, 0x5d, 0x0a, 0x1c, 0x7b, 0x3f, 0x4c, 0x2e, 0x9a, 0x61,
                                        0x0e, 0x4d, 0x1f, 0x2a, 0x3b, 0x5c}};

static envmon_rt fw;
static keel_icc_rt chans[KEEL_ICC_RT_UART_GROUP_MAX];
static keel_icc_rt *chan;
static keel_rtos_thread starter;
static _Alignas(8) uint8_t starter_stack[1024];
static uint32_t samples;
static uint8_t hvac_mode;

static bool sensor_read(void *ctx, envmon_env *out)
{
    (void)ctx;
    samples++;
    out->temp_mc = 21500 + (int32_t)(samples % 50u) * 10;
    out->humidity_cp = 4500;
    out->pressure_pa = 101325;
    return true;
}

static bool hvac_set(void *ctx, uint8_t mode)
{
    (void)ctx;
    if (mode > ENVMON_HVAC_COOLING) {
        return false;
    }
    hvac_mode = mode;
    return true;
}

static uint64_t now_us(void *ctx)
{
    (void)ctx;
    return keel_rtos_ticks() * 1000000u / keel_rtos_tick_hz();
}

static void start(void *arg)
{
    (void)arg;
    envmon_rt_hw hw = {.sensor_read = sensor_read, .hvac_set = hvac_set, .now_us = now_us};
    if (envmon_rt_start(&fw, &hw, chan) != KEEL_RTOS_OK) {
        board_console_puts("envmon: start failed\n");
        board_exit(3);
    }
    atomic_store_explicit(&((keel_icc_table *)PSRAM)->ready, 1u, memory_order_release);
    board_console_puts("envmon: RT firmware running on channel ");
    board_console_put_u32((uint32_t)(chan - chans));
    board_console_puts("\n");
}

int main(void)
{
    keel_rtos_init();
    void *region[KEEL_ICC_RT_UART_GROUP_MAX];
    size_t size[KEEL_ICC_RT_UART_GROUP_MAX];
    unsigned n = 0;
    while (n < KEEL_ICC_RT_UART_GROUP_MAX &&
           keel_icc_table_channel(PSRAM, PSRAM_BYTES, n, &region[n], &size[n]) == KEEL_ICC_OK) {
        n++;
    }
    static keel_icc_rt_uart_group uart;
    keel_icc_rt_bell bells[KEEL_ICC_RT_UART_GROUP_MAX];
    keel_icc_err rc = n == 0
                          ? KEEL_ICC_ERR_REGION
                          : keel_icc_rt_uart_group_init(&uart, bells, n, UART1_BASE, UART1_RX_IRQ);
    for (unsigned i = 0; i < n && rc == KEEL_ICC_OK; i++) {
        rc = keel_icc_rt_attach(&chans[i], region[i], size[i], KEEL_ICC_SIDE_B, &bells[i]);
        if (rc == KEEL_ICC_OK && memcmp(&chans[i].ring.peer, &envmon_app, sizeof envmon_app) == 0) {
            chan = &chans[i];
        }
    }
    if (rc != KEEL_ICC_OK) {
        board_console_puts("envmon: no channel from the loader: ");
        board_console_puts(keel_icc_err_name(rc));
        board_console_puts("\n");
        return 3;
    }
    if (!chan) {
        chan = &chans[0];
    }
    keel_rtos_thread_config cfg = {.name = "env-start",
                                   .entry = start,
                                   .stack = starter_stack,
                                   .stack_size = sizeof starter_stack,
                                   .priority = 1};
    if (keel_rtos_thread_create(&starter, &cfg) != KEEL_RTOS_OK) {
        return 3;
    }
    keel_rtos_start();
    return 5;
}

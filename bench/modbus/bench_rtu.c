/* RTU bus efficiency in the simulator: Keel's line driver on the RTOS (with the real-time
 * core's interrupt-entry and kernel costs charged) polling a sensor, against the physical
 * limit of the line: request and reply characters at the baud rate, plus the slave's latency,
 * plus t3.5 of silence before the next request. */
#include <stdio.h>

#include "bench.h"
#include "rs485_world.h"

static world W;
static int polls_done, polls_ok;

static void poller(void *arg)
{
    int n = *(int *)arg;
    keel_modbus_master m;
    if (keel_modbus_master_init(&m, KEEL_MODBUS_RTU, &W.line) != KEEL_MODBUS_OK) {
        W.done = true;
        return;
    }
    for (int i = 0; i < n; i++) {
        poll_result r = world_poll(&W, &m, 1, 4, 0, 3, 200000);
        polls_ok += r.err == KEEL_MODBUS_OK;
        polls_done++;
    }
    W.done = true;
}

void bench_rtu(void)
{
    printf("## MODBUS RTU bus efficiency in the simulator (FC 4, 3 registers, 8E1)\n\n");
    printf("| baud | slave latency | polls | achieved tx/s | physical limit tx/s | efficiency |\n");
    printf("|---:|---:|---:|---:|---:|---:|\n");
    const uint32_t bauds[] = {9600, 19200, 115200};
    const uint64_t lats[] = {0, 1000000};
    for (int b = 0; b < 3; b++) {
        for (int l = 0; l < 2; l++) {
            if (world_create(&W, bauds[b]) != 0) {
                printf("| %u | - | simulator failed |\n", bauds[b]);
                continue;
            }
            uint64_t latency = lats[l] ? lats[l] : W.uart.bit_ns; /* 0 row: one bit-time */
            if (!world_add_sensor(&W, 1, latency, NULL)) {
                world_destroy(&W);
                continue;
            }
            int n = bauds[b] >= 115200 ? 5000 : 1000;
            polls_done = polls_ok = 0;
            if (world_start(&W, poller, &n) != 0) {
                world_destroy(&W);
                continue;
            }
            keel_sim_run_until_cond(world_is_done, &W, KEEL_SIM_FOREVER);
            double secs = keel_sim_now_ns() / 1e9;
            /* Request 8 characters, reply 11 (unit, fc, count, 3 registers, CRC). */
            double per =
                (8 + 11) * W.uart.char_ns / 1e9 + latency / 1e9 + W.drv.timing.t35_us / 1e6;
            double achieved = polls_ok / secs, limit = 1.0 / per;
            char lat[32];
            if (lats[l]) {
                snprintf(lat, sizeof lat, "%.1f ms", latency / 1e6);
            } else {
                snprintf(lat, sizeof lat, "1 bit (%.1f us)", latency / 1e3);
            }
            printf("| %u | %s | %d | %.1f | %.1f | %.2f%% |\n", bauds[b], lat, polls_ok, achieved,
                   limit, 100.0 * achieved / limit);
            world_destroy(&W);
        }
    }
    printf("\n");
}

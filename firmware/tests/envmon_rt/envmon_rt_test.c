/* The envmon firmware's sensor thread on every board (QEMU's Cortex-M4 as fw.envmon_rt, the
 * sim board as sim.envmon_rt): with a scripted sensor, it samples at start and then every 2 s
 * of RTOS time, keeps the latest reading, counts a failed read without losing the previous
 * values, and switches the HVAC off at start. No intercore channel here (the service thread is
 * covered with a real channel in unit.sim_world and integration.demo). Exit code: failures. */
#include <stdint.h>

#include "board.h"
#include "envmon_rt.h"
#include "keel/rtos.h"

#if KEEL_RTOS_MIN_STACK > 2048
#define STACK_BYTES (2u * KEEL_RTOS_MIN_STACK)
#else
#define STACK_BYTES 2048u
#endif

static envmon_rt fw;
static uint8_t stack[STACK_BYTES] __attribute__((aligned(8)));
static keel_rtos_thread controller;
static uint32_t reads, hvac_calls;
static uint8_t hvac_mode = 0xff;
static int failures;

static bool sensor_read(void *ctx, envmon_env *out)
{
    (void)ctx;
    reads++;
    if (reads == 2) {
        return false; /* the second read fails: the first values must stay */
    }
    out->temp_mc = 20000 + (int32_t)reads * 100;
    out->humidity_cp = 4500;
    out->pressure_pa = 101325;
    return true;
}

static bool hvac_set(void *ctx, uint8_t mode)
{
    (void)ctx;
    hvac_calls++;
    hvac_mode = mode;
    return mode <= 2;
}

static uint64_t now_us(void *ctx)
{
    (void)ctx;
    return keel_rtos_ticks() * 1000000u / keel_rtos_tick_hz();
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

static void control(void *arg)
{
    (void)arg;
    envmon_rt_hw hw = {.sensor_read = sensor_read, .hvac_set = hvac_set, .now_us = now_us};
    check(envmon_rt_start(&fw, &hw, NULL) == KEEL_RTOS_OK, "envmon_rt_start");
    check(hvac_calls == 1 && hvac_mode == ENVMON_HVAC_OFF, "HVAC switched off at start");
    uint32_t hz = keel_rtos_tick_hz();
    /* at 1 s: one sample (taken at start) */
    (void)keel_rtos_thread_sleep(hz);
    envmon_env e;
    envmon_rt_latest(&fw, &e);
    check(e.seq == 1 && e.sensor_ok == 1 && e.temp_mc == 20100, "first sample at start");
    /* at 3 s: the 2 s sample failed; values kept, failure counted */
    (void)keel_rtos_thread_sleep(2 * hz);
    envmon_rt_latest(&fw, &e);
    check(e.seq == 2 && e.sensor_ok == 0 && e.temp_mc == 20100, "failed read keeps values");
    check(fw.read_failures == 1, "failed read counted");
    /* at 5 s: the 4 s sample, stamped at 4 s */
    (void)keel_rtos_thread_sleep(2 * hz);
    envmon_rt_latest(&fw, &e);
    check(e.seq == 3 && e.sensor_ok == 1 && e.temp_mc == 20300, "sample every 2 s");
    check(e.time_us >= 4000000u && e.time_us < 4100000u, "sample time is 4 s");
    check(reads == 3, "three reads in five seconds");
    board_console_puts(failures ? "FAIL\n" : "PASS\n");
    board_exit(failures);
}

int main(void)
{
    keel_rtos_init();
    keel_rtos_thread_config cfg = {.name = "control",
                                   .entry = control,
                                   .stack = stack,
                                   .stack_size = sizeof stack,
                                   .priority = 1};
    if (keel_rtos_thread_create(&controller, &cfg) != KEEL_RTOS_OK) {
        return 100;
    }
    keel_rtos_start();
    return 101;
}

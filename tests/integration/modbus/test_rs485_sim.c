/* The RS485 line driver on Keel's RTOS in the simulator, with the real-time core's costs
 * charged (500 ns interrupt entry, 1 us per kernel service), against MODBUS slave devices on a
 * simulated bus:
 *   - driver-enable falls within one bit-time after the last stop bit at 9600, 19200, 115200;
 *   - 100,000 polls of slaves answering 1 bit-time to 50 ms after the request: no collision,
 *     no cut character, every reply right;
 *   - a reply starting one bit-time after the request is caught;
 *   - a slave answering after the timeout is reported as a timeout and its late reply is not
 *     taken for the next one;
 *   - the VCD waveform shows the same timing a logic analyser would;
 *   - a device's state survives a power cycle (its state file). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "fixture.h"
#include "rs485_world.h"

static world W;

typedef struct job {
    int polls;
    uint8_t units[WORLD_MAX_DEVS];
    int nunits;
    uint32_t timeout_us;
    int ok, timeouts, bad;
    uint64_t worst_de_late_ns; /* DE release after the last stop bit, worst case */
    uint64_t first_gap_ns;     /* reply start - request end, last poll */
    bool de_early;             /* DE released before the stop bit ended */
    keel_modbus_err last_err;
    bool line_ok;
} job;

static job J;

static void poller(void *arg)
{
    job *j = arg;
    keel_modbus_master m;
    assert_int_equal(keel_modbus_master_init(&m, KEEL_MODBUS_RTU, &W.line), KEEL_MODBUS_OK);
    for (int i = 0; i < j->polls; i++) {
        uint8_t unit = j->units[i % j->nunits];
        poll_result r = world_poll(&W, &m, unit, 4, 0, 3, j->timeout_us);
        j->last_err = r.err;
        if (r.err == KEEL_MODBUS_OK) {
            sim_sensor *s = &W.sensors[unit - 1];
            if (r.regs[0] == s->input[0] && r.regs[2] == s->input[2]) {
                j->ok++;
            } else {
                j->bad++;
            }
        } else if (r.err == KEEL_MODBUS_ERR_TIMEOUT) {
            j->timeouts++;
        } else {
            j->bad++;
        }
        /* DE timing from the bus (the hardware's view), not from the driver's own notes. */
        const sim_rs485_node *core = &W.bus.nodes[W.node];
        if (core->de_off_ns < core->last_stop_end_ns) {
            j->de_early = true;
        } else if (core->de_off_ns - core->last_stop_end_ns > j->worst_de_late_ns) {
            j->worst_de_late_ns = core->de_off_ns - core->last_stop_end_ns;
        }
        if (r.t.first_rx_ns) {
            j->first_gap_ns = r.t.first_rx_ns - core->last_stop_end_ns;
        }
    }
    W.done = true;
}

static void run_job(void)
{
    assert_int_equal(world_start(&W, poller, &J), 0);
    keel_sim_stop st = keel_sim_run_until_cond(world_is_done, &W, KEEL_SIM_FOREVER);
    assert_int_equal(st, KEEL_SIM_STOP_CONDITION);
}

static void de_release_at(uint32_t baud)
{
    assert_int_equal(world_create(&W, baud), 0);
    assert_non_null(world_add_sensor(&W, 1, 1000000, NULL));
    J = (job){.polls = 20, .units = {1}, .nunits = 1, .timeout_us = 100000};
    run_job();
    if (J.ok != 20) {
        print_message("last %s, timeouts %d bad %d, driver tx %u to %u stray %u; bus chars %llu "
                      "garbled %llu cut %llu coll %llu; sensor replies %llu ignored %llu rx %u\n",
                      keel_modbus_err_name(J.last_err), J.timeouts, J.bad, W.drv.stats.transactions,
                      W.drv.stats.timeouts, W.drv.stats.stray_bytes,
                      (unsigned long long)W.bus.stats.chars,
                      (unsigned long long)W.bus.stats.garbled, (unsigned long long)W.bus.stats.cut,
                      (unsigned long long)W.bus.stats.collisions,
                      (unsigned long long)W.sensors[0].dev.replies,
                      (unsigned long long)W.sensors[0].dev.ignored, W.sensors[0].dev.uart.rx_chars);
    }
    assert_int_equal(J.ok, 20);
    assert_false(J.de_early);
    uint64_t bit = W.uart.bit_ns;
    print_message("baud %u: DE released %llu ns after the last stop bit (bit-time %llu ns)\n", baud,
                  (unsigned long long)J.worst_de_late_ns, (unsigned long long)bit);
    assert_true(J.worst_de_late_ns <= bit);
    assert_int_equal(W.bus.stats.collisions, 0);
    assert_int_equal(W.bus.stats.cut, 0);
    world_destroy(&W);
}

static void test_de_released_within_one_bit_at_9600(void **state)
{
    (void)state;
    de_release_at(9600);
}

static void test_de_released_within_one_bit_at_19200(void **state)
{
    (void)state;
    de_release_at(19200);
}

static void test_de_released_within_one_bit_at_115200(void **state)
{
    (void)state;
    de_release_at(115200);
}

static void test_reply_one_bit_after_request_is_caught(void **state)
{
    (void)state;
    const uint32_t bauds[] = {9600, 115200};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(world_create(&W, bauds[i]), 0);
        uint64_t bit = (1000000000ull + bauds[i] / 2) / bauds[i];
        assert_non_null(world_add_sensor(&W, 1, bit, NULL));
        J = (job){.polls = 50, .units = {1}, .nunits = 1, .timeout_us = 100000};
        run_job();
        assert_int_equal(J.ok, 50);
        /* The first reply byte is seen at the end of its character (plus the core's interrupt
         * entry): the reply started one bit-time after the request's last stop bit. */
        assert_true(J.first_gap_ns >= bit + W.uart.char_ns);
        assert_true(J.first_gap_ns <= bit + W.uart.char_ns + 2000);
        assert_int_equal(W.bus.stats.collisions, 0);
        assert_int_equal(W.bus.stats.garbled, 0);
        world_destroy(&W);
    }
}

static void test_100000_polls_without_collision(void **state)
{
    (void)state;
    assert_int_equal(world_create(&W, 115200), 0);
    uint64_t bit = W.uart.bit_ns;
    const uint64_t lat[] = {bit, 10 * bit, 200000, 1000000, 5000000, 50000000};
    for (int i = 0; i < 6; i++) {
        assert_non_null(world_add_sensor(&W, (uint8_t)(i + 1), lat[i], NULL));
    }
    const char *env = getenv("KEEL_MODBUS_POLLS");
    J = (job){.polls = env ? atoi(env) : 100000,
              .units = {1, 2, 3, 4, 5, 6},
              .nunits = 6,
              .timeout_us = 100000};
    run_job();
    print_message("%d polls in %.1f s of virtual time: %d ok, %d timeouts, %d bad; worst DE "
                  "release %llu ns after the stop bit\n",
                  J.polls, keel_sim_now_ns() / 1e9, J.ok, J.timeouts, J.bad,
                  (unsigned long long)J.worst_de_late_ns);
    assert_int_equal(J.ok, J.polls);
    assert_int_equal(W.bus.stats.collisions, 0);
    assert_int_equal(W.bus.stats.garbled, 0);
    assert_int_equal(W.bus.stats.cut, 0);
    assert_true(J.worst_de_late_ns <= bit);
    uint64_t replies = 0;
    for (int i = 0; i < 6; i++) {
        replies += W.sensors[i].dev.replies;
    }
    assert_int_equal(replies, (uint64_t)J.polls);
    world_destroy(&W);
}

/* The late slave answers 30 ms after the request with a 10 ms timeout; the poller then waits
 * 40 ms before asking a prompt slave. */
static void late_poller(void *arg)
{
    (void)arg;
    keel_modbus_master m;
    assert_int_equal(keel_modbus_master_init(&m, KEEL_MODBUS_RTU, &W.line), KEEL_MODBUS_OK);
    poll_result r = world_poll(&W, &m, 1, 4, 0, 3, 10000);
    J.last_err = r.err;
    J.timeouts = r.err == KEEL_MODBUS_ERR_TIMEOUT;
    assert_int_equal(keel_rtos_thread_sleep(40), KEEL_RTOS_OK);
    r = world_poll(&W, &m, 2, 4, 0, 3, 10000);
    J.ok = r.err == KEEL_MODBUS_OK && r.regs[0] == W.sensors[1].input[0] &&
           r.regs[0] != W.sensors[0].input[0];
    W.done = true;
}

static void test_late_slave_is_a_timeout_not_the_next_reply(void **state)
{
    (void)state;
    assert_int_equal(world_create(&W, 19200), 0);
    sim_sensor *late = world_add_sensor(&W, 1, 30000000, NULL);
    sim_sensor *prompt = world_add_sensor(&W, 2, 1000000, NULL);
    sim_sensor_set(late, 30.0, 50.0, 1000.0);
    sim_sensor_set(prompt, 18.0, 40.0, 990.0);
    J = (job){0};
    assert_int_equal(world_start(&W, late_poller, NULL), 0);
    assert_int_equal(keel_sim_run_until_cond(world_is_done, &W, KEEL_SIM_FOREVER),
                     KEEL_SIM_STOP_CONDITION);
    assert_int_equal(J.timeouts, 1);
    assert_true(J.ok);
    assert_int_equal(late->dev.replies, 1);   /* it did answer, late */
    assert_true(W.drv.stats.stray_bytes > 0); /* and the driver dropped it */
    assert_int_equal(W.bus.stats.collisions, 0);
    world_destroy(&W);
}

/* Reads the VCD back: the core's DE falling edge and the end of its last stop bit. */
static void test_vcd_trace_shows_de_release_after_stop_bit(void **state)
{
    (void)state;
    assert_int_equal(world_create(&W, 19200), 0);
    assert_non_null(world_add_sensor(&W, 1, 500000, NULL));
    sim_rs485_vcd_start(&W.bus);
    J = (job){.polls = 1, .units = {1}, .nunits = 1, .timeout_us = 100000};
    run_job();
    assert_int_equal(J.ok, 1);
    char path[512];
    snprintf(path, sizeof path, "%s/bus.vcd", kf_tmpdir("modbus-vcd"));
    assert_int_equal(sim_rs485_vcd_write(&W.bus, path), 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256];
    bool header = false;
    uint64_t t = 0, last_tx_stop = 0, de_fall = 0;
    /* core is node 0: tx = kC, de = kD (see sim_rs485.c) */
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "$timescale 1ns")) {
            header = true;
        } else if (line[0] == '#') {
            t = strtoull(line + 1, NULL, 10);
        } else if (strcmp(line, "1kC\n") == 0) {
            last_tx_stop = t; /* the stop bit starts: high after the data/parity bits */
        } else if (strcmp(line, "0kD\n") == 0 && t > 0) {
            de_fall = t;
        }
    }
    fclose(f);
    assert_true(header);
    uint64_t stop_end = last_tx_stop + W.uart.bit_ns * W.line.stop_bits;
    assert_true(de_fall >= stop_end);
    assert_true(de_fall - stop_end <= W.uart.bit_ns);
    world_destroy(&W);
}

static void writer(void *arg)
{
    (void)arg;
    keel_modbus_master m;
    assert_int_equal(keel_modbus_master_init(&m, KEEL_MODBUS_RTU, &W.line), KEEL_MODBUS_OK);
    uint8_t pdu[8], adu[16], rsp[16];
    size_t n, al, rl;
    assert_int_equal(keel_modbus_req_write_register(1, 0xFFCE, pdu, sizeof pdu, &n),
                     KEEL_MODBUS_OK); /* calibration -0.50 degC */
    assert_int_equal(
        keel_modbus_master_start(&m, keel_sim_now_us(), 1, pdu, n, adu, sizeof adu, &al),
        KEEL_MODBUS_OK);
    keel_rs485_times t;
    J.line_ok =
        keel_rs485_transact(&W.drv, adu, al, rsp, sizeof rsp, &rl, 100000, &t) == KEEL_RS485_OK;
    W.done = true;
}

static void test_device_state_survives_power_cycle(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/sensor.state", kf_tmpdir("modbus-state"));
    assert_int_equal(world_create(&W, 19200), 0);
    assert_non_null(world_add_sensor(&W, 1, 100000, path));
    J = (job){0};
    assert_int_equal(world_start(&W, writer, NULL), 0);
    assert_int_equal(keel_sim_run_until_cond(world_is_done, &W, KEEL_SIM_FOREVER),
                     KEEL_SIM_STOP_CONDITION);
    assert_true(J.line_ok);
    world_destroy(&W);
    /* Power cycle: a new world, the same state file. */
    assert_int_equal(world_create(&W, 19200), 0);
    sim_sensor *s = world_add_sensor(&W, 1, 100000, path);
    assert_non_null(s);
    assert_int_equal(s->holding[1], 0xFFCE);
    sim_sensor_set(s, 21.0, 40.0, 1000.0);
    assert_int_equal((int16_t)s->input[0], 2100 - 50); /* the calibration applies */
    world_destroy(&W);
}

static int teardown(void **state)
{
    (void)state;
    if (keel_sim_exists()) {
        world_destroy(&W);
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_de_released_within_one_bit_at_9600, teardown),
        cmocka_unit_test_teardown(test_de_released_within_one_bit_at_19200, teardown),
        cmocka_unit_test_teardown(test_de_released_within_one_bit_at_115200, teardown),
        cmocka_unit_test_teardown(test_reply_one_bit_after_request_is_caught, teardown),
        cmocka_unit_test_teardown(test_late_slave_is_a_timeout_not_the_next_reply, teardown),
        cmocka_unit_test_teardown(test_vcd_trace_shows_de_release_after_stop_bit, teardown),
        cmocka_unit_test_teardown(test_device_state_survives_power_cycle, teardown),
        cmocka_unit_test_teardown(test_100000_polls_without_collision, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

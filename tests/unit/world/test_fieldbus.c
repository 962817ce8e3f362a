/* The world's MODBUS sensors: register values from the world's state (scaling, sign, the
 * supply air following the HVAC mode, exceptions for registers a sensor does not have), and
 * the bus itself over a real TCP stream: Keel's MODBUS master (RTU over TCP) reads both units
 * while the test runs the bus's event handling, as keel-sim's loop does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "fieldbus.h"
#include "keel/modbus.h"

static void test_read_input_scales_room_and_follows_hvac(void **state)
{
    (void)state;
    world_status s = {.room_temp_c = -3.456,
                      .room_humidity_pct = 45.678,
                      .room_pressure_hpa = 1013.25,
                      .hvac = ENVMON_HVAC_OFF};
    uint16_t r[3] = {0};
    assert_int_equal(fieldbus_read_input(&s, 1, 0, 3, r), 0);
    assert_int_equal((int16_t)r[0], -346);
    assert_int_equal(r[1], 4568);
    assert_int_equal(r[2], 10133); /* 0.1 hPa, rounded */
    assert_int_equal(fieldbus_read_input(&s, 2, 0, 1, r), 0);
    assert_int_equal((int16_t)r[0], -346); /* off: the room's air */
    s.hvac = ENVMON_HVAC_HEATING;
    assert_int_equal(fieldbus_read_input(&s, 2, 0, 1, r), 0);
    assert_int_equal(r[0], 3500);
    s.hvac = ENVMON_HVAC_COOLING;
    assert_int_equal(fieldbus_read_input(&s, 2, 0, 1, r), 0);
    assert_int_equal(r[0], 1300);
    assert_int_equal(fieldbus_read_input(&s, 1, 2, 2, r), KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
    assert_int_equal(fieldbus_read_input(&s, 2, 1, 1, r), KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
}

/* ---- over the wire ---- */

typedef struct master_job {
    uint16_t port;
    keel_modbus_err e_room, e_supply, e_missing, e_write, e_bad_value, e_period;
    uint16_t room[3], supply, period;
    uint8_t exc_missing, exc_bad_value;
    volatile int done;
} master_job;

static void *master(void *arg)
{
    master_job *j = arg;
    char port[8];
    snprintf(port, sizeof port, "%u", j->port);
    keel_modbus_client *c = NULL;
    if (keel_modbus_client_tcp("127.0.0.1", port, true, &c) == KEEL_MODBUS_OK) {
        keel_modbus_client_set_timeout(c, 2000000);
        j->e_room = keel_modbus_read_registers(c, 1, 4, 0, 3, j->room);
        j->e_supply = keel_modbus_read_registers(c, 2, 4, 0, 1, &j->supply);
        uint16_t x;
        j->e_missing = keel_modbus_read_registers(c, 1, 4, 9, 1, &x);
        j->exc_missing = keel_modbus_client_last_exception(c);
        j->e_write = keel_modbus_write_register(c, 2, 0, 10);
        j->e_bad_value = keel_modbus_write_register(c, 2, 0, 0);
        j->exc_bad_value = keel_modbus_client_last_exception(c);
        j->e_period = keel_modbus_read_registers(c, 2, 3, 0, 1, &j->period);
        keel_modbus_client_close(c);
    }
    j->done = 1;
    return NULL;
}

static void test_bus_answers_a_real_master_over_rtu_over_tcp(void **state)
{
    (void)state;
    world_config wc = world_config_default();
    wc.start_temp_c = 19.25;
    assert_int_equal(world_create(&wc, NULL), WORLD_OK);
    world_run_until_us(1000000);
    uint16_t port = 0;
    fieldbus *b = fieldbus_open(0, &port);
    assert_non_null(b);
    assert_true(port > 0);
    master_job j = {.port = port};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, master, &j), 0);
    /* keel-sim's loop, with a deadline instead of a signal */
    for (int i = 0; i < 1000 && !j.done; i++) {
        int fds[FIELDBUS_MAX_CONN + 1];
        int n = fieldbus_fds(b, fds, FIELDBUS_MAX_CONN + 1);
        struct pollfd p[FIELDBUS_MAX_CONN + 1];
        for (int k = 0; k < n; k++) {
            p[k] = (struct pollfd){.fd = fds[k], .events = POLLIN};
        }
        if (poll(p, (nfds_t)n, 10) > 0) {
            for (int k = 0; k < n; k++) {
                if (p[k].revents) {
                    fieldbus_handle(b, p[k].fd);
                }
            }
        }
    }
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(j.done);
    assert_int_equal(j.e_room, KEEL_MODBUS_OK);
    assert_true((int16_t)j.room[0] > 1850 && (int16_t)j.room[0] <= 1925);
    assert_true(j.room[2] > 10000 && j.room[2] < 10300);
    assert_int_equal(j.e_supply, KEEL_MODBUS_OK);
    assert_int_equal(j.e_missing, KEEL_MODBUS_ERR_EXCEPTION);
    assert_int_equal(j.exc_missing, KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
    assert_int_equal(j.e_write, KEEL_MODBUS_OK);
    assert_int_equal(j.e_bad_value, KEEL_MODBUS_ERR_EXCEPTION);
    assert_int_equal(j.exc_bad_value, KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    assert_int_equal(j.e_period, KEEL_MODBUS_OK);
    assert_int_equal(j.period, 10);
    uint32_t answered, refused;
    fieldbus_counts(b, &answered, &refused);
    assert_int_equal(answered, 6);
    assert_int_equal(refused, 0);
    assert_string_equal(fieldbus_sensor_version(b), "");
    fieldbus_close(b);
    world_destroy();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_input_scales_room_and_follows_hvac),
        cmocka_unit_test(test_bus_answers_a_real_master_over_rtu_over_tcp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

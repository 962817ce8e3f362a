/* The thermostat: hysteresis, refusal of absurd setpoints, and — against the room model —
 * that the closed loop settles inside setpoint +- band from either side. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "hvac_control.h"
#include "room.h"

static void test_update_without_setpoint_stays_off(void **state)
{
    (void)state;
    hvac_control c;
    hvac_control_init(&c, 0.25);
    assert_int_equal(hvac_control_update(&c, 3.0), HVAC_OFF);
    assert_int_equal(hvac_control_update(&c, 40.0), HVAC_OFF);
}

static void test_update_hysteresis_heats_until_setpoint(void **state)
{
    (void)state;
    hvac_control c;
    hvac_control_init(&c, 0.5);
    assert_true(hvac_control_set_target(&c, 21.0));
    assert_int_equal(hvac_control_update(&c, 20.6), HVAC_OFF);     /* inside the band */
    assert_int_equal(hvac_control_update(&c, 20.4), HVAC_HEATING); /* below the band */
    assert_int_equal(hvac_control_update(&c, 20.9), HVAC_HEATING); /* keeps heating */
    assert_int_equal(hvac_control_update(&c, 21.0), HVAC_OFF);     /* reached */
    assert_int_equal(hvac_control_update(&c, 21.4), HVAC_OFF);
    assert_int_equal(hvac_control_update(&c, 21.6), HVAC_COOLING);
    assert_int_equal(hvac_control_update(&c, 21.1), HVAC_COOLING);
    assert_int_equal(hvac_control_update(&c, 20.95), HVAC_OFF);
    assert_string_equal(hvac_mode_name(HVAC_COOLING), "cooling");
}

static void test_set_target_out_of_range_refused(void **state)
{
    (void)state;
    hvac_control c;
    hvac_control_init(&c, 0.25);
    assert_false(hvac_control_set_target(&c, 80.0));
    assert_false(hvac_control_set_target(&c, NAN));
    assert_false(c.has_setpoint);
    assert_true(hvac_control_set_target(&c, 22.5));
    assert_false(hvac_control_set_target(&c, -3.0));
    assert_true(c.setpoint_c == 22.5); /* a refused value leaves the old one */
}

static void test_update_broken_sensor_turns_off(void **state)
{
    (void)state;
    hvac_control c;
    hvac_control_init(&c, 0.25);
    assert_true(hvac_control_set_target(&c, 21.0));
    assert_int_equal(hvac_control_update(&c, 15.0), HVAC_HEATING);
    assert_int_equal(hvac_control_update(&c, NAN), HVAC_OFF);
}

/* Runs the loop at a 2 s sensor period (as the RT firmware's sensor thread) for `minutes`,
 * returns the largest distance from the setpoint over the last half. */
static double closed_loop(double start_c, double target_c, int minutes)
{
    room_params p = room_default_params();
    room_state r;
    room_init(&r, &p, start_c);
    hvac_control c;
    hvac_control_init(&c, 0.25);
    assert_true(hvac_control_set_target(&c, target_c));
    hvac_mode mode = HVAC_OFF;
    double worst = 0.0;
    int steps = minutes * 30;
    for (int i = 1; i <= steps; i++) {
        room_advance(&r, &p, (room_hvac)mode, (uint64_t)i * 2000000u);
        mode = hvac_control_update(&c, r.temp_c);
        if (i > steps / 2) {
            worst = fmax(worst, fabs(r.temp_c - target_c));
        }
    }
    return worst;
}

static void test_closed_loop_settles_within_band(void **state)
{
    (void)state;
    assert_true(closed_loop(18.0, 21.5, 120) <= 0.5);
    assert_true(closed_loop(27.0, 21.5, 120) <= 0.5);
    /* And the room without HVAC does drift to the outside: the loop is doing the work. */
    room_params p = room_default_params();
    room_state r;
    room_init(&r, &p, 21.5);
    room_advance(&r, &p, ROOM_HVAC_OFF, 3600ull * 1000000u);
    assert_true(r.temp_c < 21.5 - 5.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_update_without_setpoint_stays_off),
        cmocka_unit_test(test_update_hysteresis_heats_until_setpoint),
        cmocka_unit_test(test_set_target_out_of_range_refused),
        cmocka_unit_test(test_update_broken_sensor_turns_off),
        cmocka_unit_test(test_closed_loop_settles_within_band),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

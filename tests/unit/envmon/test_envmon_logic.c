/* The environment monitor's decisions: the targetTemperature acknowledgement (accepted,
 * refused, repeated versions, garbage), the mode from samples (including a failed sensor),
 * telemetry once per sample, and hvacMode reported only when it changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "envmon_logic.h"

static envmon_env at(uint32_t seq, int32_t temp_mc)
{
    return (envmon_env){
        .seq = seq, .temp_mc = temp_mc, .humidity_cp = 5012, .pressure_pa = 101325, .sensor_ok = 1};
}

static void test_desired_target_is_applied_and_acknowledged(void **state)
{
    (void)state;
    envmon_logic l;
    envmon_logic_init(&l, 0.25);
    char ack[256];
    const char *doc = "{\"targetTemperature\":21.5,\"$version\":4}";
    assert_int_equal(envmon_logic_desired(&l, doc, strlen(doc), 4, ack, sizeof ack), 1);
    assert_string_equal(
        ack, "{\"targetTemperature\":{\"value\":21.5,\"ac\":200,\"av\":4,\"ad\":\"applied\"}}");
    assert_true(l.ctl.has_setpoint);
    assert_true(l.ctl.setpoint_c == 21.5);
    /* the same version again (a reconnect re-delivers it): nothing new to acknowledge */
    assert_int_equal(envmon_logic_desired(&l, doc, strlen(doc), 4, ack, sizeof ack), 0);
}

static void test_desired_out_of_range_is_refused_with_400(void **state)
{
    (void)state;
    envmon_logic l;
    envmon_logic_init(&l, 0.25);
    char ack[256];
    const char *ok = "{\"targetTemperature\":20}";
    assert_int_equal(envmon_logic_desired(&l, ok, strlen(ok), 1, ack, sizeof ack), 1);
    const char *hot = "{\"targetTemperature\":80}";
    assert_int_equal(envmon_logic_desired(&l, hot, strlen(hot), 2, ack, sizeof ack), 1);
    assert_non_null(strstr(ack, "\"ac\":400"));
    assert_non_null(strstr(ack, "\"av\":2"));
    assert_true(l.ctl.setpoint_c == 20.0); /* the old target stays */
    const char *text = "{\"targetTemperature\":\"warm\"}";
    assert_int_equal(envmon_logic_desired(&l, text, strlen(text), 3, ack, sizeof ack), 1);
    assert_non_null(strstr(ack, "\"ac\":400"));
}

static void test_desired_without_target_or_not_json(void **state)
{
    (void)state;
    envmon_logic l;
    envmon_logic_init(&l, 0.25);
    char ack[256];
    const char *other = "{\"fanSpeed\":3,\"$version\":2}";
    assert_int_equal(envmon_logic_desired(&l, other, strlen(other), 2, ack, sizeof ack), 0);
    assert_int_equal(envmon_logic_desired(&l, "{nope", 5, 3, ack, sizeof ack), -1);
    assert_int_equal(envmon_logic_desired(&l, "[1]", 3, 3, ack, sizeof ack), -1);
    const char *doc = "{\"targetTemperature\":21.5}";
    assert_int_equal(envmon_logic_desired(&l, doc, strlen(doc), 5, ack, 10), -1); /* no room */
    assert_false(l.acked_version == 5);
}

static void test_sample_drives_mode_and_failed_sensor_stops_hvac(void **state)
{
    (void)state;
    envmon_logic l;
    envmon_logic_init(&l, 0.25);
    envmon_env e = at(1, 18000);
    assert_int_equal(envmon_logic_sample(&l, &e), HVAC_OFF); /* no target yet */
    assert_true(hvac_control_set_target(&l.ctl, 21.0));
    assert_int_equal(envmon_logic_sample(&l, &e), HVAC_HEATING);
    envmon_env none = {0};
    assert_int_equal(envmon_logic_sample(&l, &none), HVAC_HEATING); /* no sample: unchanged */
    e = at(2, 18500);
    e.sensor_ok = 0;
    assert_int_equal(envmon_logic_sample(&l, &e), HVAC_OFF);
    e = at(3, 21100);
    assert_int_equal(envmon_logic_sample(&l, &e), HVAC_OFF);
    e = at(4, 21400);
    assert_int_equal(envmon_logic_sample(&l, &e), HVAC_COOLING);
}

static void test_telemetry_once_per_sample_and_mode_report_on_change(void **state)
{
    (void)state;
    envmon_logic l;
    envmon_logic_init(&l, 0.25);
    char buf[256];
    envmon_env e = at(7, 21234);
    int n = envmon_logic_telemetry(&l, &e, HVAC_HEATING, buf, sizeof buf); /* before strlen */
    assert_int_equal(n, (int)strlen(buf));
    assert_string_equal(buf, "{\"temperature\":21.234,\"humidity\":50.12,\"pressure\":1013.25,"
                             "\"hvacMode\":\"heating\",\"targetTemperature\":null,\"sample\":7}");
    assert_int_equal(envmon_logic_telemetry(&l, &e, HVAC_HEATING, buf, sizeof buf), 0);
    e = at(8, 21234);
    assert_int_equal(envmon_logic_telemetry(&l, &e, HVAC_HEATING, buf, 20), -1);
    envmon_env none = {0};
    assert_int_equal(envmon_logic_telemetry(&l, &none, HVAC_OFF, buf, sizeof buf), 0);

    assert_true(envmon_logic_mode_report(&l, HVAC_OFF, buf, sizeof buf) > 0);
    assert_string_equal(buf, "{\"hvacMode\":\"off\"}");
    assert_int_equal(envmon_logic_mode_report(&l, HVAC_OFF, buf, sizeof buf), 0);
    assert_true(envmon_logic_mode_report(&l, HVAC_COOLING, buf, sizeof buf) > 0);
    assert_string_equal(buf, "{\"hvacMode\":\"cooling\"}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_desired_target_is_applied_and_acknowledged),
        cmocka_unit_test(test_desired_out_of_range_is_refused_with_400),
        cmocka_unit_test(test_desired_without_target_or_not_json),
        cmocka_unit_test(test_sample_drives_mode_and_failed_sensor_stops_hvac),
        cmocka_unit_test(test_telemetry_once_per_sample_and_mode_report_on_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* app_manifest.json as keeld uses it (src/supervisor/manifest.c over the shared parser in
 * src/manifest): the run keys and capabilities keeld adds to the schema, keeld's defaults, and
 * the refusals that keep a package from running. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "supervisor.h"

static sv_manifest m;
static char msg[256];
static char text[2048];

#define HEAD "{\"schema\":1,\"id\":\"1b4e28ba-2fa1-11d2-883f-0016d3cca427\",\"version\":\"2.1.0\","

static sv_err parse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static sv_err parse(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    msg[0] = '\0';
    return sv_manifest_parse("app_manifest.json", text, strlen(text), &m, msg, sizeof msg);
}

static void test_parse_full_manifest_fills_every_field(void **state)
{
    (void)state;
    assert_int_equal(
        parse(HEAD "\"name\":\"envmon\",\"kind\":\"app\",\"exec\":\"bin/envmon\","
                   "\"args\":[\"-v\",\"--x\"],\"heartbeat_ms\":500,\"restart\":\"always\","
                   "\"capabilities\":{\"limits\":{\"memory_mb\":16,\"cpu_percent\":25,"
                   "\"processes\":4,\"files\":32},\"cloud\":{\"telemetry\":true,"
                   "\"properties\":true,\"methods\":false,\"mqtt\":true,"
                   "\"http\":[\"api.example.com:443\"]},\"serial\":[\"rs485\"],\"gpio\":[\"relay\",\"led.1\"],"
                   "\"intercore\":[\"9b4e28ba-2fa1-11d2-883f-0016d3cca427\"]}}"),
        SV_OK);
    assert_string_equal(m.id, "1b4e28ba-2fa1-11d2-883f-0016d3cca427");
    assert_string_equal(m.name, "envmon");
    assert_string_equal(m.version, "2.1.0");
    assert_false(m.realtime);
    assert_string_equal(m.exec, "bin/envmon");
    assert_int_equal(m.nargs, 2);
    assert_string_equal(m.args[1], "--x");
    assert_int_equal(m.heartbeat_ms, 500);
    assert_int_equal(m.restart, SV_RESTART_ALWAYS);
    assert_int_equal(m.memory_bytes, 16u << 20);
    assert_int_equal(m.cpu_percent, 25);
    assert_int_equal(m.max_procs, 4);
    assert_int_equal(m.max_files, 32);
    assert_true(m.cloud_telemetry);
    assert_true(m.cloud_properties);
    assert_false(m.cloud_methods);
    assert_true(m.cloud_mqtt);
    assert_int_equal(m.nhttp, 1);
    assert_string_equal(m.http_hosts[0], "api.example.com:443");
    assert_int_equal(m.npartners, 1);
    assert_string_equal(m.partners[0], "9b4e28ba-2fa1-11d2-883f-0016d3cca427");
    assert_true(keel_manifest_allows_serial(&m.km, "rs485"));
    assert_false(keel_manifest_allows_serial(&m.km, "rs48"));
    assert_false(keel_manifest_allows_serial(&m.km, "relay"));
    assert_true(keel_manifest_allows_gpio(&m.km, "led.1"));
    assert_false(keel_manifest_allows_gpio(&m.km, "rs485"));
    assert_false(keel_manifest_allows_gpio(&m.km, NULL));
}

static void test_parse_minimal_app_gets_keelds_defaults(void **state)
{
    (void)state;
    assert_int_equal(parse(HEAD "\"name\":\"a\",\"kind\":\"app\",\"exec\":\"a\"}"), SV_OK);
    assert_int_equal(m.restart, SV_RESTART_ON_FAILURE);
    assert_int_equal(m.memory_bytes, 64u << 20);
    assert_int_equal(m.max_procs, 16);
    assert_int_equal(m.max_files, 64);
    assert_false(m.cloud_telemetry);
    assert_false(m.cloud_mqtt);
    assert_int_equal(m.npartners, 0);
}

static void test_parse_app_without_exec_refused(void **state)
{
    (void)state;
    assert_int_equal(parse(HEAD "\"name\":\"a\",\"kind\":\"app\"}"), SV_ERR_CONFIG);
    assert_non_null(strstr(msg, "exec"));
}

static void test_parse_exec_outside_package_refused(void **state)
{
    (void)state;
    assert_int_equal(parse(HEAD "\"name\":\"a\",\"kind\":\"app\",\"exec\":\"/bin/sh\"}"),
                     SV_ERR_CONFIG);
    assert_non_null(strstr(msg, "exec"));
    assert_int_equal(parse(HEAD "\"name\":\"a\",\"kind\":\"app\",\"exec\":\"x/../../y\"}"),
                     SV_ERR_CONFIG);
}

static void test_parse_name_not_path_safe_refused(void **state)
{
    (void)state;
    /* a valid manifest name, but keeld makes directories of it */
    assert_int_equal(parse(HEAD "\"name\":\"../etc\",\"kind\":\"app\",\"exec\":\"a\"}"),
                     SV_ERR_CONFIG);
    assert_non_null(strstr(msg, "name"));
    assert_int_equal(parse(HEAD "\"name\":\"My App\",\"kind\":\"app\",\"exec\":\"a\"}"),
                     SV_ERR_CONFIG);
}

static void test_parse_limits_out_of_range_refused(void **state)
{
    (void)state;
    assert_int_equal(parse(HEAD "\"name\":\"a\",\"kind\":\"app\",\"exec\":\"a\","
                                "\"capabilities\":{\"limits\":{\"processes\":0}}}"),
                     SV_ERR_CONFIG);
    assert_non_null(strstr(msg, "processes"));
    assert_int_equal(parse(HEAD "\"name\":\"a\",\"kind\":\"app\",\"exec\":\"a\","
                                "\"capabilities\":{\"limits\":{\"swap\":1}}}"),
                     SV_ERR_CONFIG);
    assert_non_null(strstr(msg, "swap"));
}

static void test_parse_unknown_cloud_feature_refused(void **state)
{
    (void)state;
    assert_int_equal(parse(HEAD "\"name\":\"a\",\"kind\":\"app\",\"exec\":\"a\","
                                "\"capabilities\":{\"cloud\":{\"telemetri\":true}}}"),
                     SV_ERR_CONFIG);
    assert_non_null(strstr(msg, "telemetri"));
}

static void test_parse_serial_path_refused(void **state)
{
    (void)state;
    assert_int_equal(parse(HEAD "\"name\":\"a\",\"kind\":\"app\",\"exec\":\"a\","
                                "\"capabilities\":{\"serial\":[\"../sda\"]}}"),
                     SV_ERR_CONFIG);
    assert_non_null(strstr(msg, "serial"));
}

static void test_parse_gpio_takes_names_not_numbers_or_paths(void **state)
{
    (void)state;
    assert_int_equal(parse(HEAD "\"name\":\"a\",\"kind\":\"app\",\"exec\":\"a\","
                                "\"capabilities\":{\"gpio\":[17]}}"),
                     SV_ERR_CONFIG);
    assert_non_null(strstr(msg, "gpio"));
    assert_int_equal(parse(HEAD "\"name\":\"a\",\"kind\":\"app\",\"exec\":\"a\","
                                "\"capabilities\":{\"gpio\":[\"/dev/gpiochip0\"]}}"),
                     SV_ERR_CONFIG);
    assert_non_null(strstr(msg, "not a path"));
}

static void test_parse_restart_policy_checked(void **state)
{
    (void)state;
    assert_int_equal(parse(HEAD "\"name\":\"a\",\"kind\":\"app\",\"exec\":\"a\","
                                "\"restart\":\"sometimes\"}"),
                     SV_ERR_CONFIG);
    assert_non_null(strstr(msg, "restart"));
    assert_int_equal(parse(HEAD "\"name\":\"a\",\"kind\":\"app\",\"exec\":\"a\","
                                "\"restart\":\"never\"}"),
                     SV_OK);
    assert_int_equal(m.restart, SV_RESTART_NEVER);
}

static void test_parse_not_json_reports_position(void **state)
{
    (void)state;
    assert_int_equal(parse("{\"id\": }"), SV_ERR_CONFIG);
    assert_non_null(strstr(msg, "app_manifest.json:1:"));
}

static void test_realtime_kind_needs_its_loader(void **state)
{
    (void)state;
    /* keeld runs what loads the firmware: the sim-port program or a QEMU script */
    assert_int_equal(parse(HEAD "\"name\":\"rt\",\"kind\":\"rt\"}"), SV_ERR_CONFIG);
    assert_non_null(strstr(msg, "exec"));
    assert_int_equal(parse(HEAD "\"name\":\"rt\",\"kind\":\"rt\",\"exec\":\"bin/run\"}"),
                     SV_OK);
    assert_true(m.realtime);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_full_manifest_fills_every_field),
        cmocka_unit_test(test_parse_minimal_app_gets_keelds_defaults),
        cmocka_unit_test(test_parse_app_without_exec_refused),
        cmocka_unit_test(test_parse_exec_outside_package_refused),
        cmocka_unit_test(test_parse_name_not_path_safe_refused),
        cmocka_unit_test(test_parse_limits_out_of_range_refused),
        cmocka_unit_test(test_parse_unknown_cloud_feature_refused),
        cmocka_unit_test(test_parse_serial_path_refused),
        cmocka_unit_test(test_parse_gpio_takes_names_not_numbers_or_paths),
        cmocka_unit_test(test_parse_restart_policy_checked),
        cmocka_unit_test(test_parse_not_json_reports_position),
        cmocka_unit_test(test_realtime_kind_needs_its_loader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

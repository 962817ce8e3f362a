/* app_manifest.json as keeld reads it (src/supervisor/manifest.c): fields, defaults, and the
 * refusals that keep a package from running. */
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

static sv_err parse(const char *text)
{
    msg[0] = '\0';
    return sv_manifest_parse("app_manifest.json", text, strlen(text), &m, msg, sizeof msg);
}

static void test_parse_full_manifest_fills_every_field(void **state)
{
    (void)state;
    assert_int_equal(
        parse("{\"id\":\"1b4e28ba-2fa1-11d2-883f-0016d3cca427\",\"name\":\"envmon\","
              "\"version\":\"2.1.0\",\"kind\":\"app\",\"exec\":\"bin/envmon\","
              "\"args\":[\"-v\",\"--x\"],\"heartbeat_ms\":500,\"restart\":\"always\","
              "\"limits\":{\"memory_mb\":16,\"cpu_percent\":25,\"processes\":4,\"files\":32},"
              "\"capabilities\":{\"cloud\":{\"telemetry\":true,\"properties\":true,"
              "\"methods\":false,\"mqtt\":true,\"http\":[\"api.example.com:443\"]},"
              "\"partners\":[\"rt-firmware-uuid\"]}}"),
        SV_OK);
    assert_string_equal(m.name, "envmon");
    assert_string_equal(m.version, "2.1.0");
    assert_false(m.realtime);
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
}

static void test_parse_minimal_manifest_gets_safe_defaults(void **state)
{
    (void)state;
    assert_int_equal(parse("{\"id\":\"x\",\"name\":\"a\",\"version\":\"1\",\"exec\":\"a\"}"),
                     SV_OK);
    assert_int_equal(m.restart, SV_RESTART_ON_FAILURE);
    assert_int_equal(m.memory_bytes, 64u << 20);
    assert_int_equal(m.max_procs, 16);
    assert_false(m.cloud_telemetry);
    assert_false(m.cloud_mqtt);
    assert_int_equal(m.npartners, 0);
}

static void test_parse_missing_name_names_the_key(void **state)
{
    (void)state;
    assert_int_equal(parse("{\"id\":\"x\",\"version\":\"1\",\"exec\":\"a\"}"), SV_ERR_CONFIG);
    assert_non_null(strstr(msg, "name"));
}

static void test_parse_exec_outside_package_refused(void **state)
{
    (void)state;
    assert_int_equal(parse("{\"id\":\"x\",\"name\":\"a\",\"version\":\"1\",\"exec\":\"/bin/sh\"}"),
                     SV_ERR_CONFIG);
    assert_non_null(strstr(msg, "exec"));
    assert_int_equal(parse("{\"id\":\"x\",\"name\":\"a\",\"version\":\"1\",\"exec\":\"../x\"}"),
                     SV_ERR_CONFIG);
}

static void test_parse_name_with_path_characters_refused(void **state)
{
    (void)state;
    assert_int_equal(parse("{\"id\":\"x\",\"name\":\"../etc\",\"version\":\"1\",\"exec\":\"a\"}"),
                     SV_ERR_CONFIG);
    assert_non_null(strstr(msg, "name"));
}

static void test_parse_limits_out_of_range_refused(void **state)
{
    (void)state;
    assert_int_equal(parse("{\"id\":\"x\",\"name\":\"a\",\"version\":\"1\",\"exec\":\"a\","
                           "\"limits\":{\"processes\":0}}"),
                     SV_ERR_CONFIG);
    assert_non_null(strstr(msg, "processes"));
}

static void test_parse_unknown_kind_and_restart_refused(void **state)
{
    (void)state;
    assert_int_equal(parse("{\"id\":\"x\",\"name\":\"a\",\"version\":\"1\",\"exec\":\"a\","
                           "\"kind\":\"daemon\"}"),
                     SV_ERR_CONFIG);
    assert_non_null(strstr(msg, "kind"));
    assert_int_equal(parse("{\"id\":\"x\",\"name\":\"a\",\"version\":\"1\",\"exec\":\"a\","
                           "\"restart\":\"sometimes\"}"),
                     SV_ERR_CONFIG);
}

static void test_parse_too_many_partners_refused(void **state)
{
    (void)state;
    assert_int_equal(parse("{\"id\":\"x\",\"name\":\"a\",\"version\":\"1\",\"exec\":\"a\","
                           "\"capabilities\":{\"partners\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\","
                           "\"7\",\"8\",\"9\"]}}"),
                     SV_ERR_CONFIG);
    assert_non_null(strstr(msg, "partners"));
}

static void test_parse_not_json_reports_position(void **state)
{
    (void)state;
    assert_int_equal(parse("{\"id\": }"), SV_ERR_CONFIG);
    assert_non_null(strstr(msg, "app_manifest.json:1:"));
    assert_int_equal(parse("[1,2]"), SV_ERR_CONFIG);
}

static void test_realtime_kind_needs_no_exec(void **state)
{
    (void)state;
    assert_int_equal(parse("{\"id\":\"x\",\"name\":\"rt\",\"version\":\"1\",\"kind\":\"realtime\"}"),
                     SV_OK);
    assert_true(m.realtime);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_full_manifest_fills_every_field),
        cmocka_unit_test(test_parse_minimal_manifest_gets_safe_defaults),
        cmocka_unit_test(test_parse_missing_name_names_the_key),
        cmocka_unit_test(test_parse_exec_outside_package_refused),
        cmocka_unit_test(test_parse_name_with_path_characters_refused),
        cmocka_unit_test(test_parse_limits_out_of_range_refused),
        cmocka_unit_test(test_parse_unknown_kind_and_restart_refused),
        cmocka_unit_test(test_parse_too_many_partners_refused),
        cmocka_unit_test(test_parse_not_json_reports_position),
        cmocka_unit_test(test_realtime_kind_needs_no_exec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Config loading: positions in syntax errors, typed getters, missing and wrong-typed keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "keel/config.h"

static void test_parse_syntax_error_reports_line_and_column(void **state)
{
    (void)state;
    const char *text = "{\n  \"a\": 1,\n  \"b\": ?\n}";
    cJSON *root;
    keel_config_error err;
    assert_int_equal(keel_config_parse("dev.json", text, strlen(text), &root, &err),
                     KEEL_CONFIG_ERR_SYNTAX);
    assert_null(root);
    assert_non_null(strstr(err.msg, "dev.json:3:"));
}

static void test_getters_typed_values(void **state)
{
    (void)state;
    const char *text = "{\"name\":\"room\",\"baud\":19200,\"gain\":1.5,\"on\":true}";
    cJSON *root;
    keel_config_error err;
    assert_int_equal(keel_config_parse("t", text, strlen(text), &root, &err), KEEL_CONFIG_OK);
    const char *name = NULL;
    int64_t baud = 0;
    double gain = 0;
    bool on = false;
    assert_int_equal(keel_config_get_string(root, "name", true, &name, &err), KEEL_CONFIG_OK);
    assert_string_equal(name, "room");
    assert_int_equal(keel_config_get_int(root, "baud", true, 1, 4000000, &baud, &err),
                     KEEL_CONFIG_OK);
    assert_int_equal(baud, 19200);
    assert_int_equal(keel_config_get_number(root, "gain", true, &gain, &err), KEEL_CONFIG_OK);
    assert_true(gain == 1.5);
    assert_int_equal(keel_config_get_bool(root, "on", true, &on, &err), KEEL_CONFIG_OK);
    assert_true(on);
    cJSON_Delete(root);
}

static void test_getters_missing_wrong_type_and_range_named(void **state)
{
    (void)state;
    const char *text = "{\"baud\":\"fast\",\"n\":2.5,\"big\":99}";
    cJSON *root;
    keel_config_error err;
    assert_int_equal(keel_config_parse("t", text, strlen(text), &root, &err), KEEL_CONFIG_OK);
    int64_t v = 7;
    assert_int_equal(keel_config_get_int(root, "absent", true, 0, 10, &v, &err),
                     KEEL_CONFIG_ERR_MISSING);
    assert_non_null(strstr(err.msg, "absent"));
    assert_int_equal(keel_config_get_int(root, "absent", false, 0, 10, &v, &err), KEEL_CONFIG_OK);
    assert_int_equal(v, 7);
    assert_int_equal(keel_config_get_int(root, "baud", true, 0, 10, &v, &err),
                     KEEL_CONFIG_ERR_TYPE);
    assert_int_equal(keel_config_get_int(root, "n", true, 0, 10, &v, &err), KEEL_CONFIG_ERR_TYPE);
    assert_int_equal(keel_config_get_int(root, "big", true, 0, 10, &v, &err),
                     KEEL_CONFIG_ERR_RANGE);
    assert_non_null(strstr(err.msg, "0..10"));
    cJSON_Delete(root);
}

static void test_load_missing_file_io_error(void **state)
{
    (void)state;
    cJSON *root;
    keel_config_error err;
    assert_int_equal(keel_config_load("/nonexistent/keel.json", &root, &err), KEEL_CONFIG_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/keel.json"));
}

static void test_parse_oversized_refused(void **state)
{
    (void)state;
    cJSON *root;
    keel_config_error err;
    assert_int_equal(keel_config_parse("t", "{}", KEEL_CONFIG_MAX_BYTES + 1, &root, &err),
                     KEEL_CONFIG_ERR_TOO_BIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_syntax_error_reports_line_and_column),
        cmocka_unit_test(test_getters_typed_values),
        cmocka_unit_test(test_getters_missing_wrong_type_and_range_named),
        cmocka_unit_test(test_load_missing_file_io_error),
        cmocka_unit_test(test_parse_oversized_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

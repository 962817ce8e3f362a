/* Desired documents and patches, the merge the twin service applies, and Plug and Play
 * acknowledgements. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "keel/cloud.h"

static keel_cloud_err parse(const char *s, cJSON **doc, const cJSON **d, int64_t *v)
{
    return keel_cloud_desired_parse(s, strlen(s), doc, d, v);
}

static void test_desired_parse_patch_and_get_response(void **state)
{
    (void)state;
    cJSON *doc;
    const cJSON *d;
    int64_t v;
    assert_int_equal(parse("{\"interval\":5,\"$version\":7}", &doc, &d, &v), KEEL_CLOUD_OK);
    assert_int_equal(v, 7);
    assert_ptr_equal(d, doc);
    cJSON_Delete(doc);
    assert_int_equal(
        parse("{\"desired\":{\"a\":1,\"$version\":3},\"reported\":{\"$version\":1}}", &doc, &d, &v),
        KEEL_CLOUD_OK);
    assert_int_equal(v, 3);
    assert_non_null(cJSON_GetObjectItem(d, "a"));
    cJSON_Delete(doc);
    assert_int_equal(parse("{\"a\":1}", &doc, &d, &v), KEEL_CLOUD_OK);
    assert_int_equal(v, -1);
    cJSON_Delete(doc);
}

static void test_desired_parse_bad_input_malformed(void **state)
{
    (void)state;
    cJSON *doc;
    const cJSON *d;
    int64_t v;
    const char *bad[] = {"",
                         "[]",
                         "{",
                         "{\"$version\":\"3\"}",
                         "{\"$version\":1.5}",
                         "{\"$version\":-1}",
                         "null",
                         "{\"desired\":5,\"reported\":{}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(bad[i], &doc, &d, &v) != KEEL_CLOUD_ERR_MALFORMED) {
            fail_msg("accepted: %s", bad[i]);
        }
        assert_null(doc);
    }
    /* Over the cap: refused before parsing. */
    size_t n = KEEL_CLOUD_MAX_MESSAGE + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    assert_int_equal(keel_cloud_desired_parse(big, n, &doc, &d, &v), KEEL_CLOUD_ERR_TOO_BIG);
    free(big);
}

static void test_desired_merge_sets_removes_and_nests(void **state)
{
    (void)state;
    cJSON *base = cJSON_Parse("{\"a\":1,\"b\":{\"x\":1,\"y\":2},\"c\":true}");
    cJSON *patch = cJSON_Parse("{\"a\":2,\"b\":{\"y\":null,\"z\":3},\"c\":null,\"d\":\"new\"}");
    assert_int_equal(keel_cloud_desired_merge(base, patch), KEEL_CLOUD_OK);
    char *s = cJSON_PrintUnformatted(base);
    assert_string_equal(s, "{\"a\":2,\"b\":{\"x\":1,\"z\":3},\"d\":\"new\"}");
    free(s);
    cJSON_Delete(base);
    cJSON_Delete(patch);
    cJSON *arr = cJSON_Parse("[1]");
    assert_int_equal(keel_cloud_desired_merge(arr, arr), KEEL_CLOUD_ERR_ARG);
    cJSON_Delete(arr);
}

static void test_pnp_ack_formats_value_ac_av_ad(void **state)
{
    (void)state;
    char buf[256];
    assert_int_equal(keel_cloud_pnp_ack("targetTemperature", "21.5", 200, 4, "ok", buf, sizeof buf),
                     KEEL_CLOUD_OK);
    assert_string_equal(
        buf, "{\"targetTemperature\":{\"value\":21.5,\"ac\":200,\"av\":4,\"ad\":\"ok\"}}");
    assert_int_equal(keel_cloud_pnp_ack("x", "{not json", 200, 1, NULL, buf, sizeof buf),
                     KEEL_CLOUD_ERR_MALFORMED);
    char small[10];
    assert_int_equal(keel_cloud_pnp_ack("x", "1", 200, 1, NULL, small, sizeof small),
                     KEEL_CLOUD_ERR_SPACE);
    assert_string_equal(small, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_desired_parse_patch_and_get_response),
        cmocka_unit_test(test_desired_parse_bad_input_malformed),
        cmocka_unit_test(test_desired_merge_sets_removes_and_nests),
        cmocka_unit_test(test_pnp_ack_formats_value_ac_av_ad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

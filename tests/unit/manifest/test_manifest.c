/* app_manifest.json: a valid manifest in full, every required key missing in turn, wrong
 * types, malformed values, unknown and repeated keys, limits, and the pairing rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "keel/manifest.h"

#define HL_ID "11111111-2222-3333-4444-555555555555"
#define RT_ID "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
#define OTHER_ID "99999999-8888-7777-6666-555555555555"

static keel_manifest_err parse(const char *text, keel_manifest *m, keel_manifest_error *err)
{
    return keel_manifest_parse("app_manifest.json", text, strlen(text), m, err);
}

static keel_manifest make(const char *id, const char *name, const char *partners_json)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"schema\":1,\"id\":\"%s\",\"name\":\"%s\",\"version\":\"1.0.0\",\"kind\":\"app\","
             "\"capabilities\":{\"intercore\":[%s]}}",
             id, name, partners_json);
    keel_manifest m;
    keel_manifest_error err;
    assert_int_equal(parse(text, &m, &err), KEEL_MANIFEST_OK);
    return m;
}

static void test_parse_full_manifest_fills_every_field(void **state)
{
    (void)state;
    const char *text = "{\n"
                       "  \"schema\": 1,\n"
                       "  \"id\": \"11111111-2222-3333-4444-55555555AbCd\",\n"
                       "  \"name\": \"HVAC controller\",\n"
                       "  \"version\": \"2.10.0\",\n"
                       "  \"kind\": \"rt\",\n"
                       "  \"capabilities\": {\"intercore\": [\"" RT_ID "\", \"" OTHER_ID "\"]}\n"
                       "}\n";
    keel_manifest m;
    keel_manifest_error err;
    assert_int_equal(parse(text, &m, &err), KEEL_MANIFEST_OK);
    assert_int_equal(m.schema, 1);
    char s[KEEL_MANIFEST_UUID_STR];
    keel_manifest_uuid_format(&m.id, s);
    assert_string_equal(s, "11111111-2222-3333-4444-55555555abcd");
    assert_int_equal(m.id.b[0], 0x11);
    assert_int_equal(m.id.b[15], 0xcd);
    assert_string_equal(m.name, "HVAC controller");
    assert_string_equal(m.version, "2.10.0");
    assert_int_equal(m.version_num[0], 2);
    assert_int_equal(m.version_num[1], 10);
    assert_int_equal(m.version_num[2], 0);
    assert_int_equal(m.kind, KEEL_MANIFEST_KIND_RT);
    assert_int_equal(m.caps.n_partners, 2);
    keel_manifest_uuid_format(&m.caps.partners[1], s);
    assert_string_equal(s, OTHER_ID);
}

static void test_parse_no_capabilities_grants_nothing(void **state)
{
    (void)state;
    keel_manifest m;
    keel_manifest_error err;
    assert_int_equal(parse("{\"schema\":1,\"id\":\"" HL_ID
                           "\",\"name\":\"a\",\"version\":\"0.0.1\","
                           "\"kind\":\"app\"}",
                           &m, &err),
                     KEEL_MANIFEST_OK);
    assert_int_equal(m.caps.n_partners, 0);
    assert_int_equal(m.kind, KEEL_MANIFEST_KIND_APP);
}

static void test_parse_each_required_key_missing_is_named(void **state)
{
    (void)state;
    static const char *const keys[] = {"schema", "id", "name", "version", "kind"};
    static const char *const vals[] = {"1", "\"" HL_ID "\"", "\"a\"", "\"1.0.0\"", "\"app\""};
    for (size_t skip = 0; skip < 5; skip++) {
        char text[512] = "{";
        for (size_t i = 0; i < 5; i++) {
            if (i == skip)
                continue;
            char kv[128];
            snprintf(kv, sizeof kv, "%s\"%s\":%s", strlen(text) > 1 ? "," : "", keys[i], vals[i]);
            strcat(text, kv);
        }
        strcat(text, "}");
        keel_manifest m;
        keel_manifest_error err;
        assert_int_equal(parse(text, &m, &err), KEEL_MANIFEST_ERR_MISSING);
        assert_non_null(strstr(err.msg, keys[skip]));
        assert_non_null(strstr(err.msg, "app_manifest.json"));
    }
}

static void test_parse_bad_values_rejected_with_key(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        keel_manifest_err want;
        const char *in_msg;
    } cases[] = {
        {"{\"schema\":1,\"id\":\"1111-2222\",\"name\":\"a\",\"version\":\"1.0.0\",\"kind\":"
         "\"app\"}",
         KEEL_MANIFEST_ERR_VALUE, "\"id\""},
        {"{\"schema\":1,\"id\":\"11111111x2222-3333-4444-555555555555\",\"name\":\"a\","
         "\"version\":\"1.0.0\",\"kind\":\"app\"}",
         KEEL_MANIFEST_ERR_VALUE, "\"id\""},
        {"{\"schema\":1,\"id\":\"g1111111-2222-3333-4444-555555555555\",\"name\":\"a\","
         "\"version\":\"1.0.0\",\"kind\":\"app\"}",
         KEEL_MANIFEST_ERR_VALUE, "\"id\""},
        {"{\"schema\":1,\"id\":\"" HL_ID "\",\"name\":\"a\",\"version\":\"1.0\",\"kind\":\"app\"}",
         KEEL_MANIFEST_ERR_VALUE, "\"version\""},
        {"{\"schema\":1,\"id\":\"" HL_ID
         "\",\"name\":\"a\",\"version\":\"01.0.0\",\"kind\":\"app\"}",
         KEEL_MANIFEST_ERR_VALUE, "\"version\""},
        {"{\"schema\":1,\"id\":\"" HL_ID
         "\",\"name\":\"a\",\"version\":\"1.0.0-rc\",\"kind\":\"app\"}",
         KEEL_MANIFEST_ERR_VALUE, "\"version\""},
        {"{\"schema\":1,\"id\":\"" HL_ID
         "\",\"name\":\"a\",\"version\":\"1.0.0\",\"kind\":\"daemon\"}",
         KEEL_MANIFEST_ERR_VALUE, "\"kind\""},
        {"{\"schema\":1,\"id\":\"" HL_ID "\",\"name\":\"\",\"version\":\"1.0.0\",\"kind\":\"app\"}",
         KEEL_MANIFEST_ERR_VALUE, "\"name\""},
        {"{\"schema\":1,\"id\":\"" HL_ID
         "\",\"name\":\"a\\nb\",\"version\":\"1.0.0\",\"kind\":\"app\"}",
         KEEL_MANIFEST_ERR_VALUE, "\"name\""},
        {"{\"schema\":1,\"id\":7,\"name\":\"a\",\"version\":\"1.0.0\",\"kind\":\"app\"}",
         KEEL_MANIFEST_ERR_TYPE, "\"id\""},
        {"{\"schema\":\"1\",\"id\":\"" HL_ID
         "\",\"name\":\"a\",\"version\":\"1.0.0\",\"kind\":\"app\"}",
         KEEL_MANIFEST_ERR_TYPE, "\"schema\""},
        {"{\"schema\":2,\"id\":\"" HL_ID
         "\",\"name\":\"a\",\"version\":\"1.0.0\",\"kind\":\"app\"}",
         KEEL_MANIFEST_ERR_SCHEMA, "\"schema\""},
        {"{\"schema\":1e300,\"id\":\"" HL_ID
         "\",\"name\":\"a\",\"version\":\"1.0.0\",\"kind\":\"app\"}",
         KEEL_MANIFEST_ERR_SCHEMA, "\"schema\""},
        {"[1,2]", KEEL_MANIFEST_ERR_TYPE, "object"},
        {"{\"schema\":1,", KEEL_MANIFEST_ERR_SYNTAX, "app_manifest.json:1:"},
        {"{\"schema\":1,\"id\":\"" HL_ID "\",\"name\":\"a\",\"version\":\"1.0.0\",\"kind\":\"app\","
         "\"entry\":\"x\"}",
         KEEL_MANIFEST_ERR_UNKNOWN, "\"entry\""},
        {"{\"schema\":1,\"id\":\"" HL_ID "\",\"name\":\"a\",\"name\":\"b\",\"version\":\"1.0.0\","
         "\"kind\":\"app\"}",
         KEEL_MANIFEST_ERR_VALUE, "twice"},
        {"{\"schema\":1,\"id\":\"" HL_ID "\",\"name\":\"a\",\"version\":\"1.0.0\",\"kind\":\"app\","
         "\"capabilities\":{\"intercor\":[]}}",
         KEEL_MANIFEST_ERR_UNKNOWN, "\"intercor\""},
        {"{\"schema\":1,\"id\":\"" HL_ID "\",\"name\":\"a\",\"version\":\"1.0.0\",\"kind\":\"app\","
         "\"capabilities\":[]}",
         KEEL_MANIFEST_ERR_TYPE, "capabilities"},
        {"{\"schema\":1,\"id\":\"" HL_ID "\",\"name\":\"a\",\"version\":\"1.0.0\",\"kind\":\"app\","
         "\"capabilities\":{\"intercore\":\"" RT_ID "\"}}",
         KEEL_MANIFEST_ERR_TYPE, "capabilities.intercore"},
        {"{\"schema\":1,\"id\":\"" HL_ID "\",\"name\":\"a\",\"version\":\"1.0.0\",\"kind\":\"app\","
         "\"capabilities\":{\"intercore\":[\"" RT_ID "\",5]}}",
         KEEL_MANIFEST_ERR_TYPE, "capabilities.intercore[1]"},
        {"{\"schema\":1,\"id\":\"" HL_ID "\",\"name\":\"a\",\"version\":\"1.0.0\",\"kind\":\"app\","
         "\"capabilities\":{\"intercore\":[\"nope\"]}}",
         KEEL_MANIFEST_ERR_VALUE, "capabilities.intercore[0]"},
        {"{\"schema\":1,\"id\":\"" HL_ID "\",\"name\":\"a\",\"version\":\"1.0.0\",\"kind\":\"app\","
         "\"capabilities\":{\"intercore\":[\"" RT_ID "\",\"" RT_ID "\"]}}",
         KEEL_MANIFEST_ERR_VALUE, "twice"},
        {"{\"schema\":1,\"id\":\"" HL_ID "\",\"name\":\"a\",\"version\":\"1.0.0\",\"kind\":\"app\","
         "\"capabilities\":{\"intercore\":[\"" HL_ID "\"]}}",
         KEEL_MANIFEST_ERR_VALUE, "its own partner"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        keel_manifest m;
        keel_manifest_error err = {{0}};
        keel_manifest_err rc = parse(cases[i].text, &m, &err);
        if (rc != cases[i].want || !strstr(err.msg, cases[i].in_msg)) {
            fail_msg("case %zu: got %s \"%s\", want %s with \"%s\"", i, keel_manifest_err_name(rc),
                     err.msg, keel_manifest_err_name(cases[i].want), cases[i].in_msg);
        }
        /* A failed parse leaves nothing half-filled behind. */
        assert_int_equal(m.caps.n_partners, 0);
        assert_int_equal(m.name[0], '\0');
    }
}

static void test_parse_too_many_partners_hits_limit(void **state)
{
    (void)state;
    char list[2048] = "";
    for (int i = 0; i <= KEEL_MANIFEST_MAX_PARTNERS; i++) {
        char one[64];
        snprintf(one, sizeof one, "%s\"00000000-0000-0000-0000-%012d\"", i ? "," : "", i);
        strcat(list, one);
    }
    char text[4096];
    snprintf(text, sizeof text,
             "{\"schema\":1,\"id\":\"" HL_ID "\",\"name\":\"a\",\"version\":\"1.0.0\","
             "\"kind\":\"app\",\"capabilities\":{\"intercore\":[%s]}}",
             list);
    keel_manifest m;
    keel_manifest_error err;
    assert_int_equal(parse(text, &m, &err), KEEL_MANIFEST_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "partners"));
}

static void test_parse_huge_object_of_repeated_keys_refused(void **state)
{
    (void)state;
    /* 50 000 copies of one known key: refused as a repeat, without quadratic work. */
    size_t n = 50000, len = 0;
    char *text = malloc(n * 12 + 16);
    len += (size_t)sprintf(text + len, "{");
    for (size_t i = 0; i < n; i++) {
        len += (size_t)sprintf(text + len, "%s\"name\":\"a\"", i ? "," : "");
    }
    len += (size_t)sprintf(text + len, "}");
    keel_manifest m;
    keel_manifest_error err;
    assert_int_equal(keel_manifest_parse("big.json", text, len, &m, &err), KEEL_MANIFEST_ERR_VALUE);
    assert_non_null(strstr(err.msg, "twice"));
    free(text);
}

static void test_pair_allowed_mutual_partners_ok(void **state)
{
    (void)state;
    keel_manifest hl = make(HL_ID, "hl", "\"" RT_ID "\"");
    keel_manifest rt = make(RT_ID, "rt", "\"" OTHER_ID "\",\"" HL_ID "\"");
    keel_manifest_error err;
    assert_int_equal(keel_manifest_pair_allowed(&hl, &rt, &err), KEEL_MANIFEST_OK);
    assert_int_equal(keel_manifest_pair_allowed(&rt, &hl, &err), KEEL_MANIFEST_OK);
}

static void test_pair_allowed_one_sided_denied_names_refuser(void **state)
{
    (void)state;
    keel_manifest hl = make(HL_ID, "hl", "\"" RT_ID "\"");
    keel_manifest rt = make(RT_ID, "rt", "\"" OTHER_ID "\"");
    keel_manifest_error err;
    assert_int_equal(keel_manifest_pair_allowed(&hl, &rt, &err), KEEL_MANIFEST_ERR_DENIED);
    assert_non_null(strstr(err.msg, "rt (" RT_ID ") does not name hl (" HL_ID ")"));
    assert_int_equal(keel_manifest_pair_allowed(&rt, &hl, &err), KEEL_MANIFEST_ERR_DENIED);
    assert_non_null(strstr(err.msg, "rt (" RT_ID ") does not name hl (" HL_ID ")"));
}

static void test_pair_allowed_neither_or_self_denied(void **state)
{
    (void)state;
    keel_manifest a = make(HL_ID, "a", "");
    keel_manifest b = make(RT_ID, "b", "");
    keel_manifest_error err;
    assert_int_equal(keel_manifest_pair_allowed(&a, &b, &err), KEEL_MANIFEST_ERR_DENIED);
    assert_non_null(strstr(err.msg, "neither"));
    keel_manifest c = make(HL_ID, "c", "\"" RT_ID "\"");
    assert_int_equal(keel_manifest_pair_allowed(&c, &c, &err), KEEL_MANIFEST_ERR_DENIED);
    assert_non_null(strstr(err.msg, "itself"));
}

static void test_load_missing_file_and_real_file(void **state)
{
    (void)state;
    keel_manifest m;
    keel_manifest_error err;
    assert_int_equal(keel_manifest_load("/nonexistent/app_manifest.json", &m, &err),
                     KEEL_MANIFEST_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/app_manifest.json"));
    char path[] = "/tmp/keel-manifest-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "{\"schema\":1,\"id\":\"" RT_ID "\",\"name\":\"rt\",\"version\":\"0.1.0\","
                       "\"kind\":\"rt\"}";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    keel_manifest_err rc = keel_manifest_load(path, &m, &err);
    unlink(path);
    assert_int_equal(rc, KEEL_MANIFEST_OK);
    assert_string_equal(m.name, "rt");
}

static void test_err_name_every_value_named(void **state)
{
    (void)state;
    for (int e = 0; e < KEEL_MANIFEST_ERR_COUNT; e++) {
        assert_non_null(strstr(keel_manifest_err_name((keel_manifest_err)e), "KEEL_MANIFEST_"));
    }
    assert_string_equal(keel_manifest_err_name(KEEL_MANIFEST_ERR_COUNT),
                        "KEEL_MANIFEST_ERR_UNKNOWN_CODE");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_full_manifest_fills_every_field),
        cmocka_unit_test(test_parse_no_capabilities_grants_nothing),
        cmocka_unit_test(test_parse_each_required_key_missing_is_named),
        cmocka_unit_test(test_parse_bad_values_rejected_with_key),
        cmocka_unit_test(test_parse_too_many_partners_hits_limit),
        cmocka_unit_test(test_parse_huge_object_of_repeated_keys_refused),
        cmocka_unit_test(test_pair_allowed_mutual_partners_ok),
        cmocka_unit_test(test_pair_allowed_one_sided_denied_names_refuser),
        cmocka_unit_test(test_pair_allowed_neither_or_self_denied),
        cmocka_unit_test(test_load_missing_file_and_real_file),
        cmocka_unit_test(test_err_name_every_value_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

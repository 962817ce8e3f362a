/* The "cloud" section of the device config: defaults, every key read, and messages that name
 * the key that is wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "keel/cloud.h"

static keel_cloud_err load(const char *json, keel_cloud_config *cfg, char *err, cJSON **root)
{
    *root = cJSON_Parse(json);
    assert_non_null(*root);
    return keel_cloud_config_from_json(*root, cfg, err, 256);
}

static void test_config_minimal_gets_defaults(void **state)
{
    (void)state;
    keel_cloud_config cfg;
    char err[256];
    cJSON *root;
    assert_int_equal(load("{\"host\":\"b\",\"device_id\":\"d\",\"ca\":\"ca.pem\","
                          "\"outbox\":\"o.db\"}",
                          &cfg, err, &root),
                     KEEL_CLOUD_OK);
    assert_int_equal(cfg.scheme, KEEL_CLOUD_SCHEME_PLAIN);
    assert_int_equal(cfg.port, 8883);
    assert_int_equal(cfg.mqtt_version, 4);
    assert_int_equal(cfg.outbox_max_bytes, 64u << 20);
    assert_string_equal(cfg.ca_file, "ca.pem");
    assert_null(cfg.cert_file);
    cJSON_Delete(root);
}

static void test_config_every_key_read(void **state)
{
    (void)state;
    keel_cloud_config cfg;
    char err[256];
    cJSON *root;
    assert_int_equal(load("{\"scheme\":\"iothub\",\"host\":\"h.azure-devices.net\",\"port\":443,"
                          "\"device_id\":\"d\",\"prefix\":\"p\",\"ca\":\"a\",\"cert\":\"c\","
                          "\"key\":\"k\",\"outbox\":\"o\",\"outbox_max_bytes\":8192,"
                          "\"mqtt_version\":5,\"keepalive_s\":30,\"backoff_min_ms\":10,"
                          "\"backoff_max_ms\":20,\"max_inflight\":7}",
                          &cfg, err, &root),
                     KEEL_CLOUD_OK);
    assert_int_equal(cfg.scheme, KEEL_CLOUD_SCHEME_IOTHUB);
    assert_int_equal(cfg.port, 443);
    assert_string_equal(cfg.key_file, "k");
    assert_int_equal(cfg.outbox_max_bytes, 8192);
    assert_int_equal(cfg.mqtt_version, 5);
    assert_int_equal(cfg.keepalive_s, 30);
    assert_int_equal(cfg.backoff_min_ms, 10);
    assert_int_equal(cfg.backoff_max_ms, 20);
    assert_int_equal(cfg.max_inflight, 7);
    cJSON_Delete(root);
}

static void test_config_errors_name_the_key(void **state)
{
    (void)state;
    static const struct {
        const char *json, *needle;
    } cases[] = {
        {"{\"device_id\":\"d\",\"ca\":\"a\",\"outbox\":\"o\"}", "host"},
        {"{\"host\":\"h\",\"device_id\":\"d\",\"outbox\":\"o\"}", "ca"},
        {"{\"host\":\"h\",\"device_id\":\"d\",\"ca\":\"a\",\"outbox\":\"o\",\"port\":70000}",
         "port"},
        {"{\"host\":\"h\",\"device_id\":\"d\",\"ca\":\"a\",\"outbox\":\"o\",\"scheme\":\"amqp\"}",
         "scheme"},
        {"{\"host\":\"h\",\"device_id\":\"d\",\"ca\":\"a\",\"outbox\":\"o\",\"cert\":\"c\"}",
         "key"},
        {"{\"host\":\"h\",\"device_id\":\"d\",\"ca\":\"a\",\"outbox\":\"o\",\"mqtt_version\":3}",
         "mqtt_version"},
        {"{\"host\":\"h\",\"device_id\":\"d\",\"ca\":\"a\",\"outbox\":\"o\","
         "\"backoff_min_ms\":50,\"backoff_max_ms\":10}",
         "backoff_min_ms"},
        {"{\"host\":5,\"device_id\":\"d\",\"ca\":\"a\",\"outbox\":\"o\"}", "host"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        keel_cloud_config cfg;
        char err[256];
        cJSON *root;
        assert_int_equal(load(cases[i].json, &cfg, err, &root), KEEL_CLOUD_ERR_ARG);
        if (!strstr(err, cases[i].needle)) {
            fail_msg("case %zu: \"%s\" does not name %s", i, err, cases[i].needle);
        }
        cJSON_Delete(root);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_minimal_gets_defaults),
        cmocka_unit_test(test_config_every_key_read),
        cmocka_unit_test(test_config_errors_name_the_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

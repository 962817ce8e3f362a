/* The topic core: builders for both schemes, the parser on good and hostile topics, and the
 * reconnect backoff. No broker, no clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keel/cloud.h"

static keel_cloud_topics hub, plain;

static int setup(void **state)
{
    (void)state;
    if (keel_cloud_topics_init(&hub, KEEL_CLOUD_SCHEME_IOTHUB, "dev-1", NULL) != KEEL_CLOUD_OK ||
        keel_cloud_topics_init(&plain, KEEL_CLOUD_SCHEME_PLAIN, "dev-1", "site/keel") !=
            KEEL_CLOUD_OK) {
        return -1;
    }
    return 0;
}

static void test_topics_init_bad_ids_rejected(void **state)
{
    (void)state;
    keel_cloud_topics t;
    const char *bad[] = {"", "a/b", "a+b", "a#", "sp ace", "dev\x01"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(keel_cloud_topics_init(&t, KEEL_CLOUD_SCHEME_PLAIN, bad[i], "keel"),
                         KEEL_CLOUD_ERR_ARG);
    }
    char longid[200];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_int_equal(keel_cloud_topics_init(&t, KEEL_CLOUD_SCHEME_PLAIN, longid, "keel"),
                     KEEL_CLOUD_ERR_ARG);
    const char *badprefix[] = {"", "/keel", "keel/", "ke#el", "$SYS", "a//b", "k+"};
    for (size_t i = 0; i < sizeof badprefix / sizeof badprefix[0]; i++) {
        assert_int_equal(keel_cloud_topics_init(&t, KEEL_CLOUD_SCHEME_PLAIN, "d", badprefix[i]),
                         KEEL_CLOUD_ERR_ARG);
    }
    assert_int_equal(keel_cloud_topics_init(&t, KEEL_CLOUD_SCHEME_PLAIN, "d", NULL), KEEL_CLOUD_OK);
    assert_string_equal(t.prefix, "keel");
}

static void test_topic_telemetry_both_schemes_formatted(void **state)
{
    (void)state;
    char buf[KEEL_CLOUD_MAX_TOPIC];
    assert_int_equal(keel_cloud_topic_telemetry(&hub, 42, "alert=high", buf, sizeof buf),
                     KEEL_CLOUD_OK);
    assert_string_equal(buf, "devices/dev-1/messages/events/$.mid=42&alert=high");
    assert_int_equal(keel_cloud_topic_telemetry(&plain, 7, NULL, buf, sizeof buf), KEEL_CLOUD_OK);
    assert_string_equal(buf, "site/keel/dev-1/messages/events/$.mid=7");
    assert_int_equal(keel_cloud_topic_telemetry(&plain, 7, "a/b", buf, sizeof buf),
                     KEEL_CLOUD_ERR_ARG);
}

static void test_topic_builders_iothub_match_service_conventions(void **state)
{
    (void)state;
    char buf[KEEL_CLOUD_MAX_TOPIC];
    assert_int_equal(keel_cloud_topic_twin_get(&hub, 3, buf, sizeof buf), KEEL_CLOUD_OK);
    assert_string_equal(buf, "$iothub/twin/GET/?$rid=3");
    assert_int_equal(keel_cloud_topic_reported(&hub, 4, buf, sizeof buf), KEEL_CLOUD_OK);
    assert_string_equal(buf, "$iothub/twin/PATCH/properties/reported/?$rid=4");
    assert_int_equal(keel_cloud_topic_method_response(&hub, 200, "ab1", buf, sizeof buf),
                     KEEL_CLOUD_OK);
    assert_string_equal(buf, "$iothub/methods/res/200/?$rid=ab1");
    assert_int_equal(keel_cloud_topic_desired(&hub, 9, buf, sizeof buf), KEEL_CLOUD_OK);
    assert_string_equal(buf, "$iothub/twin/PATCH/properties/desired/?$version=9");
    const char *subs[] = {"$iothub/twin/res/#", "$iothub/twin/PATCH/properties/desired/#",
                          "$iothub/methods/POST/#"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(keel_cloud_topic_subscription(&hub, i, buf, sizeof buf), KEEL_CLOUD_OK);
        assert_string_equal(buf, subs[i]);
    }
    assert_int_equal(keel_cloud_topic_subscription(&hub, 3, buf, sizeof buf), KEEL_CLOUD_ERR_ARG);
    assert_int_equal(keel_cloud_username(&hub, "myhub.azure-devices.net", buf, sizeof buf),
                     KEEL_CLOUD_OK);
    assert_string_equal(buf, "myhub.azure-devices.net/dev-1/?api-version=" KEEL_CLOUD_IOTHUB_API);
}

static void test_topic_builders_plain_stay_under_device_root(void **state)
{
    (void)state;
    char buf[KEEL_CLOUD_MAX_TOPIC];
    assert_int_equal(keel_cloud_topic_desired(&plain, 9, buf, sizeof buf), KEEL_CLOUD_OK);
    assert_string_equal(buf, "site/keel/dev-1/twin/desired");
    assert_int_equal(keel_cloud_topic_method_call(&plain, "reboot", "r1", buf, sizeof buf),
                     KEEL_CLOUD_OK);
    assert_string_equal(buf, "site/keel/dev-1/methods/POST/reboot/?$rid=r1");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(keel_cloud_topic_subscription(&plain, i, buf, sizeof buf), KEEL_CLOUD_OK);
        assert_memory_equal(buf, "site/keel/dev-1/", 16);
    }
    assert_int_equal(keel_cloud_username(&plain, NULL, buf, sizeof buf), KEEL_CLOUD_OK);
    assert_string_equal(buf, "dev-1");
}

static void test_topic_builders_small_buffer_space_and_empty(void **state)
{
    (void)state;
    char buf[16];
    assert_int_equal(keel_cloud_topic_telemetry(&hub, 1, NULL, buf, sizeof buf),
                     KEEL_CLOUD_ERR_SPACE);
    assert_string_equal(buf, "");
    assert_int_equal(keel_cloud_topic_method_response(&hub, 200, "a/b", buf, sizeof buf),
                     KEEL_CLOUD_ERR_ARG);
    assert_int_equal(keel_cloud_topic_method_response(&hub, 1000, "a", buf, sizeof buf),
                     KEEL_CLOUD_ERR_ARG);
}

static keel_cloud_err parse(const keel_cloud_topics *t, bool op, const char *s, keel_cloud_msg *m)
{
    return keel_cloud_parse_topic(t, op, s, strlen(s), m);
}

static void test_parse_topic_device_side_kinds(void **state)
{
    (void)state;
    keel_cloud_msg m;
    assert_int_equal(parse(&hub, false, "$iothub/twin/res/200/?$rid=5&$version=12", &m),
                     KEEL_CLOUD_OK);
    assert_int_equal(m.kind, KEEL_CLOUD_MSG_TWIN_RESPONSE);
    assert_int_equal(m.status, 200);
    assert_string_equal(m.rid, "5");
    assert_int_equal(m.version, 12);
    assert_int_equal(parse(&hub, false, "$iothub/twin/PATCH/properties/desired/?$version=8", &m),
                     KEEL_CLOUD_OK);
    assert_int_equal(m.kind, KEEL_CLOUD_MSG_DESIRED);
    assert_int_equal(m.version, 8);
    assert_int_equal(parse(&hub, false, "$iothub/methods/POST/reboot/?$rid=1f", &m), KEEL_CLOUD_OK);
    assert_int_equal(m.kind, KEEL_CLOUD_MSG_METHOD);
    assert_string_equal(m.name, "reboot");
    assert_string_equal(m.rid, "1f");
    assert_int_equal(parse(&plain, false, "site/keel/dev-1/twin/desired", &m), KEEL_CLOUD_OK);
    assert_int_equal(m.kind, KEEL_CLOUD_MSG_DESIRED);
    assert_int_equal(m.version, -1);
    assert_int_equal(parse(&plain, false, "site/keel/dev-1/methods/POST/x/?$rid=9", &m),
                     KEEL_CLOUD_OK);
    assert_int_equal(m.kind, KEEL_CLOUD_MSG_METHOD);
}

static void test_parse_topic_operator_side_kinds(void **state)
{
    (void)state;
    keel_cloud_msg m;
    assert_int_equal(parse(&plain, true, "site/keel/other/messages/events/$.mid=77&k=v", &m),
                     KEEL_CLOUD_OK);
    assert_int_equal(m.kind, KEEL_CLOUD_MSG_TELEMETRY);
    assert_string_equal(m.device, "other");
    assert_int_equal(m.mid, 77);
    assert_int_equal(parse(&hub, true, "devices/d9/messages/events/$.mid=3", &m), KEEL_CLOUD_OK);
    assert_string_equal(m.device, "d9");
    assert_int_equal(parse(&plain, true, "site/keel/d/twin/PATCH/properties/reported/?$rid=4", &m),
                     KEEL_CLOUD_OK);
    assert_int_equal(m.kind, KEEL_CLOUD_MSG_REPORTED);
    assert_int_equal(parse(&plain, true, "site/keel/d/methods/res/404/?$rid=zz", &m),
                     KEEL_CLOUD_OK);
    assert_int_equal(m.kind, KEEL_CLOUD_MSG_METHOD_RESPONSE);
    assert_int_equal(m.status, 404);
    /* Device side never takes device-published kinds, nor another device's topics. */
    assert_int_equal(parse(&plain, false, "site/keel/dev-1/messages/events/$.mid=1", &m),
                     KEEL_CLOUD_ERR_MALFORMED);
    assert_int_equal(parse(&plain, false, "site/keel/dev-2/twin/desired", &m),
                     KEEL_CLOUD_ERR_MALFORMED);
}

static void test_parse_topic_malformed_rejected(void **state)
{
    (void)state;
    keel_cloud_msg m;
    const char *bad[] = {
        "",
        "/",
        "$iothub",
        "$iothub/",
        "$iothub/twin/res/20/?$rid=1",
        "$iothub/twin/res/abc/?$rid=1",
        "$iothub/twin/res/200/?$rid=1/extra",
        "$iothub/twin/res/200/?$rid=1&",
        "$iothub/twin/res/200/?=1",
        "$iothub/twin/res/200/?$version=-1",
        "$iothub/twin/res/200/?$version=99999999999999999999",
        "$iothub/twin/PATCH/properties/desired/?$version=1x",
        "$iothub/methods/POST/reboot/",
        "$iothub/methods/POST/re/boot/?$rid=1",
        "$iothub/methods/POST//?$rid=1",
        "$iothub/methods/POST/x/?$rid=",
        "$iothub/twin/desired",
        "devices/dev-1/messages/events/$.mid=1",
        "$iothub/methods/GET/x/?$rid=1",
        "site/keel",
        "site/keel/",
        "site/keel/dev-1",
        "site/keel/dev-1/twin/desired/extra",
        "site/keeldev-1/twin/desired",
        "site/keel/dev-1/twin/PATCH/properties/desired/?$version=1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const keel_cloud_topics *t = bad[i][0] == 's' ? &plain : &hub;
        if (parse(t, false, bad[i], &m) != KEEL_CLOUD_ERR_MALFORMED) {
            fail_msg("accepted: %s", bad[i]);
        }
    }
    /* An embedded NUL is not a shorter topic. */
    assert_int_equal(
        keel_cloud_parse_topic(&plain, false, "site/keel/dev-1/twin/desired\0x", 30, &m),
        KEEL_CLOUD_ERR_MALFORMED);
}

static void test_backoff_grows_caps_and_jitters(void **state)
{
    (void)state;
    keel_cloud_backoff b = {.min_ms = 100, .max_ms = 1000};
    uint32_t d0 = keel_cloud_backoff_next(&b, 0);
    assert_int_equal(d0, 50); /* half of 100 with rnd 0 */
    uint32_t d1 = keel_cloud_backoff_next(&b, 0xffffffffu);
    assert_in_range(d1, 100, 200);
    for (int i = 0; i < 20; i++) {
        uint32_t d = keel_cloud_backoff_next(&b, (uint32_t)i * 7919u);
        assert_in_range(d, 0, 1000);
    }
    uint32_t late = keel_cloud_backoff_next(&b, 0);
    assert_int_equal(late, 500); /* capped at 1000, jitter floor half */
    keel_cloud_backoff_reset(&b);
    assert_int_equal(keel_cloud_backoff_next(&b, 0), 50);
}

static void test_err_name_every_value_named(void **state)
{
    (void)state;
    for (int e = 0; e < KEEL_CLOUD_ERR_COUNT; e++) {
        assert_non_null(strstr(keel_cloud_err_name((keel_cloud_err)e), "KEEL_CLOUD_"));
        assert_null(strstr(keel_cloud_err_name((keel_cloud_err)e), "UNKNOWN"));
    }
    assert_string_equal(keel_cloud_err_name(KEEL_CLOUD_ERR_COUNT), "KEEL_CLOUD_ERR_UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topics_init_bad_ids_rejected),
        cmocka_unit_test(test_topic_telemetry_both_schemes_formatted),
        cmocka_unit_test(test_topic_builders_iothub_match_service_conventions),
        cmocka_unit_test(test_topic_builders_plain_stay_under_device_root),
        cmocka_unit_test(test_topic_builders_small_buffer_space_and_empty),
        cmocka_unit_test(test_parse_topic_device_side_kinds),
        cmocka_unit_test(test_parse_topic_operator_side_kinds),
        cmocka_unit_test(test_parse_topic_malformed_rejected),
        cmocka_unit_test(test_backoff_grows_caps_and_jitters),
        cmocka_unit_test(test_err_name_every_value_named),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}

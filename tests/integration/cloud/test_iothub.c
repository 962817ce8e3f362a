/* The IoT Hub scheme end to end, against mosquitto standing in for the hub: a test "hub"
 * answers the device's twin GET, sends desired patches (one stale), calls a method and reads
 * telemetry on devices/{id}/messages/events/. mosquitto cannot scope $iothub/ per connection
 * as the real hub does, so this broker runs one hub device at a time. Also: hostile input
 * from the broker (bad JSON, oversized payloads, unknown topics) is rejected with a log line
 * and the link carries on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "receiver.h"

static kb_broker broker;

typedef struct hub {
    keel_cloud_op *op;
    char get_rid[64];  /* last twin GET's request id */
    int method_status; /* answer to our call, 0 until it comes */
    char method_rid[64];
    uint64_t telemetry_last;
    int reported;
} hub;

static void on_hub(void *user, const keel_cloud_msg *m, const char *topic, const void *payload,
                   size_t len)
{
    (void)payload, (void)len;
    hub *h = user;
    const char *get = "$iothub/twin/GET/?$rid=";
    if (strncmp(topic, get, strlen(get)) == 0) {
        snprintf(h->get_rid, sizeof h->get_rid, "%s", topic + strlen(get));
        return;
    }
    if (m->kind == KEEL_CLOUD_MSG_METHOD_RESPONSE && strcmp(m->rid, h->method_rid) == 0) {
        h->method_status = m->status;
    } else if (m->kind == KEEL_CLOUD_MSG_TELEMETRY && m->mid > h->telemetry_last) {
        h->telemetry_last = m->mid;
    } else if (m->kind == KEEL_CLOUD_MSG_REPORTED) {
        h->reported++;
    }
}

static int group_setup(void **state)
{
    (void)state;
    if (kb_init(&broker, "keel", NULL) != 0 || kb_client(&broker, "devhub") != 0 ||
        kb_client(&broker, "operator") != 0 || kb_client(&broker, "dev1") != 0) {
        return -1;
    }
    snprintf(broker.acl_extra, sizeof broker.acl_extra,
             "pattern readwrite $iothub/#\n"
             "pattern readwrite devices/%%u/#\n"
             "user operator\n"
             "topic readwrite devices/#\n");
    return kb_start(&broker);
}

static int group_teardown(void **state)
{
    (void)state;
    kb_stop(&broker);
    return 0;
}

static void pump(hub *h, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        assert_int_equal(keel_cloud_op_step(h->op, 20), KEEL_CLOUD_OK);
    }
}

static void test_iothub_twin_get_patches_method_telemetry(void **state)
{
    (void)state;
    static char paths[900];
    keel_cloud_op_config cfg;
    op_config(&cfg, &broker, "operator", paths, sizeof paths);
    cfg.scheme = KEEL_CLOUD_SCHEME_IOTHUB;
    hub h = {0};
    char err[256];
    assert_int_equal(keel_cloud_op_open(&cfg, on_hub, &h, &h.op, err, sizeof err), KEEL_CLOUD_OK);
    assert_int_equal(keel_cloud_op_subscribe(h.op, "$iothub/twin/GET/#"), KEEL_CLOUD_OK);
    assert_int_equal(keel_cloud_op_subscribe(h.op, "$iothub/methods/res/#"), KEEL_CLOUD_OK);
    assert_int_equal(keel_cloud_op_subscribe(h.op, "devices/devhub/messages/events/#"),
                     KEEL_CLOUD_OK);

    char dcfg[300];
    snprintf(dcfg, sizeof dcfg, "%s/devhub.json", broker.dir);
    FILE *f = fopen(dcfg, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"cloud\": {\"scheme\": \"iothub\", \"host\": \"127.0.0.1\", \"port\": %u,"
            " \"device_id\": \"devhub\", \"ca\": \"%s/ca.pem\", \"cert\": \"%s/devhub.pem\","
            " \"key\": \"%s/devhub.key\", \"outbox\": \"%s/devhub.db\", \"mqtt_version\": 5}}\n",
            broker.port, broker.dir, broker.dir, broker.dir, broker.dir);
    fclose(f);
    static kf_proc d;
    assert_int_equal(driver_start(&d, dcfg, NULL, "--count", "20", NULL), 0);

    /* The device asks for its twin at connect; the hub answers with the full document. */
    for (int i = 0; i < 500 && !h.get_rid[0]; i++) {
        pump(&h, 1);
    }
    assert_true(h.get_rid[0] != '\0');
    char topic[KEEL_CLOUD_MAX_TOPIC];
    snprintf(topic, sizeof topic, "$iothub/twin/res/200/?$rid=%s", h.get_rid);
    const char *twin = "{\"desired\":{\"x\":1,\"$version\":5},\"reported\":{\"$version\":1}}";
    assert_int_equal(keel_cloud_op_publish(h.op, topic, twin, strlen(twin), 0, false),
                     KEEL_CLOUD_OK);
    assert_int_equal(kf_wait_log(&d, "desired 5 {\"x\":1,\"$version\":5}", 10000), 0);

    /* A patch merges; an older one is ignored with a log line. */
    const char *p6 = "{\"y\":2,\"$version\":6}";
    assert_int_equal(keel_cloud_op_publish(h.op,
                                           "$iothub/twin/PATCH/properties/desired/?$version=6", p6,
                                           strlen(p6), 0, false),
                     KEEL_CLOUD_OK);
    assert_int_equal(kf_wait_log(&d, "desired 6 {\"x\":1,\"y\":2,\"$version\":6}", 10000), 0);
    const char *p4 = "{\"x\":99,\"$version\":4}";
    assert_int_equal(keel_cloud_op_publish(h.op,
                                           "$iothub/twin/PATCH/properties/desired/?$version=4", p4,
                                           strlen(p4), 0, false),
                     KEEL_CLOUD_OK);
    assert_int_equal(kf_wait_log(&d, "desired v4 ignored: v6 is cached", 10000), 0);

    /* A gap (v7 never came): the device asks for the whole twin rather than merge v8. */
    h.get_rid[0] = '\0';
    const char *p8 = "{\"z\":3,\"$version\":8}";
    assert_int_equal(keel_cloud_op_publish(h.op,
                                           "$iothub/twin/PATCH/properties/desired/?$version=8", p8,
                                           strlen(p8), 0, false),
                     KEEL_CLOUD_OK);
    for (int i = 0; i < 500 && !h.get_rid[0]; i++) {
        pump(&h, 1);
    }
    assert_true(h.get_rid[0] != '\0');
    snprintf(topic, sizeof topic, "$iothub/twin/res/200/?$rid=%s", h.get_rid);
    const char *twin8 =
        "{\"desired\":{\"x\":1,\"y\":2,\"w\":7,\"z\":3,\"$version\":8},\"reported\":{}}";
    assert_int_equal(keel_cloud_op_publish(h.op, topic, twin8, strlen(twin8), 0, false),
                     KEEL_CLOUD_OK);
    assert_int_equal(
        kf_wait_log(&d, "desired 8 {\"x\":1,\"y\":2,\"w\":7,\"z\":3,\"$version\":8}", 10000), 0);

    /* A direct method and its response. */
    snprintf(h.method_rid, sizeof h.method_rid, "77");
    assert_int_equal(
        keel_cloud_op_publish(h.op, "$iothub/methods/POST/ping/?$rid=77", "{}", 2, 0, false),
        KEEL_CLOUD_OK);
    for (int i = 0; i < 500 && !h.method_status; i++) {
        pump(&h, 1);
    }
    assert_int_equal(h.method_status, 200);

    /* Telemetry on the hub's device-to-cloud topic, every message. */
    for (int i = 0; i < 500 && h.telemetry_last < 20; i++) {
        pump(&h, 1);
    }
    assert_int_equal(h.telemetry_last, 20);
    kf_stop(&d, 3000);
    keel_cloud_op_close(h.op);
}

static void test_iothub_hostile_input_rejected_with_log_line(void **state)
{
    (void)state;
    char dcfg[300];
    assert_int_equal(kb_device_config(&broker, "dev1", NULL, dcfg, sizeof dcfg), 0);
    static kf_proc d;
    assert_int_equal(driver_start(&d, dcfg, NULL, NULL), 0);
    assert_int_equal(kf_wait_log(&d, "connected", 10000), 0);
    receiver r = {0};
    assert_int_equal(rx_open(&r, &broker, "dev1", NULL), 0);
    /* Not JSON. */
    assert_int_equal(keel_cloud_op_publish(r.op, "keel/dev1/twin/desired", "{oops", 5, 1, false),
                     KEEL_CLOUD_OK);
    assert_int_equal(
        kf_wait_log(&d, "desired properties rejected: KEEL_CLOUD_ERR_MALFORMED", 10000), 0);
    /* Over the 256 KiB cap. */
    size_t n = KEEL_CLOUD_MAX_MESSAGE + 10;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    assert_int_equal(
        keel_cloud_op_publish(r.op, "keel/dev1/methods/POST/x/?$rid=1", big, n, 1, false),
        KEEL_CLOUD_OK);
    free(big);
    assert_int_equal(kf_wait_log(&d, "over the 262144-byte cap", 10000), 0);
    /* A method topic with no request id. */
    assert_int_equal(keel_cloud_op_publish(r.op, "keel/dev1/methods/POST/x/", "{}", 2, 1, false),
                     KEEL_CLOUD_OK);
    assert_int_equal(kf_wait_log(&d, "unexpected topic rejected", 10000), 0);
    /* Still alive and serving. */
    int status = 0;
    assert_int_equal(keel_cloud_op_call(r.op, "dev1", "after", "{}", 10000, &status, NULL, 0),
                     KEEL_CLOUD_OK);
    assert_int_equal(status, 200);
    assert_true(kf_running(&d));
    kf_stop(&d, 3000);
    rx_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iothub_twin_get_patches_method_telemetry),
        cmocka_unit_test(test_iothub_hostile_input_rejected_with_log_line),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

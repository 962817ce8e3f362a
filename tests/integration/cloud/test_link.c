/* The cloud link against a real mosquitto with TLS, client certificates and a per-device ACL:
 * telemetry in order, desired properties and their Plug and Play acknowledgement, a method
 * call, the ACL keeping one device out of another's topics, and wrong certificates refused
 * with a clear message and no plaintext fallback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "receiver.h"

static kb_broker broker;

static int group_setup(void **state)
{
    (void)state;
    if (kb_init(&broker, "keel", NULL) != 0 || kb_client(&broker, "dev1") != 0 ||
        kb_client(&broker, "dev2") != 0 || kb_client(&broker, "operator") != 0) {
        return -1;
    }
    return kb_start(&broker);
}

static int group_teardown(void **state)
{
    (void)state;
    kb_stop(&broker);
    return 0;
}

static void test_link_telemetry_arrives_in_order_once(void **state)
{
    (void)state;
    receiver r = {0};
    assert_int_equal(rx_open(&r, &broker, "dev1", NULL), 0);
    char cfg[300];
    assert_int_equal(kb_device_config(&broker, "dev1", NULL, cfg, sizeof cfg), 0);
    static kf_proc d;
    assert_int_equal(driver_start(&d, cfg, NULL, "--count", "300", "--batch", "10", NULL), 0);
    bool ok = rx_wait_last(&r, 300, &d, 30000);
    if (!ok) {
        kf_dump_log(&d, 30);
    }
    assert_true(ok);
    assert_int_equal(r.gaps, 0);
    assert_int_equal(r.bad_payload, 0);
    assert_int_equal(kf_wait_log(&d, "drained", 10000), 0);
    kf_stop(&d, 3000);
    rx_close(&r);
}

static void test_link_desired_reaches_device_and_ack_returns(void **state)
{
    (void)state;
    receiver r = {0};
    assert_int_equal(rx_open(&r, &broker, "dev2", NULL), 0);
    char cfg[300];
    assert_int_equal(kb_device_config(&broker, "dev2", NULL, cfg, sizeof cfg), 0);
    static kf_proc d;
    assert_int_equal(driver_start(&d, cfg, NULL, "--ack-desired", NULL), 0);
    assert_int_equal(kf_wait_log(&d, "connected", 10000), 0);

    int64_t v1 = 0, v2 = 0;
    assert_int_equal(keel_cloud_op_set_desired(r.op, "dev2", "{\"interval\":5}", &v1),
                     KEEL_CLOUD_OK);
    assert_int_equal(keel_cloud_op_set_desired(r.op, "dev2", "{\"mode\":\"eco\"}", &v2),
                     KEEL_CLOUD_OK);
    assert_int_equal(v2, v1 + 1);
    char want[64];
    snprintf(want, sizeof want, "desired %lld ", (long long)v2);
    assert_int_equal(kf_wait_log(&d, want, 10000), 0);
    /* The ack carries the value, ac 200 and the version it applies to. */
    char av[32];
    snprintf(av, sizeof av, "\"av\":%lld", (long long)v2);
    assert_true(rx_wait_reported(&r, av, 10000));
    assert_non_null(strstr(r.last_reported, "\"mode\":{\"value\":\"eco\",\"ac\":200"));
    assert_non_null(strstr(r.last_reported, "\"interval\":{\"value\":5"));
    kf_stop(&d, 3000);

    /* The cache serves the settings at the next boot with no broker reachable: the driver
     * reports them before any connection (port 1 refuses). */
    char offline[300];
    assert_int_equal(kb_device_config(&broker, "dev2", "\"port\": 1", offline, sizeof offline), 0);
    static kf_proc d2;
    assert_int_equal(driver_start(&d2, offline, NULL, NULL), 0);
    assert_int_equal(kf_wait_log(&d2, want, 10000), 0);
    kf_stop(&d2, 3000);
    rx_close(&r);
}

static void test_link_method_call_gets_response(void **state)
{
    (void)state;
    char cfg[300];
    assert_int_equal(kb_device_config(&broker, "dev1", NULL, cfg, sizeof cfg), 0);
    static kf_proc d;
    assert_int_equal(driver_start(&d, cfg, NULL, NULL), 0);
    assert_int_equal(kf_wait_log(&d, "connected", 10000), 0);
    receiver r = {0};
    assert_int_equal(rx_open(&r, &broker, "dev1", NULL), 0);
    int status = 0;
    char resp[512];
    assert_int_equal(keel_cloud_op_call(r.op, "dev1", "reboot", "{\"delay\":3}", 10000, &status,
                                        resp, sizeof resp),
                     KEEL_CLOUD_OK);
    assert_int_equal(status, 200);
    assert_string_equal(resp, "{\"method\":\"reboot\",\"echo\":{\"delay\":3}}");
    kf_stop(&d, 3000);
    rx_close(&r);
}

typedef struct seen {
    int other; /* messages about dev1 that reached dev2 */
    int own;   /* messages on dev2's own topics */
} seen;

static void count_seen(void *user, const keel_cloud_msg *m, const char *topic, const void *payload,
                       size_t len)
{
    (void)m, (void)payload, (void)len;
    seen *s = user;
    if (strncmp(topic, "keel/dev1/", 10) == 0) {
        s->other++;
    } else if (strncmp(topic, "keel/dev2/", 10) == 0) {
        s->own++;
    }
}

static void test_link_command_sent_while_offline_arrives_on_reconnect(void **state)
{
    (void)state;
    /* dev1 has a session (earlier tests); clean session false keeps its subscriptions. */
    char cfg[300];
    assert_int_equal(kb_device_config(&broker, "dev1", NULL, cfg, sizeof cfg), 0);
    static kf_proc d;
    assert_int_equal(driver_start(&d, cfg, NULL, NULL), 0);
    assert_int_equal(kf_wait_log(&d, "connected", 10000), 0);
    kf_stop(&d, 3000);
    receiver r = {0};
    assert_int_equal(rx_open(&r, &broker, "dev1", NULL), 0);
    assert_int_equal(
        keel_cloud_op_publish(r.op, "keel/dev1/methods/POST/queued/?$rid=q1", "{}", 2, 1, false),
        KEEL_CLOUD_OK);
    static kf_proc d2;
    assert_int_equal(driver_start(&d2, cfg, NULL, NULL), 0);
    assert_int_equal(kf_wait_log(&d2, "method queued q1", 10000), 0);
    kf_stop(&d2, 3000);
    rx_close(&r);
}

static void test_link_acl_keeps_device_out_of_other_devices_topics(void **state)
{
    (void)state;
    static char paths[900];
    keel_cloud_op_config cfg;
    op_config(&cfg, &broker, "dev2", paths, sizeof paths);
    keel_cloud_op *dev2;
    char err[256];
    seen s = {0};
    keel_cloud_err e = keel_cloud_op_open(&cfg, count_seen, &s, &dev2, err, sizeof err);
    if (e != KEEL_CLOUD_OK) {
        fprintf(stderr, "%s\n", err);
    }
    assert_int_equal(e, KEEL_CLOUD_OK);
    /* mosquitto grants the SUBACK and then checks read access per message: the test is that
     * nothing of dev1's is delivered. */
    keel_cloud_err granted[2] = {keel_cloud_op_subscribe(dev2, "keel/dev1/#"),
                                 keel_cloud_op_subscribe(dev2, "keel/+/messages/events/#")};
    (void)granted;
    assert_int_equal(keel_cloud_op_subscribe(dev2, "keel/dev2/#"), KEEL_CLOUD_OK);

    /* dev1 is running and sending; a desired document dev2 tries to plant for dev1 never
     * reaches dev1: dev1 sees only the operator's, which comes after. */
    char dcfg[300];
    assert_int_equal(kb_device_config(&broker, "dev1", NULL, dcfg, sizeof dcfg), 0);
    static kf_proc d;
    assert_int_equal(driver_start(&d, dcfg, NULL, "--count", "1000000", "--rate", "50", NULL), 0);
    assert_int_equal(kf_wait_log(&d, "connected", 10000), 0);
    const char *forged = "{\"forged\":true,\"$version\":999999}";
    assert_int_equal(
        keel_cloud_op_publish(dev2, "keel/dev1/twin/desired", forged, strlen(forged), 1, true),
        KEEL_CLOUD_OK);
    receiver r = {0};
    assert_int_equal(rx_open(&r, &broker, "dev1", NULL), 0);
    int64_t v = 0;
    assert_int_equal(keel_cloud_op_set_desired(r.op, "dev1", "{\"after_forgery\":1}", &v),
                     KEEL_CLOUD_OK);
    char want[64];
    snprintf(want, sizeof want, "desired %lld ", (long long)v);
    assert_int_equal(kf_wait_log(&d, want, 10000), 0);
    assert_int_not_equal(kf_wait_log(&d, "forged", 0), 0);
    /* dev1's telemetry flows (the operator sees it) ... */
    assert_true(rx_wait_last(&r, 5, &d, 10000));
    /* ... and then the operator writes to dev2: once dev2 has that, everything the broker
     * would have given it from dev1 earlier would be in too. */
    const char *ping = "{\"ping\":1}";
    assert_int_equal(
        keel_cloud_op_publish(r.op, "keel/dev2/twin/desired", ping, strlen(ping), 1, false),
        KEEL_CLOUD_OK);
    for (int i = 0; i < 200 && s.own == 0; i++) {
        assert_int_equal(keel_cloud_op_step(dev2, 50), KEEL_CLOUD_OK);
    }
    assert_true(s.own > 0);
    assert_int_equal(s.other, 0);
    kf_stop(&d, 3000);
    rx_close(&r);
    keel_cloud_op_close(dev2);
}

static void test_link_wrong_certificates_refused_clearly(void **state)
{
    (void)state;
    /* A device whose certificate comes from another CA. */
    char odir[300];
    kb_path(&broker, "otherca", odir, sizeof odir);
    char script[512];
    snprintf(script, sizeof script, "%s/scripts/cloud-certs.sh", kf_source_dir());
    char *argv[] = {"bash", script, (char *)odir, "--ca-name", "rogue-ca", "dev1", NULL};
    static kf_proc certs;
    char clog[320];
    kb_path(&broker, "otherca.log", clog, sizeof clog);
    assert_int_equal(kf_spawn(&certs, "certs", argv, clog), 0);
    assert_int_equal(kf_wait_exit(&certs, 30000), 0);
    char cfg[400];
    snprintf(cfg, sizeof cfg, "%s/rogue.json", odir);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"cloud\": {\"host\": \"127.0.0.1\", \"port\": %u, \"device_id\": \"dev1\","
            " \"ca\": \"%s/ca.pem\", \"cert\": \"%s/dev1.pem\", \"key\": \"%s/dev1.key\","
            " \"outbox\": \"%s/rogue.db\", \"backoff_min_ms\": 50, \"backoff_max_ms\": 200}}\n",
            broker.port, broker.dir, odir, odir, odir);
    fclose(f);
    static kf_proc d;
    assert_int_equal(driver_start(&d, cfg, NULL, "--count", "3", NULL), 0);
    /* It keeps trying with backoff, says why, and never gets a session. */
    assert_int_equal(kf_wait_log(&d, "next attempt", 10000), 0);
    assert_int_equal(kf_wait_log(&broker.proc, "OpenSSL Error", 10000), 0);
    assert_int_not_equal(kf_wait_log(&d, "connected", 1500), 0);
    kf_stop(&d, 3000);

    /* The device does not trust a broker signed by another CA: verification fails. */
    snprintf(cfg, sizeof cfg, "%s/wrongca.json", odir);
    f = fopen(cfg, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"cloud\": {\"host\": \"127.0.0.1\", \"port\": %u, \"device_id\": \"dev1\","
            " \"ca\": \"%s/ca.pem\", \"cert\": \"%s/dev1.pem\", \"key\": \"%s/dev1.key\","
            " \"outbox\": \"%s/wrongca.db\", \"backoff_min_ms\": 50, \"backoff_max_ms\": 200}}\n",
            broker.port, odir, broker.dir, broker.dir, odir);
    fclose(f);
    static kf_proc d2;
    assert_int_equal(driver_start(&d2, cfg, NULL, NULL), 0);
    assert_int_equal(kf_wait_log(&d2, "certificate verify failed", 10000), 0);
    assert_int_not_equal(kf_wait_log(&d2, "connected", 500), 0);
    kf_stop(&d2, 3000);

    /* No plaintext: an MQTT CONNECT in the clear gets no CONNACK (the listener is TLS only). */
    static char paths[900];
    keel_cloud_op_config ocfg;
    op_config(&ocfg, &broker, "operator", paths, sizeof paths);
    ocfg.ca_file = paths + 600; /* dev1.key is not a CA bundle: TLS setup must fail */
    ocfg.timeout_ms = 2000;
    keel_cloud_op *op = NULL;
    char err[256];
    assert_int_not_equal(keel_cloud_op_open(&ocfg, NULL, NULL, &op, err, sizeof err),
                         KEEL_CLOUD_OK);
    assert_null(op);
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    char tmp[400];
    snprintf(tmp, sizeof tmp, "%s.tmp", to);
    FILE *out = fopen(tmp, "wb");
    if (!in || !out) {
        if (in) {
            fclose(in);
        }
        if (out) {
            fclose(out);
        }
        return -1;
    }
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        fwrite(buf, 1, n, out);
    }
    fclose(in);
    fclose(out);
    return rename(tmp, to); /* atomic, as an update agent would replace it */
}

static void test_link_ca_bundle_replaced_on_disk_used_at_next_attempt(void **state)
{
    (void)state;
    /* The device starts with a CA bundle that does not verify this broker ... */
    char other[300], bundle[300], right[300], cfg[400];
    kb_path(&broker, "otherca/ca.pem", other, sizeof other);
    kb_path(&broker, "bundle.pem", bundle, sizeof bundle);
    kb_path(&broker, "ca.pem", right, sizeof right);
    assert_int_equal(copy_file(other, bundle), 0);
    snprintf(cfg, sizeof cfg, "%s/bundle.json", broker.dir);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"cloud\": {\"host\": \"127.0.0.1\", \"port\": %u, \"device_id\": \"dev1\","
            " \"ca\": \"%s\", \"cert\": \"%s/dev1.pem\", \"key\": \"%s/dev1.key\","
            " \"outbox\": \"%s/bundle.db\", \"backoff_min_ms\": 50, \"backoff_max_ms\": 200}}\n",
            broker.port, bundle, broker.dir, broker.dir, broker.dir);
    fclose(f);
    static kf_proc d;
    assert_int_equal(driver_start(&d, cfg, NULL, NULL), 0);
    assert_int_equal(kf_wait_log(&d, "certificate verify failed", 10000), 0);
    /* ... then the bundle is updated on disk: the next attempt uses it, no restart. */
    assert_int_equal(copy_file(right, bundle), 0);
    assert_int_equal(kf_wait_log(&d, "connected", 10000), 0);
    kf_stop(&d, 3000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link_telemetry_arrives_in_order_once),
        cmocka_unit_test(test_link_desired_reaches_device_and_ack_returns),
        cmocka_unit_test(test_link_method_call_gets_response),
        cmocka_unit_test(test_link_command_sent_while_offline_arrives_on_reconnect),
        cmocka_unit_test(test_link_acl_keeps_device_out_of_other_devices_topics),
        cmocka_unit_test(test_link_wrong_certificates_refused_clearly),
        cmocka_unit_test(test_link_ca_bundle_replaced_on_disk_used_at_next_attempt),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

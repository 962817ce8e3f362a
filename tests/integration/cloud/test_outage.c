/* Nothing is lost: the broker stopped and restarted under steady telemetry, the process that
 * holds the link killed with SIGKILL mid-stream, and the disk holding the outbox filled up.
 * In each case the operator side receives every accepted message exactly once, in order
 * (redeliveries dropped by message id), and reported properties survive. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "receiver.h"

static kb_broker broker;

static int group_setup(void **state)
{
    (void)state;
    if (kb_init(&broker, "keel", NULL) != 0 || kb_client(&broker, "operator") != 0 ||
        kb_client(&broker, "devout") != 0 || kb_client(&broker, "devkill") != 0 ||
        kb_client(&broker, "devdisk") != 0) {
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

static void check_clean(const receiver *r)
{
    assert_int_equal(r->gaps, 0);
    assert_int_equal(r->bad_payload, 0);
}

static void test_outage_broker_restart_loses_nothing(void **state)
{
    (void)state;
    const uint64_t total = 1500;
    receiver r = {0};
    assert_int_equal(rx_open(&r, &broker, "devout", "rx-outage"), 0);
    char cfg[300];
    assert_int_equal(kb_device_config(&broker, "devout", NULL, cfg, sizeof cfg), 0);
    static kf_proc d;
    assert_int_equal(
        driver_start(&d, cfg, NULL, "--count", "1500", "--rate", "300", "--batch", "5", NULL), 0);
    assert_true(rx_wait_last(&r, 200, &d, 20000));
    rx_close(&r);

    /* Outage: the device notices, keeps accepting telemetry into its outbox. */
    assert_int_equal(kb_stop(&broker) == -1, 0);
    assert_int_equal(kf_wait_log(&d, "down ", 10000), 0);
    uint64_t at_down = driver_accepted(&d);
    assert_true(driver_wait_accepted(&d, at_down + 150, 20000));

    assert_int_equal(kb_start(&broker), 0);
    assert_int_equal(rx_open(&r, &broker, "devout", "rx-outage"), 0);
    bool ok = rx_wait_last(&r, total, &d, 60000);
    if (!ok) {
        kf_dump_log(&d, 20);
    }
    assert_true(ok);
    check_clean(&r);
    fprintf(stderr, "outage: %llu messages, %llu redeliveries dropped\n",
            (unsigned long long)r.last, (unsigned long long)r.dups);
    assert_int_equal(kf_wait_log(&d, "drained", 20000), 0);
    kf_stop(&d, 3000);
    rx_close(&r);
}

static void test_outage_sigkill_link_process_loses_nothing(void **state)
{
    (void)state;
    const uint64_t total = 3000;
    receiver r = {0};
    assert_int_equal(rx_open(&r, &broker, "devkill", "rx-kill"), 0);
    char cfg[300];
    assert_int_equal(kb_device_config(&broker, "devkill", NULL, cfg, sizeof cfg), 0);
    static kf_proc d;
    static char log[400];
    snprintf(log, sizeof log, "%s.kill.log", cfg);
    assert_int_equal(
        driver_start(&d, cfg, log, "--count", "3000", "--rate", "1000", "--batch", "10", NULL), 0);
    assert_true(rx_wait_last(&r, 300, &d, 20000));
    /* Mid-stream: messages accepted, some sent and unacknowledged, some not sent yet. */
    assert_int_equal(kf_signal(&d, SIGKILL), 0);
    assert_true(kf_wait_exit(&d, 5000) != -1);
    uint64_t accepted = driver_accepted(&d);
    assert_true(accepted < total);

    static kf_proc d2;
    assert_int_equal(
        driver_start(&d2, cfg, log, "--count", "3000", "--rate", "1000", "--batch", "10", NULL), 0);
    bool ok = rx_wait_last(&r, total, &d2, 60000);
    if (!ok) {
        kf_dump_log(&d2, 20);
    }
    assert_true(ok);
    check_clean(&r);
    fprintf(stderr, "sigkill at %llu accepted: %llu messages, %llu redeliveries dropped\n",
            (unsigned long long)accepted, (unsigned long long)r.last, (unsigned long long)r.dups);
    kf_stop(&d2, 3000);
    rx_close(&r);
}

static void test_outage_disk_full_clear_error_properties_kept(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        skip(); /* needs a private mount namespace for a small tmpfs */
    }
    receiver r = {0};
    assert_int_equal(rx_open(&r, &broker, "devdisk", "rx-disk"), 0);
    rx_close(&r);
    assert_int_equal(kb_stop(&broker) == -1, 0);

    /* The outbox lives on a 1 MiB tmpfs mounted in the driver's own mount namespace. */
    char mnt[300], cfg[300], extra[400];
    kb_path(&broker, "small", mnt, sizeof mnt);
    assert_int_equal(mkdir(mnt, 0700), 0);
    snprintf(extra, sizeof extra, "\"outbox\": \"%s/devdisk.db\"", mnt);
    /* kb_device_config puts its own "outbox" first; write the whole file instead. */
    snprintf(cfg, sizeof cfg, "%s/devdisk-small.json", broker.dir);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"cloud\": {\"host\": \"127.0.0.1\", \"port\": %u, \"device_id\": \"devdisk\","
            " \"ca\": \"%s/ca.pem\", \"cert\": \"%s/devdisk.pem\", \"key\": \"%s/devdisk.key\","
            " %s, \"backoff_min_ms\": 50, \"backoff_max_ms\": 300}}\n",
            broker.port, broker.dir, broker.dir, broker.dir, extra);
    fclose(f);
    char script[1500], bin[400], log[400];
    snprintf(bin, sizeof bin, "%s/bin/keel-cloudlink", kf_build_dir());
    snprintf(script, sizeof script,
             "mount --make-rprivate / 2>/dev/null; "
             "mount -t tmpfs -o size=1m keel-test %s && exec %s --config %s"
             " --report '{\"firmware\":\"1.2.3\"}' --count 100000 --pad 2000 --batch 10",
             mnt, bin, cfg);
    snprintf(log, sizeof log, "%s.log", cfg);
    /* Propagation is made private inside the script: where "/" is not a mount point (a
     * chroot) that step fails harmlessly, while unshare's own --propagation would abort. */
    char *argv[] = {"unshare", "-m", "--propagation", "unchanged", "sh", "-c", script, NULL};
    static kf_proc d;
    assert_int_equal(kf_spawn(&d, "keel-cloudlink", argv, log), 0);
    /* A clear error, and the process carries on. */
    assert_int_equal(kf_wait_log(&d, "KEEL_CLOUD_ERR_DISK_FULL", 30000), 0);
    assert_true(kf_running(&d));
    uint64_t accepted = driver_accepted(&d);
    assert_true(accepted > 10);

    /* Back online: the properties queued before the disk filled, and every accepted
     * message, arrive. */
    assert_int_equal(kb_start(&broker), 0);
    assert_int_equal(rx_open(&r, &broker, "devdisk", "rx-disk"), 0);
    assert_true(rx_wait_reported(&r, "\"firmware\":\"1.2.3\"", 30000));
    bool ok = rx_wait_last(&r, accepted, &d, 60000);
    if (!ok) {
        kf_dump_log(&d, 20);
    }
    assert_true(ok);
    check_clean(&r);
    kf_stop(&d, 3000);
    rx_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outage_broker_restart_loses_nothing),
        cmocka_unit_test(test_outage_sigkill_link_process_loses_nothing),
        cmocka_unit_test(test_outage_disk_full_clear_error_properties_kept),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/* `keel cloud` against a real broker and a running device: watch, set, call, deploy, and the
 * exit codes a script relies on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "receiver.h"

static kb_broker broker;
static kf_proc device;
static char conn[400]; /* operator config file for --config */

static int group_setup(void **state)
{
    (void)state;
    if (kb_init(&broker, "keel", NULL) != 0 || kb_client(&broker, "dev1") != 0 ||
        kb_client(&broker, "dev2") != 0 || kb_client(&broker, "operator") != 0 ||
        kb_start(&broker) != 0) {
        return -1;
    }
    snprintf(conn, sizeof conn, "%s/operator.json", broker.dir);
    FILE *f = fopen(conn, "w");
    if (!f) {
        return -1;
    }
    fprintf(f,
            "{\"host\": \"127.0.0.1\", \"port\": %u, \"prefix\": \"keel\", \"ca\": \"%s/ca.pem\","
            " \"cert\": \"%s/operator.pem\", \"key\": \"%s/operator.key\"}\n",
            broker.port, broker.dir, broker.dir, broker.dir);
    fclose(f);
    char cfg[300];
    if (kb_device_config(&broker, "dev1", NULL, cfg, sizeof cfg) != 0 ||
        driver_start(&device, cfg, NULL, "--ack-desired", NULL) != 0) {
        return -1;
    }
    return kf_wait_log(&device, "connected", 10000);
}

static int group_teardown(void **state)
{
    (void)state;
    kf_stop(&device, 3000);
    kb_stop(&broker);
    return 0;
}

/* Runs `keel cloud ARGS... --config conn`; returns the exit code, log path in *log. */
static int keel(const char *log, ...)
{
    static char bin[400];
    snprintf(bin, sizeof bin, "%s/bin/keel", kf_build_dir());
    char *argv[24] = {bin, "cloud"};
    int n = 2;
    va_list ap;
    va_start(ap, log);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 20) {
        argv[n++] = (char *)a;
    }
    va_end(ap);
    argv[n++] = "--config";
    argv[n++] = conn;
    argv[n] = NULL;
    static kf_proc p;
    if (kf_spawn(&p, "keel", argv, log) != 0) {
        return -1;
    }
    int st = kf_wait_exit(&p, 30000);
    return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        return strdup("");
    }
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void logpath(char *buf, size_t cap, const char *name)
{
    static int seq;
    snprintf(buf, cap, "%s/cli-%s-%d.log", broker.dir, name, ++seq);
}

static void test_cli_set_reaches_device_bad_json_usage_error(void **state)
{
    (void)state;
    char log[400];
    logpath(log, sizeof log, "set");
    assert_int_equal(keel(log, "set", "--device", "dev1", "{\"interval\":7}", NULL), 0);
    assert_non_null(strstr(slurp(log), "dev1: desired version 1"));
    assert_int_equal(kf_wait_log(&device, "desired 1 {\"interval\":7,\"$version\":1}", 10000), 0);
    logpath(log, sizeof log, "set2");
    assert_int_equal(keel(log, "set", "--device", "dev1", "{\"interval\":null,\"mode\":2}", NULL),
                     0);
    assert_int_equal(kf_wait_log(&device, "desired 2 {\"mode\":2,\"$version\":2}", 10000), 0);
    /* Not JSON: a usage error, nothing sent. */
    logpath(log, sizeof log, "setbad");
    assert_int_equal(keel(log, "set", "--device", "dev1", "{nope", NULL), 2);
}

static void test_cli_call_answers_and_times_out(void **state)
{
    (void)state;
    char log[400];
    logpath(log, sizeof log, "call");
    assert_int_equal(keel(log, "call", "--device", "dev1", "blink", "{\"times\":2}", NULL), 0);
    assert_non_null(strstr(slurp(log), "200 {\"method\":\"blink\",\"echo\":{\"times\":2}}"));
    /* dev2 is not running: a timeout, exit 4. */
    logpath(log, sizeof log, "call2");
    assert_int_equal(keel(log, "call", "--device", "dev2", "blink", "--timeout", "1", NULL), 4);
}

static void test_cli_watch_counts_telemetry(void **state)
{
    (void)state;
    char cfg[300];
    assert_int_equal(kb_device_config(&broker, "dev2", NULL, cfg, sizeof cfg), 0);
    char log[400];
    logpath(log, sizeof log, "watch");
    static char bin[400];
    snprintf(bin, sizeof bin, "%s/bin/keel", kf_build_dir());
    char *argv[] = {bin,  "cloud",     "watch", "--device", "dev2", "--count",
                    "10", "--timeout", "30",    "--config", conn,   NULL};
    static kf_proc w;
    assert_int_equal(kf_spawn(&w, "keel-watch", argv, log), 0);
    assert_int_equal(kf_wait_log(&w, "watching dev2", 10000), 0);
    static kf_proc d2;
    assert_int_equal(driver_start(&d2, cfg, NULL, "--count", "10", NULL), 0);
    int st = kf_wait_exit(&w, 30000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_non_null(strstr(slurp(log), "dev2 telemetry id=10 {\"n\":10"));
    kf_stop(&d2, 3000);
}

static void test_cli_deploy_group_sets_manifest_url(void **state)
{
    (void)state;
    char group[400];
    snprintf(group, sizeof group, "%s/group.txt", broker.dir);
    FILE *f = fopen(group, "w");
    assert_non_null(f);
    fprintf(f, "# building A\ndev1\n  dev2  # spare\n\n");
    fclose(f);
    char log[400];
    logpath(log, sizeof log, "deploy");
    assert_int_equal(keel(log, "deploy", "--group", group, "--manifest",
                          "https://updates.example/r/1.4.0/manifest.json", NULL),
                     0);
    assert_non_null(strstr(slurp(log), "2 device(s), 0 failed"));
    assert_int_equal(kf_wait_log(&device,
                                 "\"update\":{\"manifest_url\":\"https://updates.example/r/1.4.0/",
                                 10000),
                     0);
    logpath(log, sizeof log, "deploybad");
    assert_int_equal(keel(log, "deploy", "--device", "dev1", "--manifest", "ftp://x", NULL), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_set_reaches_device_bad_json_usage_error),
        cmocka_unit_test(test_cli_call_answers_and_times_out),
        cmocka_unit_test(test_cli_watch_counts_telemetry),
        cmocka_unit_test(test_cli_deploy_group_sets_manifest_url),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

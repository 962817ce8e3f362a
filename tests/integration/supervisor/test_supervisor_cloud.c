/* keeld with its cloud link to a real TLS mosquitto (tests/fixture/broker.h): an app's
 * telemetry reaches the operator through keeld's durable outbox, and a crash report's summary
 * follows it. The operator listens with mosquitto_sub on a persistent session created before
 * keeld starts, so nothing published in between is missed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>
#include <sys/wait.h>

#include "broker.h"
#include "keel/image.h"
#include "nginx_site.h"
#include "world.h"

static sv_world W;
static kb_broker B;
static char sub_base[1200];
static char keydir[300];
static kf_proc nginx;
static uint16_t http_port;

static int setup(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        return 0; /* the tests skip themselves */
    }
    if (kb_init(&B, "keel", NULL) || kb_client(&B, "dev1") || kb_client(&B, "operator") ||
        kb_start(&B)) {
        return -1;
    }
    char cfg[600];
    if (kb_device_config(&B, "dev1", NULL, cfg, sizeof cfg) < 0) {
        return -1;
    }
    /* the "cloud" member of the file kb wrote, inside keeld's config */
    FILE *f = fopen(cfg, "r");
    static char text[2048];
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) {
        fclose(f);
    }
    text[n] = '\0';
    char *open = strchr(text, '{'), *close = strrchr(text, '}');
    if (!open || !close) {
        return -1;
    }
    *close = '\0';
    snprintf(sub_base, sizeof sub_base,
             "mosquitto_sub -h 127.0.0.1 -p %u --cafile %s/ca.pem --cert %s/operator.pem "
             "--key %s/operator.key -i keel-sv-op -c -q 1 -t 'keel/dev1/#'",
             B.port, B.dir, B.dir, B.dir);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "%s -E", sub_base); /* subscribe, keep the session, exit */
    if (system(cmd) != 0) {
        return -1;
    }
    snprintf(keydir, sizeof keydir, "%s", kf_tmpdir("sv-cloud-keys"));
    char pp[400], sp[400], extra[2600];
    keel_image_pubkey pub;
    keel_image_seckey sec;
    keel_image_error kerr;
    snprintf(pp, sizeof pp, "%s/dev.pub", keydir);
    snprintf(sp, sizeof sp, "%s/dev.sec", keydir);
    if (keel_image_keygen(&pub, &sec) != KEEL_IMAGE_OK ||
        keel_image_key_save(pp, sp, &pub, &sec, &kerr) != KEEL_IMAGE_OK) {
        return -1;
    }
    snprintf(extra, sizeof extra, "%s, \"trusted_keys\": [\"%s\"], \"hardware\": \"keel-gw\", "
             "\"method_timeout_ms\": 1500",
             open + 1, pp);
    if (sv_world_init(&W, "supervisor-cloud", extra) < 0) {
        return -1;
    }
    const char *st = sv_world_store(&W);
    if (sv_world_package(st, "reporter", "sv_sample",
                         "\"capabilities\": {\"cloud\": {\"telemetry\": true}}") < 0 ||
        sv_world_package(st, "crasher", "sv_evil", "\"args\": [\"abort\"], \"restart\": \"never\"") <
            0 ||
        sv_world_package(st, "methodist", "sv_sample",
                         "\"capabilities\": {\"cloud\": {\"methods\": true}}") < 0 ||
        sv_world_package(st, "mute", "sv_sample", "") < 0) {
        return -1;
    }
    /* release 2.0.0 of deployee, served by nginx as keel release make lays it out; 1.0.0 is
     * installed signed once keeld runs (a deployment goes into its update slots) */
    char pkgdir[600], site[600], cmd2[8192], v1dir[600];
    snprintf(pkgdir, sizeof pkgdir, "%s/v2", W.root);
    snprintf(v1dir, sizeof v1dir, "%s/v1", W.root);
    snprintf(site, sizeof site, "%s/site", W.root);
    if (mkdir(pkgdir, 0755) < 0 || mkdir(site, 0755) < 0 || mkdir(v1dir, 0755) < 0 ||
        sv_world_package_version(pkgdir, "deployee", "sv_sample", "2.0.0", "") < 0 ||
        sv_world_package_version(v1dir, "deployee", "sv_sample", "1.0.0", "") < 0) {
        return -1;
    }
    snprintf(cmd2, sizeof cmd2, "%s/bin/keel app pack --key %s %s/deployee %s/deployee.kpkg "
             ">/dev/null", kf_build_dir(), sp, v1dir, v1dir);
    if (system(cmd2) != 0) {
        return -1;
    }
    snprintf(cmd2, sizeof cmd2,
             "%s/bin/keel app pack --key %s %s/deployee %s/deployee.kpkg >/dev/null && "
             "%s/bin/keel release make --key %s --hardware keel-gw --out %s %s/deployee.kpkg "
             ">/dev/null",
             kf_build_dir(), sp, pkgdir, pkgdir, kf_build_dir(), sp, site, pkgdir);
    if (system(cmd2) != 0) {
        return -1;
    }
    /* the same package released for other hardware: a device must refuse it */
    snprintf(cmd2, sizeof cmd2,
             "mkdir -p %s/other && %s/bin/keel release make --key %s --hardware other-hw "
             "--serial 2 --out %s/other %s/deployee.kpkg >/dev/null",
             site, kf_build_dir(), sp, site, pkgdir);
    if (system(cmd2) != 0 || nginx_site_start(&nginx, W.root, site, &http_port) < 0) {
        return -1;
    }
    if (sv_world_start(&W) < 0) {
        return -1;
    }
    char req[800], out[1024];
    snprintf(req, sizeof req, "install %s/deployee.kpkg", v1dir);
    if (sv_world_ctl(&W, req, out, sizeof out) != 0 ||
        sv_world_ctl(&W, "start deployee", out, sizeof out) != 0) {
        fprintf(stderr, "installing deployee 1.0.0: %s\n", out);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        return 0;
    }
    kf_stop(&W.keeld, 5000);
    kb_stop(&B);
    return 0;
}

static void test_app_telemetry_and_crash_summary_reach_the_operator(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("skipped: the sandbox needs root\n");
        skip();
    }
    assert_true(sv_world_wait(&W, "logs reporter 50", "sample: telemetry KEEL_APP_OK", 10000));
    assert_true(sv_world_wait(&W, "crashes crasher 1", "SIGABRT", 10000));
    assert_int_equal(kf_wait_log(&W.keeld, "cloud: connected", 10000), 0);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "%s -C 2 -W 20 -v", sub_base);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    static char got[8192];
    size_t n = fread(got, 1, sizeof got - 1, p);
    got[n] = '\0';
    pclose(p);
    if (!strstr(got, "\"boot\":1") || !strstr(got, "keel_crash")) {
        kf_dump_log(&W.keeld, 40);
        fail_msg("operator got:\n%s", got);
    }
    assert_non_null(strstr(got, "\"app\":\"crasher\""));
    assert_non_null(strstr(got, "\"signal\":\"SIGABRT\""));
    assert_non_null(strstr(got, "keel/dev1/"));
}

static void test_cloud_deployment_installs_and_starts_the_new_version(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("skipped: the sandbox needs root\n");
        skip();
    }
    assert_true(sv_world_wait(&W, "list", "deployee 1.0.0 running", 10000));
    char cmd[2000];
    snprintf(cmd, sizeof cmd,
             "%s/bin/keel cloud deploy --manifest http://127.0.0.1:%u/manifest.kman "
             "--device dev1 --host 127.0.0.1 --port %u --ca %s/ca.pem --cert %s/operator.pem "
             "--key %s/operator.key >/dev/null 2>&1",
             kf_build_dir(), http_port, B.port, B.dir, B.dir, B.dir);
    assert_int_equal(system(cmd), 0);
    if (!sv_world_wait(&W, "list", "deployee 2.0.0 running", 20000)) {
        kf_dump_log(&W.keeld, 30);
        fail();
    }
    assert_true(sv_world_wait(&W, "logs deployee 50", "trial passed: health confirmed", 10000));
    assert_int_equal(kf_wait_log(&W.keeld, "manifest.kman: installed", 2000), 0);

    /* a release for another device's hardware is refused, and the app keeps running */
    snprintf(cmd, sizeof cmd,
             "%s/bin/keel cloud deploy --manifest http://127.0.0.1:%u/other/manifest.kman "
             "--device dev1 --host 127.0.0.1 --port %u --ca %s/ca.pem --cert %s/operator.pem "
             "--key %s/operator.key >/dev/null 2>&1",
             kf_build_dir(), http_port, B.port, B.dir, B.dir, B.dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(kf_wait_log(&W.keeld, "refused: for hardware other-hw", 10000), 0);
    assert_true(sv_world_wait(&W, "list", "deployee 2.0.0 running", 2000));
}

/* `keel cloud call` as the operator: its output line into out, its exit code returned. */
static int cloud_call(const char *method, const char *body, char *out, size_t cap)
{
    char cmd[2000];
    snprintf(cmd, sizeof cmd,
             "%s/bin/keel cloud call --device dev1 --timeout 10 --host 127.0.0.1 --port %u "
             "--ca %s/ca.pem --cert %s/operator.pem --key %s/operator.key %s '%s' 2>&1",
             kf_build_dir(), B.port, B.dir, B.dir, B.dir, method, body);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_cloud_methods_reach_the_app_and_its_answer_returns(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("skipped: the sandbox needs root\n");
        skip();
    }
    assert_int_equal(kf_wait_log(&W.keeld, "cloud: connected", 10000), 0);
    assert_true(sv_world_wait(&W, "logs methodist 50", "sample: started", 10000));
    assert_true(sv_world_wait(&W, "logs mute 50", "sample: started", 10000));
    char out[4096];
    /* the app's own answer, body and status */
    int rc = cloud_call("methodist.echo", "{\"x\":42}", out, sizeof out);
    if (rc != 0 || !strstr(out, "200 {\"x\":42}")) {
        kf_dump_log(&W.keeld, 30);
        fail_msg("echo: rc %d: %s", rc, out);
    }
    assert_true(sv_world_wait(&W, "logs methodist 50", "method echo call", 2000));
    rc = cloud_call("methodist.nope", "{}", out, sizeof out);
    assert_int_equal(rc, 6);
    assert_non_null(strstr(out, "404 {\"error\":\"no such method\"}"));
    /* the app takes the call and never answers: keeld answers 504 after method_timeout_ms */
    rc = cloud_call("methodist.slow", "{}", out, sizeof out);
    assert_int_equal(rc, 6);
    assert_non_null(strstr(out, "504 "));
    /* keeld's own refusals */
    rc = cloud_call("ghost.echo", "{}", out, sizeof out);
    assert_int_equal(rc, 6);
    assert_non_null(strstr(out, "404 {\"error\":\"no such app\"}"));
    rc = cloud_call("echo", "{}", out, sizeof out);
    assert_int_equal(rc, 6);
    assert_non_null(strstr(out, "404 "));
    rc = cloud_call("mute.echo", "{}", out, sizeof out);
    assert_int_equal(rc, 6);
    assert_non_null(strstr(out, "403 "));
    assert_false(sv_world_wait(&W, "logs mute 50", "method", 200)); /* it never heard of it */
    /* the app still answers after a timed-out call */
    rc = cloud_call("methodist.echo", "[1,2]", out, sizeof out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "200 [1,2]"));
    /* the app ends with the call in hand: 503 at once, not a 504 later */
    rc = cloud_call("methodist.quit", "{}", out, sizeof out);
    assert_int_equal(rc, 6);
    assert_non_null(strstr(out, "503 {\"error\":\"the app stopped before answering\"}"));
    assert_true(sv_world_wait(&W, "list", "methodist 1.0.0 stopped", 5000));
    rc = cloud_call("methodist.echo", "{}", out, sizeof out); /* and while it is stopped */
    assert_int_equal(rc, 6);
    assert_non_null(strstr(out, "503 {\"error\":\"the app is not running\"}"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_app_telemetry_and_crash_summary_reach_the_operator),
        cmocka_unit_test(test_cloud_deployment_installs_and_starts_the_new_version),
        cmocka_unit_test(test_cloud_methods_reach_the_app_and_its_answer_returns),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

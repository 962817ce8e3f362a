/* Trials survive keeld: an update's versions live in the update agent's A/B slots with a
 * durable state record, so keeld killed with SIGKILL mid-trial and started again continues the
 * trial with its confirm deadline still counting from the first start, or completes the revert
 * if the deadline passed while it was down; a confirmed version stays confirmed; and a store
 * directory left out of step with the slots (as a kill between unpacking and swapping would)
 * is put back to the version the agent chose, never run half-installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keel/image.h"
#include "world.h"

#define TRIAL_MS 6000

static sv_world W;
static char keydir[300];
static char out[8192];

#define NEED_ROOT()                                                                              \
    do {                                                                                         \
        if (geteuid() != 0) {                                                                    \
            print_message("skipped: the sandbox needs root\n");                                  \
            skip();                                                                              \
        }                                                                                        \
    } while (0)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        return 0;
    }
    snprintf(keydir, sizeof keydir, "%s", kf_tmpdir("sv-trial-keys"));
    char pp[400], sp[400], extra[1000];
    keel_image_pubkey pub;
    keel_image_seckey sec;
    keel_image_error kerr;
    snprintf(pp, sizeof pp, "%s/dev.pub", keydir);
    snprintf(sp, sizeof sp, "%s/dev.sec", keydir);
    if (keel_image_keygen(&pub, &sec) != KEEL_IMAGE_OK ||
        keel_image_key_save(pp, sp, &pub, &sec, &kerr) != KEEL_IMAGE_OK) {
        return -1;
    }
    snprintf(extra, sizeof extra, "\"trusted_keys\": [\"%s\"], \"trial_ms\": %d", pp, TRIAL_MS);
    if (sv_world_init(&W, "supervisor-trial", extra) < 0) {
        return -1;
    }
    return sv_world_start(&W);
}

static int teardown(void **state)
{
    (void)state;
    if (geteuid() == 0) {
        kf_stop(&W.keeld, 5000);
    }
    return 0;
}

static int ctl(const char *fmt, const char *arg)
{
    char req[1000];
    snprintf(req, sizeof req, fmt, arg);
    return sv_world_ctl(&W, req, out, sizeof out);
}

/* name@version of the test app `exe` with manifest members `json`, signed; the image path. */
static const char *signed_package(const char *name, const char *exe, const char *version,
                                  const char *json)
{
    static char imgs[8][700];
    static int next;
    assert_true(next < 8);
    char *img = imgs[next++];
    char dir[512], cmd[2048];
    snprintf(dir, sizeof dir, "%s/pkg-%s-%s", W.root, name, version);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(sv_world_package_version(dir, name, exe, version, json), 0);
    snprintf(img, sizeof imgs[0], "%s.kpkg", dir);
    snprintf(cmd, sizeof cmd, "%s/bin/keel app pack --key %s/dev.sec %s/%s %s >/dev/null",
             kf_build_dir(), keydir, dir, name, img);
    assert_int_equal(system(cmd), 0);
    return img;
}

/* keeld dies as from a power cut or a bug: no chance to tidy up. */
static void kill9_keeld(void)
{
    assert_int_equal(kill(W.keeld.pid, SIGKILL), 0);
    assert_true(kf_wait_exit(&W.keeld, 5000) >= 0);
}

/* Whether the running keeld's own log has `needle` now (no waiting: for what must not be). */
static bool log_has(const char *needle)
{
    static char text[1 << 18];
    FILE *f = fopen(W.keeld.log, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    return strstr(text, needle) != NULL;
}

static void restart_keeld(void)
{
    if (sv_world_start(&W) != 0) {
        fail_msg("keeld did not come back");
    }
}

static void install_good_v1(const char *name)
{
    assert_int_equal(ctl("install %s", signed_package(name, "sv_sample", "1.0.0", "")), 0);
    assert_null(strstr(out, "on trial"));
    assert_int_equal(ctl("start %s", name), 0);
    char want[200], logs[100];
    snprintf(logs, sizeof logs, "logs %s 50", name);
    assert_true(sv_world_wait(&W, logs, "sample: health confirmed", 5000));
    assert_int_equal(ctl("stop %s", name), 0);
    snprintf(want, sizeof want, "%s 1.0.0 stopped", name);
    assert_true(sv_world_wait(&W, "list", want, 5000));
}

/* The value of `key` in a "key value" answer (keel app status NAME), or NULL. */
static const char *field(const char *text, const char *key)
{
    static char val[200];
    char pat[80];
    snprintf(pat, sizeof pat, "\n%s ", key);
    const char *p = strstr(text, pat);
    if (!p) {
        return NULL;
    }
    p += strlen(pat);
    size_t n = strcspn(p, "\n");
    snprintf(val, sizeof val, "%.*s", (int)n, p);
    return val;
}

/* What `keel app list` prints for `name` (its table row), into row. */
static void cli_list_row(const char *name, char *row, size_t cap)
{
    char cmd[800], line[400];
    snprintf(cmd, sizeof cmd, "%s/bin/keel app list --socket %s", kf_build_dir(), W.sock);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    bool header = false;
    row[0] = '\0';
    while (fgets(line, sizeof line, p)) {
        header |= strstr(line, "SLOT") && strstr(line, "TRIAL") && strstr(line, "LEFT_S") &&
                  strstr(line, "CONFIRMED") && strstr(line, "REVERTED_FROM");
        if (strncmp(line, name, strlen(name)) == 0 && line[strlen(name)] == ' ') {
            snprintf(row, cap, "%s", line);
        }
    }
    assert_int_equal(pclose(p), 0);
    assert_true(header);
    assert_true(row[0]);
}

/* The row's whitespace-separated columns from the 8th on: slot trial left_s confirmed
 * reverted_from. */
static void row_update_columns(const char *row, char cols[5][32])
{
    char skip[8][64];
    int n = sscanf(row, "%63s %63s %63s %63s %63s %63s %63s %31s %31s %31s %31s %31s", skip[0],
                   skip[1], skip[2], skip[3], skip[4], skip[5], skip[6], cols[0], cols[1],
                   cols[2], cols[3], cols[4]);
    assert_int_equal(n, 12);
}

static void test_trial_continues_across_kill9_and_its_deadline_keeps_counting(void **state)
{
    (void)state;
    NEED_ROOT();
    install_good_v1("steady");
    /* confirmed 1.0.0 runs from slot A, no trial, nothing reverted */
    assert_int_equal(ctl("status %s", "steady"), 0);
    assert_string_equal(field(out, "slot"), "A");
    assert_string_equal(field(out, "trial"), "no");
    assert_string_equal(field(out, "confirmed"), "yes");
    assert_string_equal(field(out, "reverted_from"), "-");
    assert_string_equal(field(out, "deployment"), "none");
    /* 2.0.0 runs but never confirms its health ("badptr" idles after its checks) */
    assert_int_equal(ctl("install %s", signed_package("steady", "sv_evil", "2.0.0",
                                                      "\"args\": [\"badptr\"]")),
                     0);
    assert_non_null(strstr(out, "on trial"));
    assert_int_equal(ctl("start %s", "steady"), 0);
    assert_true(sv_world_wait(&W, "list", "steady 2.0.0 running", 5000));
    int64_t t0 = now_ms(); /* the trial's first start (give or take a poll) */
    assert_true(sv_world_wait(&W, "logs steady 50", "badptr: alive", 5000));

    /* the operator sees the trial: slot B, one start of the allowed ones used, the deadline
     * counting down, not confirmed */
    assert_int_equal(ctl("status %s", "steady"), 0);
    assert_string_equal(field(out, "version"), "2.0.0");
    assert_string_equal(field(out, "slot"), "B");
    assert_string_equal(field(out, "trial"), "yes");
    assert_string_equal(field(out, "confirmed"), "no");
    assert_non_null(field(out, "trial_starts"));
    assert_int_equal(strncmp(field(out, "trial_starts"), "1/", 2), 0);
    long left = strtol(field(out, "trial_left_ms"), NULL, 10);
    assert_true(left > 0 && left <= TRIAL_MS);
    char row[400], cols[5][32];
    cli_list_row("steady", row, sizeof row);
    row_update_columns(row, cols);
    assert_string_equal(cols[0], "B");
    assert_int_equal(strncmp(cols[1], "1/", 2), 0);
    assert_true(strtod(cols[2], NULL) > 0.0 && strtod(cols[2], NULL) <= TRIAL_MS / 1000.0);
    assert_string_equal(cols[3], "no");
    assert_string_equal(cols[4], "-");

    /* halfway through the trial keeld dies and comes back */
    while (now_ms() - t0 < TRIAL_MS / 2) {
        assert_true(sv_world_wait(&W, "list", "steady 2.0.0 running", 100));
    }
    kill9_keeld();
    int64_t t_kill = now_ms();
    restart_keeld();
    int64_t t_up = now_ms();
    print_message("keeld back %lld ms after the kill, %lld ms into the trial\n",
                  (long long)(t_up - t_kill), (long long)(t_up - t0));

    /* The trial gives up at its first start's deadline (t0 + TRIAL_MS), not a fresh one from
     * the restart (t_kill + TRIAL_MS or later). Either keeld came back in time and 2.0.0 runs
     * on until the deadline, or it came back too late (a slow machine) and completes the
     * revert at once; both are right, and both end at the first deadline or, if keeld was
     * still down then, as soon as it is up. */
    const char *gave_up = "steady: trial: no health confirmation"; /* at the deadline */
    const char *at_start = "trial of 2.0.0 failed (no health confirmation in time)";
    int64_t until = now_ms() + TRIAL_MS + 5000;
    while (!log_has(gave_up) && !log_has(at_start)) {
        assert_true(now_ms() < until);
        (void)sv_world_wait(&W, "list", "steady 1.0.0", 20); /* a short poll interval */
    }
    int64_t took = now_ms() - t0;
    print_message("trial given up %lld ms after its first start (deadline %d ms)\n",
                  (long long)took, TRIAL_MS);
    if (log_has("started steady 2.0.0")) {
        assert_true(log_has("(on trial)")); /* came back in time: the trial went on */
    }
    assert_true(took >= TRIAL_MS - 1000); /* t0 was seen a little after the start */
    int64_t deadline = TRIAL_MS > t_up - t0 ? TRIAL_MS : t_up - t0;
    assert_true(took < deadline + 1500);            /* the first deadline, or keeld's return */
    assert_true(took < (t_kill - t0) + TRIAL_MS);   /* never a fresh deadline */
    assert_true(sv_world_wait(&W, "list", "steady 1.0.0 running", 10000));
    assert_int_equal(kf_wait_log(&W.keeld, "trial of 2.0.0 failed (no health confirmation in "
                                           "time): reverted to 1.0.0", 1000), 0);
    assert_true(sv_world_wait(&W, "logs steady 50", "sample: health confirmed", 5000));

    /* and the operator sees the revert: slot A again, confirmed, reverted from 2.0.0 */
    assert_int_equal(ctl("status %s", "steady"), 0);
    assert_string_equal(field(out, "slot"), "A");
    assert_string_equal(field(out, "trial"), "no");
    assert_string_equal(field(out, "confirmed"), "yes");
    assert_string_equal(field(out, "reverted_from"), "2.0.0");
    assert_string_equal(field(out, "trial_left_ms"), "-1");
    cli_list_row("steady", row, sizeof row);
    row_update_columns(row, cols);
    assert_string_equal(cols[0], "A");
    assert_string_equal(cols[1], "-");
    assert_string_equal(cols[2], "-");
    assert_string_equal(cols[3], "yes");
    assert_string_equal(cols[4], "2.0.0");
}

static void test_revert_completes_when_the_deadline_passed_while_keeld_was_down(void **state)
{
    (void)state;
    NEED_ROOT();
    install_good_v1("sleeper");
    assert_int_equal(ctl("install %s", signed_package("sleeper", "sv_evil", "2.0.0",
                                                      "\"args\": [\"badptr\"]")),
                     0);
    assert_int_equal(ctl("start %s", "sleeper"), 0);
    assert_true(sv_world_wait(&W, "list", "sleeper 2.0.0 running", 5000));
    int64_t t0 = now_ms();
    kill9_keeld();
    /* keeld stays down past the deadline: the trial is over whatever the app did */
    while (now_ms() - t0 < TRIAL_MS + 200) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    restart_keeld();
    assert_int_equal(kf_wait_log(&W.keeld, "trial of 2.0.0 failed (no health confirmation in "
                                           "time): reverted to 1.0.0", 5000), 0);
    assert_true(sv_world_wait(&W, "list", "sleeper 1.0.0 running", 5000));
    /* 2.0.0 never ran under the new keeld */
    assert_false(log_has("started sleeper 2.0.0"));
}

static void test_confirmed_update_stays_confirmed_after_kill9(void **state)
{
    (void)state;
    NEED_ROOT();
    install_good_v1("keeper");
    assert_int_equal(ctl("install %s", signed_package("keeper", "sv_sample", "2.0.0", "")), 0);
    assert_non_null(strstr(out, "on trial"));
    assert_int_equal(ctl("start %s", "keeper"), 0);
    assert_true(sv_world_wait(&W, "logs keeper 50", "trial passed: health confirmed", 5000));
    kill9_keeld();
    restart_keeld();
    assert_int_equal(kf_wait_log(&W.keeld, "started keeper 2.0.0", 5000), 0);
    assert_false(log_has("(on trial)"));
    assert_true(sv_world_wait(&W, "list", "keeper 2.0.0 running", 5000));
}

static void test_store_out_of_step_with_the_slots_is_put_back(void **state)
{
    (void)state;
    NEED_ROOT();
    install_good_v1("mender");
    /* a trial that crash-loops: reverted through the agent */
    assert_int_equal(ctl("install %s", signed_package("mender", "sv_evil", "2.0.0",
                                                      "\"args\": [\"null\"]")),
                     0);
    assert_int_equal(ctl("start %s", "mender"), 0);
    assert_true(sv_world_wait(&W, "logs mender 80", "reverted to 1.0.0", 10000));
    assert_true(sv_world_wait(&W, "list", "mender 1.0.0 running", 5000));
    kill9_keeld();
    /* as if keeld had died between unpacking 2.0.0 and the agent's revert: the store holds the
     * failed version, and a staging copy lies beside it */
    char cmd[2000];
    snprintf(cmd, sizeof cmd,
             "rm -rf %s/mender && mkdir %s/mender && cd %s/pkg-mender-2.0.0/mender && "
             "cp -a . %s/mender/ && cp %s/pkg-mender-2.0.0.kpkg %s/mender/.keel-image && "
             "mkdir -p %s/.stage-mender && echo junk > %s/.stage-mender/x",
             sv_world_store(&W), sv_world_store(&W), W.root, sv_world_store(&W), W.root,
             sv_world_store(&W), sv_world_store(&W), sv_world_store(&W));
    assert_int_equal(system(cmd), 0);
    restart_keeld();
    /* the agent's confirmed slot wins: 1.0.0 is unpacked again and runs, verified */
    assert_true(sv_world_wait(&W, "list", "mender 1.0.0 running", 5000));
    assert_true(sv_world_wait(&W, "logs mender 50", "sample: health confirmed", 5000));
    assert_false(log_has("started mender 2.0.0"));
    snprintf(cmd, sizeof cmd, "%s/.stage-mender", sv_world_store(&W));
    assert_int_equal(access(cmd, F_OK), -1);
}

/* A signed "kind": "rt" package whose loader (a shell script) runs `body` after a boot line. */
static const char *signed_rt_package(const char *name, const char *version, const char *body)
{
    static char imgs[4][700];
    static int next;
    assert_true(next < 4);
    char *img = imgs[next++];
    char dir[600], path[800], cmd[2400];
    snprintf(dir, sizeof dir, "%s/rt-%s-%s", W.root, name, version);
    snprintf(cmd, sizeof cmd, "mkdir -p %s/bin", dir);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "%s/bin/run", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\necho \"loader: boot %s\"\n%s\n", version, body);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0755), 0);
    snprintf(path, sizeof path, "%s/app_manifest.json", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"schema\": 1, \"kind\": \"rt\", \"id\": \"%s\", \"name\": \"%s\", "
            "\"version\": \"%s\", \"exec\": \"bin/run\", \"heartbeat_ms\": 400}\n",
            sv_world_id(name), name, version);
    assert_int_equal(fclose(f), 0);
    snprintf(img, sizeof imgs[0], "%s.kpkg", dir);
    snprintf(cmd, sizeof cmd, "%s/bin/keel app pack --key %s/dev.sec %s %s >/dev/null",
             kf_build_dir(), keydir, dir, img);
    assert_int_equal(system(cmd), 0);
    return img;
}

#define RT_BEAT "while :; do printf . >&3; sleep 0.1; done"

static void test_rt_firmware_update_trial_reverts_and_confirms_through_the_agent(void **state)
{
    (void)state;
    NEED_ROOT();
    assert_int_equal(ctl("install %s", signed_rt_package("rtcore", "1.0.0", RT_BEAT)), 0);
    assert_null(strstr(out, "on trial"));
    assert_int_equal(ctl("start %s", "rtcore"), 0);
    assert_true(sv_world_wait(&W, "list", "rtcore 1.0.0 running", 5000));
    assert_int_equal(ctl("stop %s", "rtcore"), 0);
    assert_true(sv_world_wait(&W, "list", "rtcore 1.0.0 stopped", 5000));

    /* 2.0.0's loader fails at once: a crash loop on trial, reverted through the agent */
    assert_int_equal(ctl("install %s", signed_rt_package("rtcore", "2.0.0", "exit 3")), 0);
    assert_non_null(strstr(out, "on trial"));
    assert_int_equal(ctl("start %s", "rtcore"), 0);
    if (!sv_world_wait(&W, "logs rtcore 80", "trial of 2.0.0 failed (crashed during its trial): "
                       "reverted to 1.0.0", 10000)) {
        kf_dump_log(&W.keeld, 30);
        fail();
    }
    assert_true(sv_world_wait(&W, "list", "rtcore 1.0.0 running", 5000));
    assert_true(sv_world_wait(&W, "logs rtcore 10", "loader: boot 1.0.0", 5000));
    assert_int_equal(ctl("stop %s", "rtcore"), 0);
    assert_true(sv_world_wait(&W, "list", "rtcore 1.0.0 stopped", 5000));

    /* 3.0.0 beats steadily for half the trial window: confirmed, and it stays after a kill */
    assert_int_equal(ctl("install %s", signed_rt_package("rtcore", "3.0.0", RT_BEAT)), 0);
    assert_int_equal(ctl("start %s", "rtcore"), 0);
    assert_true(sv_world_wait(&W, "logs rtcore 80", "trial passed: health confirmed", TRIAL_MS));
    kill9_keeld();
    restart_keeld();
    assert_true(sv_world_wait(&W, "list", "rtcore 3.0.0 running", 5000));
    assert_false(log_has("(on trial)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trial_continues_across_kill9_and_its_deadline_keeps_counting),
        cmocka_unit_test(test_revert_completes_when_the_deadline_passed_while_keeld_was_down),
        cmocka_unit_test(test_confirmed_update_stays_confirmed_after_kill9),
        cmocka_unit_test(test_store_out_of_step_with_the_slots_is_put_back),
        cmocka_unit_test(test_rt_firmware_update_trial_reverts_and_confirms_through_the_agent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

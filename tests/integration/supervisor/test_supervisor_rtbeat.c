/* The RT core's heartbeat: a real-time component's loader (the sim-port program or the script
 * that starts QEMU) beats by writing any record, one byte is enough, to the socket keeld hands
 * it as $KEEL_APP_FD (fd 3). Two loaders here, small shell scripts: one that keeps beating
 * and must be left alone, one whose "firmware" stalls after a few beats and must be reported
 * hung (crash report with its last console lines) and restarted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "world.h"

static sv_world W;
static char out[16384];

/* A "kind": "rt" package whose loader runs `body` (shell) after a boot line. */
static int rt_package(const char *store, const char *name, const char *id, const char *body)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", store, name);
    if (mkdir(path, 0755) < 0) {
        return -1;
    }
    snprintf(path, sizeof path, "%s/%s/bin", store, name);
    if (mkdir(path, 0755) < 0) {
        return -1;
    }
    snprintf(path, sizeof path, "%s/%s/bin/run", store, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        return -1;
    }
    fprintf(f, "#!/bin/sh\necho \"loader: boot\"\n%s\n", body);
    if (fclose(f) != 0 || chmod(path, 0755) < 0) {
        return -1;
    }
    snprintf(path, sizeof path, "%s/%s/app_manifest.json", store, name);
    f = fopen(path, "w");
    if (!f) {
        return -1;
    }
    fprintf(f,
            "{\"schema\": 1, \"kind\": \"rt\", \"id\": \"%s\", \"name\": \"%s\", "
            "\"version\": \"1.0.0\", \"exec\": \"bin/run\", \"heartbeat_ms\": 400}\n",
            id, name);
    return fclose(f);
}

static int setup(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        return 0;
    }
    if (sv_world_init(&W, "supervisor-rtbeat", "\"backoff_initial_ms\": 10") < 0) {
        return -1;
    }
    const char *st = sv_world_store(&W);
    /* beats every 100 ms for ever */
    if (rt_package(st, "steady", "00000000-0000-4000-8000-00000000a001",
                   "while :; do printf . >&3; sleep 0.1; done") < 0 ||
        /* beats five times, then its firmware "stalls" (still running, silent) */
        rt_package(st, "stalling", "00000000-0000-4000-8000-00000000a002",
                   "for i in 1 2 3 4 5; do printf . >&3; sleep 0.1; done\n"
                   "echo \"loader: firmware stalled\"\nexec sleep 600") < 0) {
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

static void test_rt_loader_that_stops_beating_is_reported_hung_and_restarted(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("skipped: the sandbox needs root\n");
        skip();
    }
    /* the first report, then the restart: a second boot after it */
    if (!sv_world_wait(&W, "crashes stalling 1", "heartbeat missed", 10000)) {
        kf_dump_log(&W.keeld, 40);
        fail();
    }
    assert_int_equal(sv_world_ctl(&W, "crashes stalling 1", out, sizeof out), 0);
    assert_non_null(strstr(out, "SIGABRT"));
    assert_non_null(strstr(out, "loader: firmware stalled")); /* its last console lines */
    assert_true(sv_world_wait(&W, "logs stalling 100", "heartbeat missed (", 1000));
    char *first = strstr(out, "loader: boot");
    assert_non_null(first);
    /* restarted: the loader boots again after the report */
    assert_true(sv_world_wait(&W, "logs stalling 100", "crash report 1", 5000));
    bool again = false;
    for (int i = 0; i < 250 && !again; i++) {
        assert_int_equal(sv_world_ctl(&W, "logs stalling 100", out, sizeof out), 0);
        char *report = strstr(out, "crash report 1");
        again = report && strstr(report, "loader: boot");
        if (!again) {
            usleep(20000); /* polling a condition with a deadline (5 s) */
        }
    }
    assert_true(again);

    /* the loader that kept beating was never touched */
    assert_true(sv_world_wait(&W, "list", "steady", 1000));
    assert_int_equal(sv_world_ctl(&W, "crashes steady 1", out, sizeof out) < 0, 0);
    assert_null(strstr(out, "heartbeat missed"));
    assert_int_equal(sv_world_ctl(&W, "logs steady 100", out, sizeof out), 0);
    assert_null(strstr(out, "heartbeat missed"));
    assert_null(strstr(out, "crash report"));
    assert_true(sv_world_wait(&W, "list", "steady 1.0.0 running", 1000));
    assert_true(kf_running(&W.keeld));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rt_loader_that_stops_beating_is_reported_hung_and_restarted),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

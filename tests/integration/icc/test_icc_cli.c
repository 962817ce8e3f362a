/* `keel icc check` and `keel icc pair` as a user runs them: exit codes and messages for valid,
 * one-sided, mutual, malformed and missing manifests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <sys/wait.h>

#include "fixture.h"

static const char *dir;

static void write_file(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Runs keel with up to three file arguments (names in dir); returns the exit code. */
static int keel(kf_proc *p, const char *verb, const char *f1, const char *f2)
{
    char exe[512], a1[512], a2[512];
    snprintf(exe, sizeof exe, "%s/bin/keel", kf_build_dir());
    snprintf(a1, sizeof a1, "%s/%s", dir, f1);
    snprintf(a2, sizeof a2, "%s/%s", dir, f2 ? f2 : "");
    char *argv[] = {exe, "icc", (char *)verb, a1, f2 ? a2 : NULL, NULL};
    assert_int_equal(kf_spawn(p, "keel", argv, NULL), 0);
    int st = kf_wait_exit(p, 20000);
    assert_true(st >= 0 && WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void test_keel_icc_check_and_pair_exit_codes(void **state)
{
    (void)state;
    dir = kf_tmpdir("icc-cli");
    write_file("hl.json", "{\"schema\":1,\"id\":\"11111111-2222-3333-4444-555555555555\","
                          "\"name\":\"hvac\",\"version\":\"1.0.0\",\"kind\":\"app\","
                          "\"capabilities\":{\"intercore\":"
                          "[\"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\"]}}");
    write_file("rt.json", "{\"schema\":1,\"id\":\"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\","
                          "\"name\":\"sensor-rt\",\"version\":\"0.2.0\",\"kind\":\"rt\"}");
    write_file("rt2.json", "{\"schema\":1,\"id\":\"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\","
                           "\"name\":\"sensor-rt\",\"version\":\"0.2.1\",\"kind\":\"rt\","
                           "\"capabilities\":{\"intercore\":"
                           "[\"11111111-2222-3333-4444-555555555555\"]}}");
    write_file("bad.json", "{\"schema\":1,\"id\":\"nope\",\"name\":\"x\",\"version\":\"1.0.0\","
                           "\"kind\":\"rt\"}");
    static kf_proc p[6];
    assert_int_equal(keel(&p[0], "check", "hl.json", NULL), 0);
    assert_int_equal(kf_wait_log(&p[0], "hvac 1.0.0 (app)", 1000), 0);
    assert_int_equal(keel(&p[1], "pair", "hl.json", "rt.json"), 1);
    assert_int_equal(kf_wait_log(&p[1],
                                 "sensor-rt (aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee) does "
                                 "not name hvac",
                                 1000),
                     0);
    assert_int_equal(keel(&p[2], "pair", "hl.json", "rt2.json"), 0);
    assert_int_equal(keel(&p[3], "check", "bad.json", NULL), 5);
    assert_int_equal(kf_wait_log(&p[3], "\"id\": \"nope\" is not a UUID", 1000), 0);
    assert_int_equal(keel(&p[4], "check", "missing.json", NULL), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keel_icc_check_and_pair_exit_codes),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    kf_cleanup();
    return rc;
}

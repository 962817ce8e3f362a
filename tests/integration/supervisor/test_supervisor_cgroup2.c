/* keeld on a cgroup v2 machine, as far as this machine can show it.
 *
 * The development machines mount cgroup v1, with pids, memory and cpu bound to their v1
 * hierarchies; a controller lives in one version at a time, so a cgroup2 hierarchy mounted
 * here offers none of them (only hugetlb). The test runs keeld in a private mount namespace
 * with a real cgroup2 mounted over /sys/fs/cgroup and checks what can be checked: keeld detects
 * v2, says plainly that each limit is off, creates its instance group in the v2 hierarchy, and
 * still runs apps. Whether pids.max, memory.max and cpu.max are written and enforced on a
 * machine whose v2 hierarchy has those controllers is NOT tested here (docs/security.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "world.h"

static sv_world W;
static char out[65536];
static bool no_private; /* /sys cannot be made a private mount here: skip */
#define NO_PRIVATE "keel-test: no private mount for /sys"

static int setup(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        return 0; /* the test skips itself */
    }
    if (sv_world_init(&W, "supervisor-cgroup2", "\"stop_grace_ms\": 1000") < 0 ||
        sv_world_package(sv_world_store(&W), "sample", "sv_sample", "") < 0) {
        return -1;
    }
    char exe[512], cmd[1200];
    snprintf(exe, sizeof exe, "%s/bin/keeld", kf_build_dir());
    /* The cgroup2 mount must stay in keeld's namespace: the mount it covers is made private
     * first. Only that subtree: in a chroot (CI's fresh root) "/" is not a mount point and
     * `unshare --propagation private` fails on it. Where not even /sys can be made private,
     * the test skips rather than risk mounting over the host's hierarchy. */
    snprintf(cmd, sizeof cmd,
             "{ mount --make-rprivate /sys/fs/cgroup || mount --make-rprivate /sys; } "
             "2>/dev/null || { echo '" NO_PRIVATE "'; exit 77; }; "
             "mount -t cgroup2 keel-cgroup2 /sys/fs/cgroup && exec '%s' --config '%s'",
             exe, W.config);
    char *argv[] = {"unshare", "--mount", "--propagation", "unchanged", "sh", "-c", cmd, NULL};
    if (kf_spawn(&W.keeld, "keeld-cgroup2", argv, NULL) < 0) {
        return -1;
    }
    if (kf_wait_log(&W.keeld, "ready:", 20000) < 0) {
        if (kf_wait_log(&W.keeld, NO_PRIVATE, 0) == 0) {
            no_private = true;
            return 0;
        }
        kf_dump_log(&W.keeld, 40);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (geteuid() != 0 || no_private) {
        return 0;
    }
    int st = kf_stop(&W.keeld, 5000);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        kf_dump_log(&W.keeld, 60);
        return -1;
    }
    return 0;
}

static void test_keeld_detects_v2_and_says_which_limits_are_off(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("skipped: mounting cgroup2 needs root\n");
        skip();
    }
    if (no_private) {
        print_message("skipped: /sys cannot be made a private mount here\n");
        skip();
    }
    assert_int_equal(sv_world_ctl(&W, "status", out, sizeof out), 0);
    if (!strstr(out, "cgroup hierarchy: v2 (unified")) {
        fail_msg("v2 not detected:\n%s", out);
    }
    /* no controller of the three is in this v2 hierarchy: each limit says so, the rlimits stay */
    assert_non_null(strstr(out, "cgroup process limit: OFF (no pids controller; RLIMIT_NPROC"));
    assert_non_null(strstr(out, "cgroup memory limit: OFF (no memory controller; RLIMIT_AS"));
    assert_non_null(strstr(out, "cgroup CPU quota: OFF"));
    assert_true(sv_world_wait(&W, "logs sample 50", "sample: started", 10000));
    assert_true(sv_world_wait(&W, "list", "sample 1.0.0 running", 2000));
    /* keeld's instance group was made in the v2 hierarchy, inside keeld's namespace only: the
     * host's /sys/fs/cgroup (v1 here) has no keel-<pid> at its top */
    char path[160];
    snprintf(path, sizeof path, "/proc/%d/root/sys/fs/cgroup/keel-%d/sample/cgroup.procs",
             (int)W.keeld.pid, (int)W.keeld.pid);
    assert_int_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "/sys/fs/cgroup/keel-%d", (int)W.keeld.pid);
    assert_int_not_equal(access(path, F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keeld_detects_v2_and_says_which_limits_are_off),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

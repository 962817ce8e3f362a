/* Two keelds on one machine whose app uid ranges overlap: the second refuses to start and
 * names the first, instead of sweeping the first one's apps off their uids (keeld kills what
 * runs under an app's uid before starting the app). Once the first is gone, its range is free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "world.h"

static sv_world A, B;

static void test_overlapping_uid_range_refused_then_free(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("skipped: uids are keeld's only as root\n");
        skip();
    }
    /* both worlds take their base uid from this process: the same range */
    assert_int_equal(sv_world_init(&A, "supervisor-uids-a", ""), 0);
    assert_int_equal(sv_world_init(&B, "supervisor-uids-b", ""), 0);
    assert_int_equal(A.base_uid, B.base_uid);
    assert_int_equal(sv_world_package(sv_world_store(&A), "sample", "sv_sample", ""), 0);
    assert_int_equal(sv_world_start(&A), 0);
    assert_true(sv_world_wait(&A, "list", "sample 1.0.0 running", 10000));

    char exe[512], needle[96];
    snprintf(exe, sizeof exe, "%s/bin/keeld", kf_build_dir());
    char *argv[] = {exe, "--config", B.config, NULL};
    assert_int_equal(kf_spawn(&B.keeld, "keeld-b", argv, NULL), 0);
    int st = kf_wait_exit(&B.keeld, 10000);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 5)) {
        kf_dump_log(&B.keeld, 20);
        fail_msg("second keeld: status %d, expected exit 5", st);
    }
    snprintf(needle, sizeof needle, "another keeld (pid %d", (int)A.keeld.pid);
    if (kf_wait_log(&B.keeld, needle, 1000) < 0) {
        kf_dump_log(&B.keeld, 20);
        fail_msg("the refusal does not name keeld %d", (int)A.keeld.pid);
    }
    /* the first keeld's app was left alone, and its socket too */
    assert_true(sv_world_wait(&A, "list", "sample 1.0.0 running", 2000));
    assert_int_equal(access(B.sock, F_OK) == 0, 0);

    st = kf_stop(&A.keeld, 5000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(sv_world_start(&B), 0); /* the range went with the first keeld */
    st = kf_stop(&B.keeld, 5000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overlapping_uid_range_refused_then_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

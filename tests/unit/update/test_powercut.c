/* The power-cut sweep, after MCUboot's simulator.
 *
 * Count the N storage operations (write, erase, sync) of a full update, then for every i in
 * 1..N start again from a fresh device, cut power at operation i (losing everything not yet
 * synced, in every area), power on, and check that the device boots a verified v1 or v2 and
 * that carrying on converges to v2, confirmed. The same for a revert, and for two cuts in a
 * row at random points. Each sweep runs twice: with cuts that lose everything not synced, and
 * with torn cuts (everything done stays, the operation cut is half done). Sizes come from the command line so `make sweep` can run a large image:
 *   unit_update_powercut [payload_bytes chunk_bytes random_pairs]
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kit.h"

static kit K;
static uint32_t payload = 24000, chunk = 2048;
static unsigned pairs = 150;

static keel_update_cut_mode mode;

static uint64_t provisioned_device(void)
{
    kit_fresh_device(&K);
    keel_update_flash_cut_mode(K.flash, mode);
    return keel_update_flash_ops(K.flash);
}

static int lose_mode(void **state)
{
    (void)state;
    mode = KEEL_UPDATE_CUT_LOSE;
    return 0;
}

static int torn_mode(void **state)
{
    (void)state;
    mode = KEEL_UPDATE_CUT_TORN;
    return 0;
}

static void sweep_update(void);

static void test_sweep_update_every_cut_converges(void **state)
{
    (void)state;
    kit_run_chunks = 0;
    sweep_update();
}

/* The same with chunks stored in runs of 3 (keel_update_chunks: one sync and one record
 * commit per run, as keeld's deployments do): a cut anywhere still converges, and a resumed
 * run that starts on stored chunks writes only the missing ones. */
static void test_sweep_update_in_runs_every_cut_converges(void **state)
{
    (void)state;
    kit_run_chunks = 3;
    sweep_update();
    kit_run_chunks = 0;
}

static void sweep_update(void)
{
    uint64_t base = provisioned_device();
    assert_int_equal(kit_converge(&K, &K.v2, 4), KIT_DONE);
    uint64_t n = keel_update_flash_ops(K.flash) - base;
    printf("update: %llu storage operations; cutting before each\n", (unsigned long long)n);
    assert_true(n > 20);
    for (uint64_t i = 1; i <= n; i++) {
        base = provisioned_device();
        keel_update_flash_cut_at(K.flash, base + i);
        kit_result r = kit_converge(&K, &K.v2, 4);
        if (r != KIT_CUT) {
            fail_msg("cut at op %llu of %llu: the device did not reach the cut (%d)",
                     (unsigned long long)i, (unsigned long long)n, r);
        }
        keel_update_flash_cut_at(K.flash, 0);
        keel_update_flash_power_on(K.flash);
        int v = kit_boot_version(&K, NULL);
        if (v != 1 && v != 2) {
            fail_msg("cut at op %llu: boots version %d", (unsigned long long)i, v);
        }
        if (kit_converge(&K, &K.v2, 6) != KIT_DONE) {
            fail_msg("cut at op %llu: did not converge to v2", (unsigned long long)i);
        }
        keel_update_status st;
        assert_int_equal(kit_boot_version(&K, &st), 2);
        assert_int_equal(st.security_floor, 2);
        assert_int_equal(st.state, KEEL_UPDATE_IDLE);
    }
}

/* Arms v2 on a fresh device; returns the op count at that point. */
static uint64_t armed_device(void)
{
    provisioned_device();
    keel_update_agent *a;
    keel_update_error err;
    keel_update_boot_info b;
    assert_int_equal(keel_update_open(&K.cfg, &a, &err), KEEL_UPDATE_OK);
    assert_int_equal(keel_update_boot(a, 0, &b, &err), KEEL_UPDATE_OK);
    assert_int_equal(keel_update_begin(a, K.v2.manifest, K.v2.manifest_len, KIT_NOW_UNIX, &err),
                     KEEL_UPDATE_OK);
    keel_update_chunk_req req;
    while (keel_update_next_chunk(a, &req)) {
        assert_int_equal(keel_update_chunk(a, req.index, K.v2.image + req.offset, req.length, &err),
                         KEEL_UPDATE_OK);
    }
    assert_int_equal(keel_update_install(a, &err), KEEL_UPDATE_OK);
    keel_update_close(a);
    return keel_update_flash_ops(K.flash);
}

/* Boot (on trial), decide the trial failed, revert, boot again: runs v1. false on a cut. */
static bool revert_flow(void)
{
    for (int boot = 0; boot < 6; boot++) {
        keel_update_agent *a;
        keel_update_error err;
        keel_update_boot_info b;
        if (keel_update_open(&K.cfg, &a, &err) != KEEL_UPDATE_OK) {
            assert_false(keel_update_flash_powered(K.flash));
            return false;
        }
        keel_update_err e = keel_update_boot(a, 0, &b, &err);
        if (e != KEEL_UPDATE_OK) {
            keel_update_close(a);
            assert_false(keel_update_flash_powered(K.flash));
            return false;
        }
        int v = b.image.header.version.major;
        assert_true(v == 1 || v == 2);
        keel_update_status st;
        keel_update_get_status(a, &st);
        if (!b.trial && v == 1 && st.state == KEEL_UPDATE_IDLE) {
            keel_update_close(a);
            return true;
        }
        assert_true(b.trial);
        e = keel_update_revert(a, &err);
        keel_update_close(a);
        if (e != KEEL_UPDATE_OK) {
            assert_false(keel_update_flash_powered(K.flash));
            return false;
        }
    }
    fail_msg("revert did not converge");
    return false;
}

static void test_sweep_revert_every_cut_runs_v1(void **state)
{
    (void)state;
    uint64_t base = armed_device();
    assert_true(revert_flow());
    uint64_t n = keel_update_flash_ops(K.flash) - base;
    printf("revert: %llu storage operations; cutting before each\n", (unsigned long long)n);
    assert_true(n >= 6);
    for (uint64_t i = 1; i <= n; i++) {
        base = armed_device();
        keel_update_flash_cut_at(K.flash, base + i);
        assert_false(revert_flow());
        keel_update_flash_cut_at(K.flash, 0);
        keel_update_flash_power_on(K.flash);
        assert_true(revert_flow());
        keel_update_status st;
        assert_int_equal(kit_boot_version(&K, &st), 1);
        assert_int_equal(st.security_floor, 1);
        /* And the device can still take the update afterwards. */
        assert_int_equal(kit_converge(&K, &K.v2, 6), KIT_DONE);
    }
}

/* The new image crashes before it confirms, boot after boot, until the bootloader gives up on
 * it. false on a cut. */
static bool crash_loop_flow(void)
{
    for (int boot = 0; boot < 8; boot++) {
        keel_update_agent *a;
        keel_update_error err;
        keel_update_boot_info b;
        if (keel_update_open(&K.cfg, &a, &err) != KEEL_UPDATE_OK) {
            assert_false(keel_update_flash_powered(K.flash));
            return false;
        }
        keel_update_err e = keel_update_boot(a, 0, &b, &err);
        keel_update_close(a);
        if (e != KEEL_UPDATE_OK) {
            assert_false(keel_update_flash_powered(K.flash));
            return false;
        }
        int v = b.image.header.version.major;
        assert_true(v == 1 || v == 2);
        if (!b.trial) {
            assert_int_equal(v, 1);
            return true;
        }
    }
    fail_msg("a crash loop did not revert");
    return false;
}

static void test_sweep_crash_loop_every_cut_reverts(void **state)
{
    (void)state;
    uint64_t base = armed_device();
    assert_true(crash_loop_flow());
    uint64_t n = keel_update_flash_ops(K.flash) - base;
    printf("crash loop: %llu storage operations; cutting before each\n", (unsigned long long)n);
    for (uint64_t i = 1; i <= n; i++) {
        base = armed_device();
        keel_update_flash_cut_at(K.flash, base + i);
        assert_false(crash_loop_flow());
        keel_update_flash_cut_at(K.flash, 0);
        keel_update_flash_power_on(K.flash);
        assert_true(crash_loop_flow());
        keel_update_status st;
        assert_int_equal(kit_boot_version(&K, &st), 1);
        assert_int_equal(st.security_floor, 1);
        assert_int_equal(st.state, KEEL_UPDATE_IDLE);
    }
}

static void test_sweep_two_random_cuts_converge(void **state)
{
    (void)state;
    uint64_t base = provisioned_device();
    assert_int_equal(kit_converge(&K, &K.v2, 4), KIT_DONE);
    uint64_t n = keel_update_flash_ops(K.flash) - base;
    unsigned seed = 0x6b65656cu;
    const char *env = getenv("KEEL_SWEEP_SEED");
    if (env) {
        seed = (unsigned)strtoul(env, NULL, 0);
    }
    printf("two cuts: %u random pairs, seed 0x%x (KEEL_SWEEP_SEED to repeat)\n", pairs, seed);
    srand(seed);
    for (unsigned p = 0; p < pairs; p++) {
        uint64_t i = 1 + (uint64_t)rand() % n, j = 1 + (uint64_t)rand() % n;
        base = provisioned_device();
        keel_update_flash_cut_at(K.flash, base + i);
        assert_int_equal(kit_converge(&K, &K.v2, 6), KIT_CUT);
        keel_update_flash_power_on(K.flash);
        /* The second cut lands j operations into the recovery (if it gets that far). */
        keel_update_flash_cut_at(K.flash, keel_update_flash_ops(K.flash) + j);
        kit_result r = kit_converge(&K, &K.v2, 6);
        if (r == KIT_BRICKED) {
            fail_msg("cuts at %llu then +%llu: bricked", (unsigned long long)i,
                     (unsigned long long)j);
        }
        keel_update_flash_cut_at(K.flash, 0);
        keel_update_flash_power_on(K.flash);
        if (kit_converge(&K, &K.v2, 6) != KIT_DONE) {
            fail_msg("cuts at %llu then +%llu: no convergence", (unsigned long long)i,
                     (unsigned long long)j);
        }
        assert_int_equal(kit_boot_version(&K, NULL), 2);
    }
}

int main(int argc, char **argv)
{
    if (argc >= 3) {
        payload = (uint32_t)strtoul(argv[1], NULL, 0);
        chunk = (uint32_t)strtoul(argv[2], NULL, 0);
    }
    if (argc >= 4) {
        pairs = (unsigned)strtoul(argv[3], NULL, 0);
    }
    kit_init(&K, payload, chunk, 1024, 16);
    printf("image %u bytes in chunks of %u; flash erase 1024, write 16\n", payload, chunk);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_sweep_update_every_cut_converges, lose_mode),
        cmocka_unit_test_setup(test_sweep_update_in_runs_every_cut_converges, lose_mode),
        cmocka_unit_test_setup(test_sweep_revert_every_cut_runs_v1, lose_mode),
        cmocka_unit_test_setup(test_sweep_crash_loop_every_cut_reverts, lose_mode),
        cmocka_unit_test_setup(test_sweep_two_random_cuts_converge, lose_mode),
        cmocka_unit_test_setup(test_sweep_update_every_cut_converges, torn_mode),
        cmocka_unit_test_setup(test_sweep_update_in_runs_every_cut_converges, torn_mode),
        cmocka_unit_test_setup(test_sweep_revert_every_cut_runs_v1, torn_mode),
        cmocka_unit_test_setup(test_sweep_crash_loop_every_cut_reverts, torn_mode),
        cmocka_unit_test_setup(test_sweep_two_random_cuts_converge, torn_mode),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    kit_free(&K);
    return rc;
}

/* The update agent on a flash model: the happy path, trial/confirm/revert, and the attacks
 * (each refused with its own error while the running image stays untouched). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "kit.h"

static kit K;

static int setup(void **state)
{
    (void)state;
    kit_init(&K, 20000, 2048, 1024, 16);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kit_free(&K);
    return 0;
}

static int fresh(void **state)
{
    (void)state;
    kit_fresh_device(&K);
    return 0;
}

static keel_update_agent *booted(keel_update_boot_info *b)
{
    keel_update_agent *a;
    keel_update_error err;
    keel_update_boot_info local;
    assert_int_equal(keel_update_open(&K.cfg, &a, &err), KEEL_UPDATE_OK);
    assert_int_equal(keel_update_boot(a, 1000, b ? b : &local, &err), KEEL_UPDATE_OK);
    return a;
}

static void slot_hash(int slot, uint32_t len, uint8_t out[32])
{
    uint8_t *buf = malloc(len);
    assert_int_equal(K.storage.read(K.storage.ctx, slot ? KEEL_UPDATE_SLOT_B : KEEL_UPDATE_SLOT_A,
                                    0, buf, len),
                     0);
    crypto_hash_sha256(out, buf, len);
    free(buf);
}

/* After a refused update the device boots v1 from slot A, byte for byte as before. */
static void assert_v1_untouched(void)
{
    uint8_t want[32], got[32];
    crypto_hash_sha256(want, K.v1.image, K.v1.image_len);
    slot_hash(0, (uint32_t)K.v1.image_len, got);
    assert_memory_equal(want, got, 32);
    keel_update_status st;
    assert_int_equal(kit_boot_version(&K, &st), 1);
    assert_int_equal(st.running_slot, 0);
    assert_int_not_equal(st.state, KEEL_UPDATE_TRIAL);
}

static keel_update_err download(keel_update_agent *a, const kit_release *r)
{
    keel_update_error err;
    keel_update_err e = keel_update_begin(a, r->manifest, r->manifest_len, KIT_NOW_UNIX, &err);
    keel_update_chunk_req req;
    while (e == KEEL_UPDATE_OK && keel_update_next_chunk(a, &req)) {
        e = keel_update_chunk(a, req.index, r->image + req.offset, req.length, &err);
    }
    return e;
}

static void test_keel_update_full_cycle_confirmed_v2(void **state)
{
    (void)state;
    keel_update_boot_info b;
    keel_update_agent *a = booted(&b);
    keel_update_error err;
    assert_int_equal(b.slot, 0);
    assert_false(b.trial);
    assert_int_equal(download(a, &K.v2), KEEL_UPDATE_OK);
    keel_update_status st;
    keel_update_get_status(a, &st);
    assert_int_equal(st.chunks_done, st.chunks_total);
    assert_int_equal(keel_update_install(a, &err), KEEL_UPDATE_OK);
    keel_update_get_status(a, &st);
    assert_true(st.reboot_pending);
    assert_int_equal(st.state, KEEL_UPDATE_TRIAL);
    keel_update_close(a);

    a = booted(&b);
    assert_int_equal(b.slot, 1);
    assert_true(b.trial);
    assert_int_equal(b.image.header.version.major, 2);
    assert_int_equal(keel_update_confirm(a, &err), KEEL_UPDATE_OK);
    keel_update_get_status(a, &st);
    assert_int_equal(st.state, KEEL_UPDATE_IDLE);
    assert_int_equal(st.security_floor, 2);
    keel_update_close(a);

    assert_int_equal(kit_boot_version(&K, &st), 2);
    assert_int_equal(st.running_slot, 1);
    assert_false(st.running_trial);
}

static void test_keel_update_crash_loop_reverts_to_v1(void **state)
{
    (void)state;
    keel_update_agent *a = booted(NULL);
    keel_update_error err;
    assert_int_equal(download(a, &K.v2), KEEL_UPDATE_OK);
    assert_int_equal(keel_update_install(a, &err), KEEL_UPDATE_OK);
    keel_update_close(a);
    /* The new image "crashes" before confirming, boot after boot. */
    for (int i = 0; i < 3; i++) {
        keel_update_boot_info b;
        a = booted(&b);
        assert_true(b.trial);
        keel_update_close(a);
    }
    keel_update_boot_info b;
    a = booted(&b);
    assert_true(b.reverted);
    assert_false(b.trial);
    assert_int_equal(b.image.header.version.major, 1);
    keel_update_close(a);
    assert_v1_untouched();
}

static void test_keel_update_tick_past_deadline_reverts(void **state)
{
    (void)state;
    keel_update_agent *a = booted(NULL);
    keel_update_error err;
    assert_int_equal(download(a, &K.v2), KEEL_UPDATE_OK);
    assert_int_equal(keel_update_install(a, &err), KEEL_UPDATE_OK);
    keel_update_close(a);
    K.cfg.trial_timeout_ms = 5000;
    keel_update_boot_info b;
    a = booted(&b); /* booted at t=1000 */
    bool reboot = true;
    assert_int_equal(keel_update_tick(a, 5999, &reboot, &err), KEEL_UPDATE_OK);
    assert_false(reboot);
    assert_int_equal(keel_update_tick(a, 6000, &reboot, &err), KEEL_UPDATE_OK);
    assert_true(reboot);
    assert_int_equal(keel_update_confirm(a, &err), KEEL_UPDATE_ERR_STATE);
    keel_update_close(a);
    K.cfg.trial_timeout_ms = 0;
    assert_v1_untouched();
}

static void test_keel_update_revert_on_request_runs_v1(void **state)
{
    (void)state;
    keel_update_agent *a = booted(NULL);
    keel_update_error err;
    assert_int_equal(download(a, &K.v2), KEEL_UPDATE_OK);
    assert_int_equal(keel_update_install(a, &err), KEEL_UPDATE_OK);
    keel_update_close(a);
    a = booted(NULL);
    assert_int_equal(keel_update_revert(a, &err), KEEL_UPDATE_OK);
    keel_update_status st;
    keel_update_get_status(a, &st);
    assert_true(st.reboot_pending);
    keel_update_close(a);
    assert_v1_untouched();
}

static void test_keel_update_resume_keeps_stored_chunks(void **state)
{
    (void)state;
    keel_update_agent *a = booted(NULL);
    keel_update_error err;
    assert_int_equal(keel_update_begin(a, K.v2.manifest, K.v2.manifest_len, KIT_NOW_UNIX, &err),
                     KEEL_UPDATE_OK);
    keel_update_chunk_req req;
    for (int i = 0; i < 4; i++) {
        assert_true(keel_update_next_chunk(a, &req));
        assert_int_equal(keel_update_chunk(a, req.index, K.v2.image + req.offset, req.length, &err),
                         KEEL_UPDATE_OK);
    }
    keel_update_close(a);
    a = booted(NULL);
    keel_update_status st;
    keel_update_get_status(a, &st);
    assert_int_equal(st.state, KEEL_UPDATE_DOWNLOADING);
    assert_int_equal(st.chunks_done, 4);
    assert_int_equal(keel_update_begin(a, K.v2.manifest, K.v2.manifest_len, KIT_NOW_UNIX, &err),
                     KEEL_UPDATE_OK);
    assert_true(keel_update_next_chunk(a, &req));
    assert_int_equal(req.index, 4);
    keel_update_close(a);
}

/* ---- attacks ---- */

static void refuse_begin(const kit_release *r, uint64_t now, keel_update_err want)
{
    keel_update_agent *a = booted(NULL);
    keel_update_error err = {{0}};
    assert_int_equal(keel_update_begin(a, r->manifest, r->manifest_len, now, &err), want);
    assert_true(strlen(err.msg) > 0);
    keel_update_close(a);
    assert_v1_untouched();
}

static void test_keel_update_begin_bad_signature_refused(void **state)
{
    (void)state;
    kit_release r;
    kit_make_release(&K, &r, 3000, 3, 3, NULL, NULL, NULL, NULL, KIT_NOW_UNIX + 10);
    r.manifest[r.manifest_len - 1] ^= 1;
    refuse_begin(&r, KIT_NOW_UNIX, KEEL_UPDATE_ERR_SIGNATURE);
    kit_release_free(&r);
}

static void test_keel_update_begin_unknown_key_refused(void **state)
{
    (void)state;
    kit_release r;
    kit_make_release(&K, &r, 3000, 3, 3, &K.other_sec, &K.other_sec, NULL, NULL, KIT_NOW_UNIX + 10);
    refuse_begin(&r, KIT_NOW_UNIX, KEEL_UPDATE_ERR_UNKNOWN_KEY);
    kit_release_free(&r);
}

static void test_keel_update_begin_rollback_refused(void **state)
{
    (void)state;
    /* Confirm v2 (counter 2) first; then v1's manifest (counter 1) must be refused. */
    assert_int_equal(kit_converge(&K, &K.v2, 4), KIT_DONE);
    keel_update_agent *a = booted(NULL);
    keel_update_error err;
    assert_int_equal(keel_update_begin(a, K.v1.manifest, K.v1.manifest_len, KIT_NOW_UNIX, &err),
                     KEEL_UPDATE_ERR_ROLLBACK);
    assert_non_null(strstr(err.msg, "rollback"));
    keel_update_close(a);
    assert_int_equal(kit_boot_version(&K, NULL), 2);
}

static void test_keel_update_begin_expired_refused(void **state)
{
    (void)state;
    refuse_begin(&K.v2, KIT_NOW_UNIX + 3601, KEEL_UPDATE_ERR_EXPIRED);
}

static void test_keel_update_begin_other_component_refused(void **state)
{
    (void)state;
    kit_release r;
    uint8_t other[16] = {1, 2, 3};
    kit_make_release(&K, &r, 3000, 3, 3, NULL, NULL, other, NULL, KIT_NOW_UNIX + 10);
    refuse_begin(&r, KIT_NOW_UNIX, KEEL_UPDATE_ERR_TARGET);
    kit_release_free(&r);
}

static void test_keel_update_begin_other_hardware_refused(void **state)
{
    (void)state;
    kit_release r;
    kit_make_release(&K, &r, 3000, 3, 3, NULL, NULL, NULL, "keel-other-hw", KIT_NOW_UNIX + 10);
    refuse_begin(&r, KIT_NOW_UNIX, KEEL_UPDATE_ERR_TARGET);
    kit_release_free(&r);
}

static void test_keel_update_begin_image_larger_than_slot_refused(void **state)
{
    (void)state;
    kit_release r;
    kit_make_release(&K, &r, K.geo.slot_size, 3, 3, NULL, NULL, NULL, NULL, KIT_NOW_UNIX + 10);
    refuse_begin(&r, KIT_NOW_UNIX, KEEL_UPDATE_ERR_TOO_BIG);
    kit_release_free(&r);
}

static void test_keel_update_chunk_tampered_or_misplaced_refused(void **state)
{
    (void)state;
    keel_update_agent *a = booted(NULL);
    keel_update_error err;
    assert_int_equal(keel_update_begin(a, K.v2.manifest, K.v2.manifest_len, KIT_NOW_UNIX, &err),
                     KEEL_UPDATE_OK);
    uint8_t buf[2048];
    memcpy(buf, K.v2.image, sizeof buf);
    buf[77] ^= 0x10;
    assert_int_equal(keel_update_chunk(a, 0, buf, sizeof buf, &err), KEEL_UPDATE_ERR_CHUNK);
    assert_non_null(strstr(err.msg, "SHA-256"));
    /* Chunk 1's bytes served for index 0. */
    assert_int_equal(keel_update_chunk(a, 0, K.v2.image + 2048, 2048, &err), KEEL_UPDATE_ERR_CHUNK);
    assert_int_equal(keel_update_chunk(a, 9999, K.v2.image, 2048, &err), KEEL_UPDATE_ERR_CHUNK);
    /* Truncated and endless chunks. */
    assert_int_equal(keel_update_chunk(a, 0, K.v2.image, 1000, &err), KEEL_UPDATE_ERR_CHUNK);
    assert_int_equal(keel_update_chunk(a, 0, K.v2.image, 4096, &err), KEEL_UPDATE_ERR_TOO_BIG);
    keel_update_status st;
    keel_update_get_status(a, &st);
    assert_int_equal(st.chunks_done, 0);
    assert_int_equal(keel_update_install(a, &err), KEEL_UPDATE_ERR_STATE);
    keel_update_close(a);
    assert_v1_untouched();
}

/* A run of chunks: a bad chunk anywhere in it stores none of it; a good run is stored and
 * recorded at once; a run over chunks already stored is OK and changes nothing. */
static void test_keel_update_chunks_run_all_or_nothing(void **state)
{
    (void)state;
    keel_update_agent *a = booted(NULL);
    keel_update_error err;
    assert_int_equal(keel_update_begin(a, K.v2.manifest, K.v2.manifest_len, KIT_NOW_UNIX, &err),
                     KEEL_UPDATE_OK);
    uint8_t buf[3 * 2048];
    memcpy(buf, K.v2.image, sizeof buf);
    buf[2 * 2048 + 5] ^= 0x01; /* the third chunk of the run */
    assert_int_equal(keel_update_chunks(a, 0, 3, buf, sizeof buf, &err), KEEL_UPDATE_ERR_CHUNK);
    assert_non_null(strstr(err.msg, "chunk 2"));
    keel_update_status st;
    keel_update_get_status(a, &st);
    assert_int_equal(st.chunks_done, 0);
    /* wrong lengths and ranges */
    assert_int_equal(keel_update_chunks(a, 0, 3, K.v2.image, 3 * 2048 - 1, &err),
                     KEEL_UPDATE_ERR_CHUNK);
    assert_int_equal(keel_update_chunks(a, 0, 3, K.v2.image, 3 * 2048 + 1, &err),
                     KEEL_UPDATE_ERR_TOO_BIG);
    assert_int_equal(keel_update_chunks(a, st.chunks_total - 1, 2, K.v2.image, 4096, &err),
                     KEEL_UPDATE_ERR_CHUNK);
    assert_int_equal(keel_update_chunks(a, 0, 0, K.v2.image, 0, &err), KEEL_UPDATE_ERR_ARG);
    /* chunk 1 alone, then the run 0..2 over it: 3 done */
    assert_int_equal(keel_update_chunk(a, 1, K.v2.image + 2048, 2048, &err), KEEL_UPDATE_OK);
    assert_int_equal(keel_update_chunks(a, 0, 3, K.v2.image, 3 * 2048, &err), KEEL_UPDATE_OK);
    keel_update_get_status(a, &st);
    assert_int_equal(st.chunks_done, 3);
    assert_int_equal(keel_update_chunks(a, 0, 3, K.v2.image, 3 * 2048, &err), KEEL_UPDATE_OK);
    /* the rest in one run; the image installs */
    size_t rest = K.v2.image_len - 3 * 2048;
    assert_int_equal(keel_update_chunks(a, 3, st.chunks_total - 3, K.v2.image + 3 * 2048, rest,
                                        &err),
                     KEEL_UPDATE_OK);
    assert_int_equal(keel_update_install(a, &err), KEEL_UPDATE_OK);
    keel_update_close(a);
}

static void test_keel_update_install_image_by_untrusted_key_refused(void **state)
{
    (void)state;
    /* A trusted manifest for an image signed by an untrusted key (e.g. a build key leaked
     * into the release pipeline): the chunks match the manifest, the image itself does not. */
    kit_release r;
    kit_make_release(&K, &r, 20000, 3, 3, &K.other_sec, NULL, NULL, NULL, KIT_NOW_UNIX + 10);
    keel_update_agent *a = booted(NULL);
    keel_update_error err;
    assert_int_equal(download(a, &r), KEEL_UPDATE_OK);
    assert_int_equal(keel_update_install(a, &err), KEEL_UPDATE_ERR_UNKNOWN_KEY);
    keel_update_status st;
    keel_update_get_status(a, &st);
    assert_int_equal(st.state, KEEL_UPDATE_IDLE);
    keel_update_close(a);
    kit_release_free(&r);
    assert_v1_untouched();
}

static void test_keel_update_begin_during_trial_state_error(void **state)
{
    (void)state;
    keel_update_agent *a = booted(NULL);
    keel_update_error err;
    assert_int_equal(download(a, &K.v2), KEEL_UPDATE_OK);
    assert_int_equal(keel_update_install(a, &err), KEEL_UPDATE_OK);
    assert_int_equal(keel_update_begin(a, K.v2.manifest, K.v2.manifest_len, KIT_NOW_UNIX, &err),
                     KEEL_UPDATE_ERR_STATE);
    keel_update_close(a);
}

static void test_keel_update_boot_corrupt_active_below_floor_no_image(void **state)
{
    (void)state;
    assert_int_equal(kit_converge(&K, &K.v2, 4), KIT_DONE); /* v2 in B, v1 in A */
    /* Slot B decays. v1 has counter 1 < floor 2, so it must not be adopted: no bootable image
     * is the honest answer (rollback protection beats availability). */
    uint8_t zero[16] = {0};
    assert_int_equal(K.storage.erase(K.storage.ctx, KEEL_UPDATE_SLOT_B, 0, K.geo.erase_size), 0);
    assert_int_equal(K.storage.write(K.storage.ctx, KEEL_UPDATE_SLOT_B, 0, zero, 16), 0);
    assert_int_equal(K.storage.sync(K.storage.ctx, KEEL_UPDATE_SLOT_B), 0);
    keel_update_agent *a;
    keel_update_error err;
    keel_update_boot_info b;
    assert_int_equal(keel_update_open(&K.cfg, &a, &err), KEEL_UPDATE_OK);
    assert_int_equal(keel_update_boot(a, 0, &b, &err), KEEL_UPDATE_ERR_NO_IMAGE);
    keel_update_close(a);
}

/* Rewrites one erase block of a slot with a byte flipped (the storage's own rules: erase first). */
static void corrupt_slot(int slot, uint32_t at)
{
    keel_update_area area = slot ? KEEL_UPDATE_SLOT_B : KEEL_UPDATE_SLOT_A;
    uint32_t E = K.geo.erase_size, base = at / E * E;
    uint8_t *blk = malloc(E);
    assert_int_equal(K.storage.read(K.storage.ctx, area, base, blk, E), 0);
    blk[at - base] ^= 0x01;
    assert_int_equal(K.storage.erase(K.storage.ctx, area, base, E), 0);
    assert_int_equal(K.storage.write(K.storage.ctx, area, base, blk, E), 0);
    assert_int_equal(K.storage.sync(K.storage.ctx, area), 0);
    free(blk);
}

static void test_keel_update_boot_staged_slot_decayed_reverts(void **state)
{
    (void)state;
    keel_update_agent *a = booted(NULL);
    keel_update_error err;
    assert_int_equal(download(a, &K.v2), KEEL_UPDATE_OK);
    assert_int_equal(keel_update_install(a, &err), KEEL_UPDATE_OK);
    keel_update_close(a);
    corrupt_slot(1, 5000); /* between install and the restart */
    keel_update_boot_info b;
    a = booted(&b);
    assert_true(b.reverted);
    assert_false(b.trial);
    assert_int_equal(b.image.header.version.major, 1);
    keel_update_close(a);
    assert_v1_untouched();
}

static void test_keel_update_trusted_release_of_broken_image_reverts_at_boot(void **state)
{
    (void)state;
    /* The release pipeline chunked an image whose payload no longer matches its signed
     * digest. Every chunk matches the (trusted) manifest, and the image's signature over its
     * digest is good, so install arms it; the bootloader's full check refuses to run it. */
    kit_release r;
    kit_make_release(&K, &r, 20000, 3, 3, NULL, NULL, NULL, NULL, KIT_NOW_UNIX + 10);
    r.image[KEEL_IMAGE_HEADER_SIZE + 100] ^= 0x01; /* after signing */
    keel_release m = {.version = {3, 0, 0}, .security_counter = 3, .serial = 3,
                      .expires = KIT_NOW_UNIX + 10, .chunk_size = K.chunk_size};
    memcpy(m.component, K.component, 16);
    strcpy(m.hardware, KIT_HW);
    strcpy(m.image_name, "v3.kimg");
    uint32_t chunks = (uint32_t)((r.image_len + K.chunk_size - 1) / K.chunk_size);
    assert_int_equal(keel_release_make(&m, r.image, r.image_len, &K.sec, r.manifest,
                                       keel_release_size(chunks), &r.manifest_len),
                     KEEL_IMAGE_OK);
    keel_update_agent *a = booted(NULL);
    keel_update_error err;
    assert_int_equal(download(a, &r), KEEL_UPDATE_OK);
    assert_int_equal(keel_update_install(a, &err), KEEL_UPDATE_OK);
    keel_update_close(a);
    keel_update_boot_info b;
    a = booted(&b);
    assert_true(b.reverted);
    assert_int_equal(b.image.header.version.major, 1);
    keel_update_close(a);
    kit_release_free(&r);
    assert_v1_untouched();
}

static void test_keel_update_backoff_ms_bounded_and_growing(void **state)
{
    (void)state;
    assert_int_equal(keel_update_backoff_ms(0, 100, 10000, 0), 50);
    assert_int_equal(keel_update_backoff_ms(0, 100, 10000, 50), 100);
    assert_int_equal(keel_update_backoff_ms(3, 100, 10000, 0), 400);
    for (uint32_t r = 0; r < 1000; r += 37) {
        uint32_t v = keel_update_backoff_ms(40, 100, 10000, r * 7919u);
        assert_true(v >= 5000 && v <= 10000);
    }
}

static void test_keel_update_err_name_every_value_named(void **state)
{
    (void)state;
    for (int e = 0; e < KEEL_UPDATE_ERR_COUNT; e++) {
        assert_non_null(strstr(keel_update_err_name((keel_update_err)e), "KEEL_UPDATE_"));
    }
    assert_string_equal(keel_update_err_name(KEEL_UPDATE_ERR_COUNT), "KEEL_UPDATE_ERR_UNKNOWN");
}

#define T(f) cmocka_unit_test_setup(f, fresh)
int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_keel_update_full_cycle_confirmed_v2),
        T(test_keel_update_crash_loop_reverts_to_v1),
        T(test_keel_update_tick_past_deadline_reverts),
        T(test_keel_update_revert_on_request_runs_v1),
        T(test_keel_update_resume_keeps_stored_chunks),
        T(test_keel_update_begin_bad_signature_refused),
        T(test_keel_update_begin_unknown_key_refused),
        T(test_keel_update_begin_rollback_refused),
        T(test_keel_update_begin_expired_refused),
        T(test_keel_update_begin_other_component_refused),
        T(test_keel_update_begin_other_hardware_refused),
        T(test_keel_update_begin_image_larger_than_slot_refused),
        T(test_keel_update_chunk_tampered_or_misplaced_refused),
        T(test_keel_update_chunks_run_all_or_nothing),
        T(test_keel_update_install_image_by_untrusted_key_refused),
        T(test_keel_update_begin_during_trial_state_error),
        T(test_keel_update_boot_corrupt_active_below_floor_no_image),
        T(test_keel_update_boot_staged_slot_decayed_reverts),
        T(test_keel_update_trusted_release_of_broken_image_reverts_at_boot),
        T(test_keel_update_backoff_ms_bounded_and_growing),
        T(test_keel_update_err_name_every_value_named),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

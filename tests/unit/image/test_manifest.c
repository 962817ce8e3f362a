/* Release manifests: round trip, signature, and structural checks against endless data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keel/image.h"

static keel_image_pubkey pub, pub2;
static keel_image_seckey sec, sec2;
static uint8_t image[10000];
static uint8_t man[4096];
static size_t man_len;

static int setup(void **state)
{
    (void)state;
    assert_int_equal(keel_image_keygen(&pub, &sec), KEEL_IMAGE_OK);
    assert_int_equal(keel_image_keygen(&pub2, &sec2), KEEL_IMAGE_OK);
    for (size_t i = 0; i < sizeof image; i++) {
        image[i] = (uint8_t)(i ^ (i >> 8));
    }
    keel_release m = {.version = {2, 0, 1}, .security_counter = 4, .serial = 12,
                       .expires = 2000000000ull, .chunk_size = 4096};
    strcpy(m.hardware, "keel-gw-1");
    strcpy(m.image_name, "app-2.0.1.kimg");
    assert_int_equal(keel_release_make(&m, image, sizeof image, &sec, man, sizeof man, &man_len),
                     KEEL_IMAGE_OK);
    assert_int_equal(m.chunk_count, 3);
    return 0;
}

static void test_keel_manifest_verify_signed_ok(void **state)
{
    (void)state;
    keel_image_keys keys = {&pub, 1};
    keel_release m;
    keel_image_error err;
    assert_int_equal(keel_release_verify(man, man_len, &keys, &m, &err), KEEL_IMAGE_OK);
    assert_string_equal(m.hardware, "keel-gw-1");
    assert_string_equal(m.image_name, "app-2.0.1.kimg");
    assert_int_equal(m.image_size, sizeof image);
    assert_int_equal(m.chunk_count, 3);
    assert_int_equal(m.expires, 2000000000ull);
    assert_int_equal(m.serial, 12);
    assert_int_equal(man_len, keel_release_size(3));
}

static void test_keel_manifest_verify_any_flipped_byte_refused(void **state)
{
    (void)state;
    keel_image_keys keys = {&pub, 1};
    uint8_t copy[4096];
    for (size_t i = 0; i < man_len; i++) {
        memcpy(copy, man, man_len);
        copy[i] ^= 0x01;
        keel_release m;
        keel_image_error err;
        assert_int_not_equal(keel_release_verify(copy, man_len, &keys, &m, &err), KEEL_IMAGE_OK);
    }
}

static void test_keel_manifest_verify_untrusted_key_unknown_key(void **state)
{
    (void)state;
    keel_image_keys keys = {&pub2, 1};
    keel_release m;
    keel_image_error err;
    assert_int_equal(keel_release_verify(man, man_len, &keys, &m, &err),
                     KEEL_IMAGE_ERR_UNKNOWN_KEY);
}

static void test_keel_manifest_parse_count_disagrees_with_size_format(void **state)
{
    (void)state;
    uint8_t copy[4096];
    memcpy(copy, man, man_len);
    copy[64] = 0xff; /* image_size low byte: count no longer matches */
    copy[65] = 0xff;
    keel_release m;
    keel_image_error err;
    assert_int_equal(keel_release_parse(copy, man_len, &m, &err), KEEL_IMAGE_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "chunks"));
}

static void test_keel_manifest_parse_truncated_or_long_refused(void **state)
{
    (void)state;
    keel_release m;
    keel_image_error err;
    for (size_t len = 0; len < man_len; len++) {
        assert_int_not_equal(keel_release_parse(man, len, &m, &err), KEEL_IMAGE_OK);
    }
    uint8_t copy[4096] = {0};
    memcpy(copy, man, man_len);
    assert_int_equal(keel_release_parse(copy, man_len + 1, &m, &err), KEEL_IMAGE_ERR_FORMAT);
}

static void test_keel_manifest_make_bad_name_arg(void **state)
{
    (void)state;
    keel_release m = {.chunk_size = 4096};
    strcpy(m.image_name, "../etc/passwd");
    size_t n;
    assert_int_equal(keel_release_make(&m, image, sizeof image, &sec, man + 2048, 2048, &n),
                     KEEL_IMAGE_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keel_manifest_verify_signed_ok),
        cmocka_unit_test(test_keel_manifest_verify_any_flipped_byte_refused),
        cmocka_unit_test(test_keel_manifest_verify_untrusted_key_unknown_key),
        cmocka_unit_test(test_keel_manifest_parse_count_disagrees_with_size_format),
        cmocka_unit_test(test_keel_manifest_parse_truncated_or_long_refused),
        cmocka_unit_test(test_keel_manifest_make_bad_name_arg),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}

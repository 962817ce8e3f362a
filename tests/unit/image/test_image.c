/* Signed images: round trip, and every way an image can be wrong is refused with its own error. */
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
static uint8_t payload[5000];
static uint8_t img[8192];
static size_t img_len;

static int setup(void **state)
{
    (void)state;
    assert_int_equal(keel_image_keygen(&pub, &sec), KEEL_IMAGE_OK);
    assert_int_equal(keel_image_keygen(&pub2, &sec2), KEEL_IMAGE_OK);
    for (size_t i = 0; i < sizeof payload; i++) {
        payload[i] = (uint8_t)(i * 7 + 3);
    }
    keel_image_header h = {.version = {1, 2, 3}, .security_counter = 7,
                           .payload_size = sizeof payload};
    assert_true(keel_image_uuid_parse("0c7e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b", h.component));
    assert_int_equal(keel_image_sign(&h, payload, &sec, img, sizeof img, &img_len), KEEL_IMAGE_OK);
    return 0;
}

static void test_keel_image_verify_signed_image_ok(void **state)
{
    (void)state;
    keel_image_keys keys = {&pub, 1};
    keel_image_info info;
    keel_image_error err;
    assert_int_equal(img_len, keel_image_size(sizeof payload));
    assert_int_equal(keel_image_verify(img, img_len, &keys, &info, &err), KEEL_IMAGE_OK);
    assert_int_equal(info.header.version.minor, 2);
    assert_int_equal(info.header.version.patch, 3);
    assert_int_equal(info.header.security_counter, 7);
    assert_int_equal(info.header.payload_size, sizeof payload);
    assert_memory_equal(info.key_id, pub.id, KEEL_IMAGE_KEY_ID_SIZE);
    char u[37];
    keel_image_uuid_format(info.header.component, u);
    assert_string_equal(u, "0c7e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b");
}

static void test_keel_image_verify_any_flipped_byte_refused(void **state)
{
    (void)state;
    keel_image_keys keys = {&pub, 1};
    uint8_t copy[8192];
    /* Every byte of the image matters: flip one at a time across header, payload, trailer. */
    for (size_t i = 0; i < img_len; i += (i < 64 || i > img_len - 130) ? 1 : 97) {
        memcpy(copy, img, img_len);
        copy[i] ^= 0x40;
        keel_image_error err;
        assert_int_not_equal(keel_image_verify(copy, img_len, &keys, NULL, &err), KEEL_IMAGE_OK);
        assert_true(strlen(err.msg) > 0);
    }
}

static void test_keel_image_verify_payload_changed_hash_error(void **state)
{
    (void)state;
    keel_image_keys keys = {&pub, 1};
    uint8_t copy[8192];
    memcpy(copy, img, img_len);
    copy[100] ^= 1;
    keel_image_error err;
    assert_int_equal(keel_image_verify(copy, img_len, &keys, NULL, &err), KEEL_IMAGE_ERR_HASH);
}

static void test_keel_image_verify_untrusted_key_unknown_key(void **state)
{
    (void)state;
    keel_image_keys keys = {&pub2, 1};
    keel_image_error err;
    assert_int_equal(keel_image_verify(img, img_len, &keys, NULL, &err), KEEL_IMAGE_ERR_UNKNOWN_KEY);
    assert_non_null(strstr(err.msg, "not trusted"));
}

static void test_keel_image_verify_forged_signature_refused(void **state)
{
    (void)state;
    /* An attacker who knows the trusted key id signs with their own key. */
    keel_image_seckey forged = sec2;
    memcpy(forged.id, pub.id, KEEL_IMAGE_KEY_ID_SIZE);
    keel_image_header h = {.version = {9, 9, 9}, .security_counter = 99, .payload_size = 10};
    uint8_t out[256];
    size_t n;
    assert_int_equal(keel_image_sign(&h, payload, &forged, out, sizeof out, &n), KEEL_IMAGE_OK);
    keel_image_keys keys = {&pub, 1};
    keel_image_error err;
    assert_int_equal(keel_image_verify(out, n, &keys, NULL, &err), KEEL_IMAGE_ERR_SIGNATURE);
}

static void test_keel_image_verify_truncated_refused(void **state)
{
    (void)state;
    keel_image_keys keys = {&pub, 1};
    keel_image_error err;
    for (size_t len = 0; len < img_len; len += len < 70 ? 1 : 331) {
        keel_image_err e = keel_image_verify(img, len, &keys, NULL, &err);
        assert_true(e == KEEL_IMAGE_ERR_TRUNCATED || e == KEEL_IMAGE_ERR_FORMAT);
    }
    assert_int_equal(keel_image_verify(img, img_len - 1, &keys, NULL, &err),
                     KEEL_IMAGE_ERR_TRUNCATED);
}

static void test_keel_image_verify_trailing_bytes_refused(void **state)
{
    (void)state;
    keel_image_keys keys = {&pub, 1};
    keel_image_error err;
    uint8_t copy[8192];
    memcpy(copy, img, img_len);
    copy[img_len] = 0;
    assert_int_equal(keel_image_verify(copy, img_len + 1, &keys, NULL, &err), KEEL_IMAGE_ERR_FORMAT);
}

static void test_keel_image_sign_small_buffer_no_space(void **state)
{
    (void)state;
    keel_image_header h = {.payload_size = sizeof payload};
    uint8_t out[100];
    size_t n;
    assert_int_equal(keel_image_sign(&h, payload, &sec, out, sizeof out, &n),
                     KEEL_IMAGE_ERR_NO_SPACE);
}

static void test_keel_image_version_parse_forms(void **state)
{
    (void)state;
    keel_image_version v;
    assert_true(keel_image_version_parse("0.0.0", &v));
    assert_true(keel_image_version_parse("65535.2.4000000000", &v));
    assert_int_equal(v.major, 65535);
    assert_false(keel_image_version_parse("1.2", &v));
    assert_false(keel_image_version_parse("1.2.3.4", &v));
    assert_false(keel_image_version_parse("65536.0.0", &v));
    assert_false(keel_image_version_parse("-1.0.0", &v));
    assert_false(keel_image_version_parse("1.x.0", &v));
    keel_image_version a = {1, 2, 3}, b = {1, 10, 0};
    assert_int_equal(keel_image_version_cmp(&a, &b), -1);
    assert_int_equal(keel_image_version_cmp(&b, &a), 1);
    assert_int_equal(keel_image_version_cmp(&a, &a), 0);
}

static void test_keel_image_err_name_every_value_named(void **state)
{
    (void)state;
    for (int e = 0; e < KEEL_IMAGE_ERR_COUNT; e++) {
        assert_non_null(strstr(keel_image_err_name((keel_image_err)e), "KEEL_IMAGE_"));
    }
    assert_string_equal(keel_image_err_name(KEEL_IMAGE_ERR_COUNT), "KEEL_IMAGE_ERR_UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keel_image_verify_signed_image_ok),
        cmocka_unit_test(test_keel_image_verify_any_flipped_byte_refused),
        cmocka_unit_test(test_keel_image_verify_payload_changed_hash_error),
        cmocka_unit_test(test_keel_image_verify_untrusted_key_unknown_key),
        cmocka_unit_test(test_keel_image_verify_forged_signature_refused),
        cmocka_unit_test(test_keel_image_verify_truncated_refused),
        cmocka_unit_test(test_keel_image_verify_trailing_bytes_refused),
        cmocka_unit_test(test_keel_image_sign_small_buffer_no_space),
        cmocka_unit_test(test_keel_image_version_parse_forms),
        cmocka_unit_test(test_keel_image_err_name_every_value_named),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}

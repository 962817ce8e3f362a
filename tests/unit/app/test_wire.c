/* The wire check keeld applies to every request: framing, known ops, payload rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "wire.h"

static uint8_t msg[KEEL_WIRE_MAX_MSG + 16];

static size_t build(uint16_t op, const void *payload, size_t len)
{
    keel_wire_hdr h = {.op = op, .seq = 7, .len = (uint32_t)len};
    memcpy(msg, &h, sizeof h);
    if (len) {
        memcpy(msg + sizeof h, payload, len);
    }
    return sizeof h + len;
}

static void test_check_log_with_text_ok(void **state)
{
    (void)state;
    assert_int_equal(keel_wire_check(msg, build(KEEL_WIRE_LOG, "hello", 5)), KEEL_APP_OK);
}

static void test_check_log_empty_bad_length(void **state)
{
    (void)state;
    assert_int_equal(keel_wire_check(msg, build(KEEL_WIRE_LOG, NULL, 0)),
                     KEEL_APP_ERR_BAD_LENGTH);
}

static void test_check_header_len_disagrees_with_message_bad_length(void **state)
{
    (void)state;
    size_t n = build(KEEL_WIRE_LOG, "hello", 5);
    assert_int_equal(keel_wire_check(msg, n - 1), KEEL_APP_ERR_BAD_LENGTH);
    assert_int_equal(keel_wire_check(msg, 3), KEEL_APP_ERR_BAD_LENGTH);
    assert_int_equal(keel_wire_check(NULL, 0), KEEL_APP_ERR_BAD_LENGTH);
}

static void test_check_unknown_or_answer_op_refused(void **state)
{
    (void)state;
    assert_int_equal(keel_wire_check(msg, build(999, NULL, 0)), KEEL_APP_ERR_UNSUPPORTED);
    assert_int_equal(keel_wire_check(msg, build(0, NULL, 0)), KEEL_APP_ERR_UNSUPPORTED);
    assert_int_equal(keel_wire_check(msg, build(KEEL_WIRE_HEARTBEAT | KEEL_WIRE_ANSWER, NULL, 0)),
                     KEEL_APP_ERR_PROTOCOL);
}

static void test_check_fixed_size_payloads(void **state)
{
    (void)state;
    assert_int_equal(keel_wire_check(msg, build(KEEL_WIRE_HEARTBEAT, "x", 1)),
                     KEEL_APP_ERR_BAD_LENGTH);
    keel_wire_ring r = {0x1000, 4096};
    assert_int_equal(keel_wire_check(msg, build(KEEL_WIRE_NOTIFY_REGISTER, &r, sizeof r)),
                     KEEL_APP_OK);
    assert_int_equal(keel_wire_check(msg, build(KEEL_WIRE_NOTIFY_REGISTER, &r, 8)),
                     KEEL_APP_ERR_BAD_LENGTH);
}

static void test_check_crash_counts_bounded(void **state)
{
    (void)state;
    static keel_wire_crash c;
    memset(&c, 0, sizeof c);
    c.nframes = KEEL_WIRE_CRASH_FRAMES;
    assert_int_equal(keel_wire_check(msg, build(KEEL_WIRE_CRASH, &c, sizeof c)), KEEL_APP_OK);
    c.nframes = KEEL_WIRE_CRASH_FRAMES + 1;
    assert_int_equal(keel_wire_check(msg, build(KEEL_WIRE_CRASH, &c, sizeof c)),
                     KEEL_APP_ERR_INVALID_ARG);
    c.nframes = 0;
    c.nmodules = 1000;
    assert_int_equal(keel_wire_check(msg, build(KEEL_WIRE_CRASH, &c, sizeof c)),
                     KEEL_APP_ERR_INVALID_ARG);
}

static void test_check_cloud_open_needs_kind_and_target(void **state)
{
    (void)state;
    assert_int_equal(keel_wire_check(msg, build(KEEL_WIRE_CLOUD_OPEN, "http\0h:80", 9)),
                     KEEL_APP_OK);
    assert_int_equal(keel_wire_check(msg, build(KEEL_WIRE_CLOUD_OPEN, "http\0", 5)),
                     KEEL_APP_ERR_INVALID_ARG);
    assert_int_equal(keel_wire_check(msg, build(KEEL_WIRE_CLOUD_OPEN, "h\0", 2)),
                     KEEL_APP_ERR_BAD_LENGTH);
    assert_int_equal(keel_wire_check(msg, build(KEEL_WIRE_CLOUD_OPEN, "\0host:1", 7)),
                     KEEL_APP_ERR_INVALID_ARG);
    assert_int_equal(keel_wire_check(msg, build(KEEL_WIRE_CLOUD_OPEN, "httphost", 8)),
                     KEEL_APP_ERR_INVALID_ARG);
    assert_int_equal(keel_wire_check(msg, build(KEEL_WIRE_CLOUD_OPEN, "http\0a\0b", 8)),
                     KEEL_APP_ERR_INVALID_ARG);
}

static void test_check_channel_open_no_nul_inside(void **state)
{
    (void)state;
    assert_int_equal(keel_wire_check(msg, build(KEEL_WIRE_CHANNEL_OPEN, "abc", 3)), KEEL_APP_OK);
    assert_int_equal(keel_wire_check(msg, build(KEEL_WIRE_CHANNEL_OPEN, "a\0c", 3)),
                     KEEL_APP_ERR_INVALID_ARG);
}

static void test_check_device_open_names(void **state)
{
    (void)state;
    static const uint16_t ops[] = {KEEL_WIRE_SERIAL_OPEN, KEEL_WIRE_GPIO_OPEN};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(keel_wire_check(msg, build(ops[i], "rs485", 5)), KEEL_APP_OK);
        assert_int_equal(keel_wire_check(msg, build(ops[i], "rs\0485", 6)),
                         KEEL_APP_ERR_INVALID_ARG);
        assert_int_equal(keel_wire_check(msg, build(ops[i], "", 0)), KEEL_APP_ERR_BAD_LENGTH);
        /* 31 bytes fit keeld's name buffer with its NUL; 32 do not */
        assert_int_equal(keel_wire_check(msg, build(ops[i], "abcdefghijklmnopqrstuvwxyz01234", 31)),
                         KEEL_APP_OK);
        assert_int_equal(keel_wire_check(msg, build(ops[i], "abcdefghijklmnopqrstuvwxyz012345", 32)),
                         KEEL_APP_ERR_BAD_LENGTH);
    }
}

static void test_op_name_every_op_named(void **state)
{
    (void)state;
    for (uint16_t op = 1; op < KEEL_WIRE_OP_COUNT; op++) {
        assert_string_not_equal(keel_wire_op_name(op), "UNKNOWN");
    }
    assert_string_equal(keel_wire_op_name(0), "UNKNOWN");
    assert_string_equal(keel_wire_op_name(KEEL_WIRE_LOG | KEEL_WIRE_ANSWER), "LOG");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_log_with_text_ok),
        cmocka_unit_test(test_check_device_open_names),
        cmocka_unit_test(test_check_log_empty_bad_length),
        cmocka_unit_test(test_check_header_len_disagrees_with_message_bad_length),
        cmocka_unit_test(test_check_unknown_or_answer_op_refused),
        cmocka_unit_test(test_check_fixed_size_payloads),
        cmocka_unit_test(test_check_crash_counts_bounded),
        cmocka_unit_test(test_check_cloud_open_needs_kind_and_target),
        cmocka_unit_test(test_check_channel_open_no_nul_inside),
        cmocka_unit_test(test_op_name_every_op_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

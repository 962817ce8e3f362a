/* The RS485 bridge protocol: round trips, and refusal of payloads the other core could send
 * by mistake or malice (short, oversized, wrong version, out-of-range fields, a length field
 * that lies, time running backwards). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "bridge_proto.h"

static const uint8_t frame[] = {0x01, 0x04, 0x00, 0x00, 0x00, 0x03, 0xb0, 0x0b};

static void test_xfer_round_trips(void **state)
{
    (void)state;
    bridge_xfer in = {.timeout_ms = 500, .frame = frame, .frame_len = sizeof frame}, out;
    uint8_t buf[BRIDGE_XFER_MAX];
    size_t n = bridge_xfer_encode(&in, buf, sizeof buf);
    assert_int_equal(n, BRIDGE_XFER_HDR + sizeof frame);
    assert_int_equal(buf[2], 0xf4); /* 500 little-endian */
    assert_int_equal(buf[3], 0x01);
    assert_int_equal(bridge_xfer_decode(buf, n, &out), BRIDGE_PROTO_OK);
    assert_int_equal(out.timeout_ms, 500);
    assert_int_equal(out.flags, 0);
    assert_int_equal(out.frame_len, sizeof frame);
    assert_memory_equal(out.frame, frame, sizeof frame);
}

static void test_xfer_refuses_bad_payloads(void **state)
{
    (void)state;
    bridge_xfer in = {.timeout_ms = 500, .frame = frame, .frame_len = sizeof frame}, out;
    uint8_t buf[BRIDGE_XFER_MAX + 8];
    size_t n = bridge_xfer_encode(&in, buf, sizeof buf);
    assert_int_equal(bridge_xfer_decode(buf, BRIDGE_XFER_HDR - 1, &out), BRIDGE_PROTO_ERR_LENGTH);
    assert_int_equal(bridge_xfer_decode(buf, BRIDGE_XFER_HDR + 3, &out), BRIDGE_PROTO_ERR_LENGTH);
    assert_int_equal(bridge_xfer_decode(buf, BRIDGE_XFER_MAX + 1, &out), BRIDGE_PROTO_ERR_LENGTH);
    buf[0] = 2;
    assert_int_equal(bridge_xfer_decode(buf, n, &out), BRIDGE_PROTO_ERR_VERSION);
    buf[0] = BRIDGE_PROTO_VERSION;
    buf[1] = 0x80; /* an unknown flag */
    assert_int_equal(bridge_xfer_decode(buf, n, &out), BRIDGE_PROTO_ERR_RANGE);
    buf[1] = BRIDGE_F_BROADCAST; /* a broadcast with a timeout */
    assert_int_equal(bridge_xfer_decode(buf, n, &out), BRIDGE_PROTO_ERR_RANGE);
    buf[1] = 0;
    buf[2] = buf[3] = 0; /* a request that waits for nothing */
    assert_int_equal(bridge_xfer_decode(buf, n, &out), BRIDGE_PROTO_ERR_RANGE);
    buf[2] = 0x11, buf[3] = 0x27; /* 10001 ms */
    assert_int_equal(bridge_xfer_decode(buf, n, &out), BRIDGE_PROTO_ERR_RANGE);
    buf[2] = 0x10; /* 10000 ms: the limit */
    assert_int_equal(bridge_xfer_decode(buf, n, &out), BRIDGE_PROTO_OK);
    buf[6] = 1; /* reserved must be zero */
    assert_int_equal(bridge_xfer_decode(buf, n, &out), BRIDGE_PROTO_ERR_RANGE);
    /* the encoder refuses frames outside the limits rather than writing them */
    in.frame_len = 3;
    assert_int_equal(bridge_xfer_encode(&in, buf, sizeof buf), 0);
    in.frame_len = sizeof frame;
    assert_int_equal(bridge_xfer_encode(&in, buf, BRIDGE_XFER_HDR + 2), 0);
}

static void test_broadcast_round_trips(void **state)
{
    (void)state;
    bridge_xfer in = {.flags = BRIDGE_F_BROADCAST, .frame = frame, .frame_len = 4}, out;
    uint8_t buf[BRIDGE_XFER_MAX];
    size_t n = bridge_xfer_encode(&in, buf, sizeof buf);
    assert_int_equal(bridge_xfer_decode(buf, n, &out), BRIDGE_PROTO_OK);
    assert_int_equal(out.flags, BRIDGE_F_BROADCAST);
    assert_int_equal(out.timeout_ms, 0);
}

static void test_result_round_trips_with_times(void **state)
{
    (void)state;
    bridge_result in = {.status = BRIDGE_STATUS_OK,
                        .t = {1000, 2000, 2500, 3000, 0x1122334455667788ull},
                        .frame = frame,
                        .frame_len = sizeof frame},
                  out;
    uint8_t buf[BRIDGE_RESULT_MAX];
    size_t n = bridge_result_encode(&in, buf, sizeof buf);
    assert_int_equal(n, BRIDGE_RESULT_HDR + sizeof frame);
    assert_int_equal(buf[40], 0x88);
    assert_int_equal(buf[47], 0x11);
    assert_int_equal(bridge_result_decode(buf, n, &out), BRIDGE_PROTO_OK);
    assert_int_equal(out.status, BRIDGE_STATUS_OK);
    assert_true(out.t.frame_end_ns == 0x1122334455667788ull);
    assert_int_equal(out.t.tx_done_ns, 2000);
    assert_int_equal(out.frame_len, sizeof frame);
    assert_memory_equal(out.frame, frame, sizeof frame);
    /* a timeout carries no frame and still decodes */
    bridge_result to = {.status = BRIDGE_STATUS_TIMEOUT, .t = {1000, 2000, 0, 0, 0}};
    n = bridge_result_encode(&to, buf, sizeof buf);
    assert_int_equal(n, BRIDGE_RESULT_HDR);
    assert_int_equal(bridge_result_decode(buf, n, &out), BRIDGE_PROTO_OK);
    assert_int_equal(out.status, BRIDGE_STATUS_TIMEOUT);
    assert_int_equal(out.frame_len, 0);
}

static void test_result_refuses_bad_payloads(void **state)
{
    (void)state;
    bridge_result in = {.status = BRIDGE_STATUS_OK,
                        .t = {1000, 2000, 2500, 3000, 4000},
                        .frame = frame,
                        .frame_len = sizeof frame},
                  out;
    uint8_t buf[BRIDGE_RESULT_MAX + 4];
    size_t n = bridge_result_encode(&in, buf, sizeof buf);
    assert_int_equal(bridge_result_decode(buf, BRIDGE_RESULT_HDR - 1, &out),
                     BRIDGE_PROTO_ERR_LENGTH);
    assert_int_equal(bridge_result_decode(buf, n - 1, &out), BRIDGE_PROTO_ERR_LENGTH); /* lies */
    buf[0] = 9;
    assert_int_equal(bridge_result_decode(buf, n, &out), BRIDGE_PROTO_ERR_VERSION);
    buf[0] = BRIDGE_PROTO_VERSION;
    buf[1] = BRIDGE_STATUS_COUNT;
    assert_int_equal(bridge_result_decode(buf, n, &out), BRIDGE_PROTO_ERR_RANGE);
    buf[1] = BRIDGE_STATUS_OK;
    buf[16] = 0; /* tx_done 0x700 < de_on 1000: time ran backwards */
    buf[17] = 0x03;
    assert_int_equal(bridge_result_decode(buf, n, &out), BRIDGE_PROTO_ERR_RANGE);
    in.status = BRIDGE_STATUS_COUNT;
    assert_int_equal(bridge_result_encode(&in, buf, sizeof buf), 0);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(bridge_status_name(BRIDGE_STATUS_TIMEOUT), "BRIDGE_STATUS_TIMEOUT");
    assert_string_equal(bridge_status_name((bridge_status)99), "BRIDGE_STATUS_UNKNOWN");
    assert_string_equal(bridge_proto_err_name(BRIDGE_PROTO_ERR_RANGE), "BRIDGE_PROTO_ERR_RANGE");
    assert_string_equal(bridge_proto_err_name((bridge_proto_err)-1), "BRIDGE_PROTO_ERR_UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xfer_round_trips),
        cmocka_unit_test(test_xfer_refuses_bad_payloads),
        cmocka_unit_test(test_broadcast_round_trips),
        cmocka_unit_test(test_result_round_trips_with_times),
        cmocka_unit_test(test_result_refuses_bad_payloads),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

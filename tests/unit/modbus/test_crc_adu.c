/* CRC-16/MODBUS, RTU timing, and RTU/TCP framing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keel/modbus.h"

static void test_crc16_known_vectors_match(void **state)
{
    (void)state;
    /* The CRC catalogue's check value for CRC-16/MODBUS. */
    const uint8_t check[] = "123456789";
    assert_int_equal(keel_modbus_crc16(check, 9), 0x4B37);
    /* A real frame: unit 1, read holding 0, count 1 -> CRC 0x0A84 (bytes 84 0A on the wire). */
    const uint8_t req[] = {0x01, 0x03, 0x00, 0x00, 0x00, 0x01};
    assert_int_equal(keel_modbus_crc16(req, sizeof req), 0x0A84);
    assert_int_equal(keel_modbus_crc16(req, 0), 0xFFFF);
}

static void test_crc16_slice_by_8_equals_bytewise_all_lengths(void **state)
{
    (void)state;
    uint8_t buf[1031];
    srand(7);
    for (size_t i = 0; i < sizeof buf; i++) {
        buf[i] = (uint8_t)rand();
    }
    for (size_t off = 0; off < 8; off++) {
        for (size_t n = 0; n + off <= sizeof buf; n += 1 + n / 16) {
            assert_int_equal(keel_modbus_crc16(buf + off, n),
                             keel_modbus_crc16_bytewise(buf + off, n));
        }
    }
    /* Incremental update over a split equals one pass. */
    uint16_t c = keel_modbus_crc16_update(0xFFFF, buf, 13);
    assert_int_equal(keel_modbus_crc16_update(c, buf + 13, 500), keel_modbus_crc16(buf, 513));
}

static void test_rtu_timing_low_baud_uses_char_times(void **state)
{
    (void)state;
    keel_modbus_line line = {9600, 8, KEEL_MODBUS_PARITY_EVEN, 1};
    keel_modbus_rtu_timing t;
    assert_int_equal(keel_modbus_rtu_timing_for(&line, &t), KEEL_MODBUS_OK);
    /* 11 bits at 9600 baud = 1145.83 us per character. */
    assert_int_equal(t.char_ns, 1145834);
    assert_int_equal(t.bit_ns, 104167);
    assert_int_equal(t.t15_us, 1719);
    assert_int_equal(t.t35_us, 4011);
    line.parity = KEEL_MODBUS_PARITY_NONE; /* 10 bits */
    assert_int_equal(keel_modbus_rtu_timing_for(&line, &t), KEEL_MODBUS_OK);
    assert_int_equal(t.t35_us, 3646);
}

static void test_rtu_timing_above_19200_is_fixed(void **state)
{
    (void)state;
    keel_modbus_line line = {115200, 8, KEEL_MODBUS_PARITY_NONE, 1};
    keel_modbus_rtu_timing t;
    assert_int_equal(keel_modbus_rtu_timing_for(&line, &t), KEEL_MODBUS_OK);
    assert_int_equal(t.t15_us, 750);
    assert_int_equal(t.t35_us, 1750);
    line.baud = 19200; /* not above: computed, 3.5 * 11 bits / 19200... with 10 bits */
    assert_int_equal(keel_modbus_rtu_timing_for(&line, &t), KEEL_MODBUS_OK);
    assert_int_equal(t.t35_us, 1823);
}

static void test_rtu_timing_bad_line_is_arg_error(void **state)
{
    (void)state;
    keel_modbus_rtu_timing t;
    keel_modbus_line zero = {0, 8, KEEL_MODBUS_PARITY_NONE, 1};
    keel_modbus_line stop3 = {9600, 8, KEEL_MODBUS_PARITY_NONE, 3};
    assert_int_equal(keel_modbus_rtu_timing_for(&zero, &t), KEEL_MODBUS_ERR_ARG);
    assert_int_equal(keel_modbus_rtu_timing_for(&stop3, &t), KEEL_MODBUS_ERR_ARG);
}

static void test_rtu_frame_parse_roundtrip_and_crc_error(void **state)
{
    (void)state;
    const uint8_t pdu[] = {0x03, 0x00, 0x00, 0x00, 0x01};
    uint8_t adu[KEEL_MODBUS_MAX_RTU_ADU];
    size_t n;
    assert_int_equal(keel_modbus_rtu_frame(1, pdu, sizeof pdu, adu, sizeof adu, &n),
                     KEEL_MODBUS_OK);
    const uint8_t want[] = {0x01, 0x03, 0x00, 0x00, 0x00, 0x01, 0x84, 0x0A};
    assert_int_equal(n, sizeof want);
    assert_memory_equal(adu, want, n);
    uint8_t unit;
    const uint8_t *p;
    size_t plen;
    assert_int_equal(keel_modbus_rtu_parse(adu, n, &unit, &p, &plen), KEEL_MODBUS_OK);
    assert_int_equal(unit, 1);
    assert_int_equal(plen, sizeof pdu);
    assert_memory_equal(p, pdu, plen);
    adu[3] ^= 0x10;
    assert_int_equal(keel_modbus_rtu_parse(adu, n, &unit, &p, &plen), KEEL_MODBUS_ERR_CRC);
    assert_int_equal(keel_modbus_rtu_parse(adu, 3, &unit, &p, &plen), KEEL_MODBUS_ERR_SHORT);
    assert_int_equal(keel_modbus_rtu_parse(adu, 257, &unit, &p, &plen), KEEL_MODBUS_ERR_TOO_BIG);
    assert_int_equal(keel_modbus_rtu_frame(1, pdu, sizeof pdu, adu, 7, &n),
                     KEEL_MODBUS_ERR_NO_SPACE);
}

static void test_rtu_frame_len_sizes_requests_and_replies(void **state)
{
    (void)state;
    const uint8_t rd[] = {1, 3};
    assert_int_equal(keel_modbus_rtu_frame_len(rd, 2, true), 8);
    const uint8_t wr[] = {1, 16, 0, 0, 0, 2, 4};
    assert_int_equal(keel_modbus_rtu_frame_len(wr, 6, true), 0);
    assert_int_equal(keel_modbus_rtu_frame_len(wr, 7, true), 13);
    const uint8_t rsp[] = {1, 3, 250};
    assert_int_equal(keel_modbus_rtu_frame_len(rsp, 3, false), 255);
    const uint8_t exc[] = {1, 0x83};
    assert_int_equal(keel_modbus_rtu_frame_len(exc, 2, false), 5);
    const uint8_t unknown[] = {1, 0x42};
    assert_int_equal(keel_modbus_rtu_frame_len(unknown, 2, true), SIZE_MAX);
    const uint8_t devid[] = {1, 43, 14, 1, 0x81, 0, 0, 2, 0, 3, 'a', 'b', 'c', 1, 1};
    assert_int_equal(keel_modbus_rtu_frame_len(devid, 12, false), 0);
    assert_int_equal(keel_modbus_rtu_frame_len(devid, sizeof devid, false), 18);
}

static void test_tcp_parse_streams_and_rejects_bad_headers(void **state)
{
    (void)state;
    const uint8_t pdu[] = {0x03, 0x00, 0x10, 0x00, 0x02};
    uint8_t buf[2 * KEEL_MODBUS_MAX_TCP_ADU];
    size_t n;
    assert_int_equal(keel_modbus_tcp_frame(0x1234, 9, pdu, sizeof pdu, buf, sizeof buf, &n),
                     KEEL_MODBUS_OK);
    const uint8_t want[] = {0x12, 0x34, 0, 0, 0, 6, 9, 0x03, 0x00, 0x10, 0x00, 0x02};
    assert_memory_equal(buf, want, n);
    keel_modbus_mbap h;
    const uint8_t *p;
    size_t plen;
    size_t used;
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(keel_modbus_tcp_parse(buf, k, &h, &p, &plen, &used),
                         KEEL_MODBUS_ERR_SHORT);
        assert_int_equal(used, 0);
    }
    assert_int_equal(keel_modbus_tcp_parse(buf, n, &h, &p, &plen, &used), KEEL_MODBUS_OK);
    assert_int_equal(used, n);
    assert_int_equal(h.tid, 0x1234);
    assert_int_equal(h.unit, 9);
    assert_int_equal(plen, sizeof pdu);
    buf[2] = 1; /* protocol id 0x0100 */
    assert_int_equal(keel_modbus_tcp_parse(buf, n, &h, &p, &plen, &used), KEEL_MODBUS_ERR_FRAME);
    buf[2] = 0;
    buf[4] = 0x01; /* length 262 */
    assert_int_equal(keel_modbus_tcp_parse(buf, n, &h, &p, &plen, &used), KEEL_MODBUS_ERR_FRAME);
    buf[4] = 0;
    buf[5] = 1; /* length 1: no function code */
    assert_int_equal(keel_modbus_tcp_parse(buf, n, &h, &p, &plen, &used), KEEL_MODBUS_ERR_FRAME);
}

static void test_err_and_exc_names_cover_every_value(void **state)
{
    (void)state;
    for (int e = 0; e < KEEL_MODBUS_ERR_COUNT; e++) {
        assert_non_null(keel_modbus_err_name((keel_modbus_err)e));
        assert_null(strstr(keel_modbus_err_name((keel_modbus_err)e), "UNKNOWN"));
    }
    assert_string_equal(keel_modbus_err_name(KEEL_MODBUS_ERR_COUNT), "KEEL_MODBUS_ERR_UNKNOWN");
    assert_string_equal(keel_modbus_exc_name(2), "illegal data address");
    assert_string_equal(keel_modbus_exc_name(99), "unknown exception");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16_known_vectors_match),
        cmocka_unit_test(test_crc16_slice_by_8_equals_bytewise_all_lengths),
        cmocka_unit_test(test_rtu_timing_low_baud_uses_char_times),
        cmocka_unit_test(test_rtu_timing_above_19200_is_fixed),
        cmocka_unit_test(test_rtu_timing_bad_line_is_arg_error),
        cmocka_unit_test(test_rtu_frame_parse_roundtrip_and_crc_error),
        cmocka_unit_test(test_rtu_frame_len_sizes_requests_and_replies),
        cmocka_unit_test(test_tcp_parse_streams_and_rejects_bad_headers),
        cmocka_unit_test(test_err_and_exc_names_cover_every_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

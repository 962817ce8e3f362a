/* The master state machine: RTU frames ended by length or by silence, timeouts counted from
 * the end of the request, late replies dropped and never taken for the next reply, broadcast
 * turnaround, TCP transaction ids. Time is a number the test chooses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keel/modbus.h"

static keel_modbus_master m;
static uint8_t out[KEEL_MODBUS_MAX_TCP_ADU];
static size_t out_len;
static const keel_modbus_line line9600 = {9600, 8, KEEL_MODBUS_PARITY_EVEN, 1};

static int setup_rtu(void **state)
{
    (void)state;
    assert_int_equal(keel_modbus_master_init(&m, KEEL_MODBUS_RTU, &line9600), KEEL_MODBUS_OK);
    m.timeout_us = 100000;
    return 0;
}

static void start_read(uint64_t now, uint8_t unit, uint16_t count)
{
    uint8_t pdu[8];
    size_t n;
    assert_int_equal(keel_modbus_req_read(3, 0, count, pdu, sizeof pdu, &n), KEEL_MODBUS_OK);
    assert_int_equal(keel_modbus_master_start(&m, now, unit, pdu, n, out, sizeof out, &out_len),
                     KEEL_MODBUS_OK);
}

/* An RTU reply to "read `count` holding registers" from `unit`, values 100+i. */
static size_t rtu_reply(uint8_t unit, uint16_t count, uint8_t *buf)
{
    uint8_t pdu[KEEL_MODBUS_MAX_PDU];
    pdu[0] = 3;
    pdu[1] = (uint8_t)(2 * count);
    for (uint16_t i = 0; i < count; i++) {
        pdu[2 + 2 * i] = 0;
        pdu[3 + 2 * i] = (uint8_t)(100 + i);
    }
    size_t n;
    assert_int_equal(keel_modbus_rtu_frame(unit, pdu, 2u + 2u * count, buf, 256, &n),
                     KEEL_MODBUS_OK);
    return n;
}

static void test_master_rtu_reply_in_pieces_completes_by_length(void **state)
{
    (void)state;
    start_read(1000, 5, 3);
    assert_int_equal(out_len, 8);
    uint8_t rsp[64];
    size_t n = rtu_reply(5, 3, rsp);
    uint64_t t = 20000;
    for (size_t i = 0; i + 1 < n; i++, t += 1146) {
        assert_int_equal(keel_modbus_master_input(&m, t, rsp + i, 1), KEEL_MODBUS_ERR_AGAIN);
        assert_int_equal(keel_modbus_master_deadline(&m), t + m.timing.t35_us);
    }
    assert_int_equal(keel_modbus_master_input(&m, t, rsp + n - 1, 1), KEEL_MODBUS_OK);
    const uint8_t *req, *reply;
    size_t req_len, reply_len;
    keel_modbus_master_request(&m, &req, &req_len);
    keel_modbus_master_reply(&m, &reply, &reply_len);
    uint16_t regs[3];
    assert_int_equal(keel_modbus_rsp_registers(req, req_len, reply, reply_len, regs, 3, NULL),
                     KEEL_MODBUS_OK);
    assert_int_equal(regs[2], 102);
    assert_int_equal(m.stats.replies, 1);
    assert_int_equal(keel_modbus_master_deadline(&m), UINT64_MAX);
}

static void test_master_rtu_gap_over_t35_ends_frame_as_crc_error(void **state)
{
    (void)state;
    start_read(0, 5, 3);
    uint8_t rsp[64];
    size_t n = rtu_reply(5, 3, rsp);
    assert_int_equal(keel_modbus_master_input(&m, 10000, rsp, 4), KEEL_MODBUS_ERR_AGAIN);
    /* Silence of t3.5 ends the frame: 4 bytes of 11 fail the CRC. */
    assert_int_equal(keel_modbus_master_poll(&m, 10000 + m.timing.t35_us - 1),
                     KEEL_MODBUS_ERR_AGAIN);
    assert_int_equal(keel_modbus_master_poll(&m, 10000 + m.timing.t35_us), KEEL_MODBUS_ERR_CRC);
    assert_int_equal(m.stats.crc_errors, 1);
    /* The rest arrives: stray, and the bus stays busy t3.5 after it. */
    uint64_t t = 10000 + m.timing.t35_us + 500;
    assert_int_equal(keel_modbus_master_input(&m, t, rsp + 4, n - 4), KEEL_MODBUS_ERR_AGAIN);
    assert_int_equal(m.stats.stray_bytes, n - 4);
    uint8_t pdu[5] = {3, 0, 0, 0, 1};
    assert_int_equal(keel_modbus_master_start(&m, t + 1, 5, pdu, 5, out, sizeof out, &out_len),
                     KEEL_MODBUS_ERR_BUSY);
    assert_int_equal(
        keel_modbus_master_start(&m, t + m.timing.t35_us, 5, pdu, 5, out, sizeof out, &out_len),
        KEEL_MODBUS_OK);
}

static void test_master_rtu_timeout_counts_from_end_of_request(void **state)
{
    (void)state;
    start_read(0, 5, 1);
    /* 8 bytes at 11 bits / 9600 baud = 9167 us on the wire, then the 100 ms timeout. */
    uint64_t end = 8ull * m.timing.char_ns / 1000u + 100000;
    assert_int_equal(keel_modbus_master_deadline(&m), end);
    assert_int_equal(keel_modbus_master_poll(&m, end - 1), KEEL_MODBUS_ERR_AGAIN);
    assert_int_equal(keel_modbus_master_poll(&m, end), KEEL_MODBUS_ERR_TIMEOUT);
    assert_int_equal(m.stats.timeouts, 1);
}

static void test_master_rtu_late_reply_is_not_the_next_reply(void **state)
{
    (void)state;
    start_read(0, 5, 1);
    uint64_t t = keel_modbus_master_deadline(&m);
    assert_int_equal(keel_modbus_master_poll(&m, t), KEEL_MODBUS_ERR_TIMEOUT);
    uint8_t late[16];
    size_t n = rtu_reply(5, 1, late);
    assert_int_equal(keel_modbus_master_input(&m, t + 10, late, n), KEEL_MODBUS_ERR_AGAIN);
    assert_int_equal(m.stats.stray_bytes, n);
    assert_int_equal(m.stats.replies, 0);
    /* The next request waits for the bus; it then times out, it does not see the late reply. */
    uint8_t pdu[5] = {3, 0, 0, 0, 1};
    assert_int_equal(keel_modbus_master_start(&m, t + 20, 5, pdu, 5, out, sizeof out, &out_len),
                     KEEL_MODBUS_ERR_BUSY);
    uint64_t t2 = t + 10 + m.timing.t35_us;
    assert_int_equal(keel_modbus_master_start(&m, t2, 5, pdu, 5, out, sizeof out, &out_len),
                     KEEL_MODBUS_OK);
    assert_int_equal(keel_modbus_master_poll(&m, keel_modbus_master_deadline(&m)),
                     KEEL_MODBUS_ERR_TIMEOUT);
    assert_int_equal(m.stats.replies, 0);
    assert_int_equal(m.stats.timeouts, 2);
}

static void test_master_rtu_exception_and_mismatch(void **state)
{
    (void)state;
    start_read(0, 5, 1);
    const uint8_t exc_pdu[] = {0x83, 0x02};
    uint8_t f[8];
    size_t n;
    assert_int_equal(keel_modbus_rtu_frame(5, exc_pdu, 2, f, sizeof f, &n), KEEL_MODBUS_OK);
    assert_int_equal(keel_modbus_master_input(&m, 20000, f, n), KEEL_MODBUS_ERR_EXCEPTION);
    assert_int_equal(m.last_exception, 2);
    assert_int_equal(m.stats.exceptions, 1);
    start_read(30000, 5, 1);
    uint8_t rsp[16];
    n = rtu_reply(6, 1, rsp); /* another unit answers */
    assert_int_equal(keel_modbus_master_input(&m, 40000, rsp, n), KEEL_MODBUS_ERR_MISMATCH);
    start_read(60000, 5, 1);
    n = rtu_reply(5, 2, rsp); /* two registers for a request of one */
    assert_int_equal(keel_modbus_master_input(&m, 70000, rsp, n), KEEL_MODBUS_ERR_MISMATCH);
    assert_int_equal(m.stats.frame_errors, 2);
}

static void test_master_rtu_broadcast_waits_turnaround(void **state)
{
    (void)state;
    uint8_t pdu[5];
    size_t n;
    assert_int_equal(keel_modbus_req_write_register(1, 2, pdu, sizeof pdu, &n), KEEL_MODBUS_OK);
    assert_int_equal(keel_modbus_master_start(&m, 0, 0, pdu, n, out, sizeof out, &out_len),
                     KEEL_MODBUS_OK);
    uint64_t d = keel_modbus_master_deadline(&m);
    assert_true(d >= m.turnaround_us);
    assert_int_equal(keel_modbus_master_start(&m, 1, 1, pdu, n, out, sizeof out, &out_len),
                     KEEL_MODBUS_ERR_BUSY);
    assert_int_equal(keel_modbus_master_poll(&m, d - 1), KEEL_MODBUS_ERR_AGAIN);
    assert_int_equal(keel_modbus_master_poll(&m, d), KEEL_MODBUS_OK);
}

static void test_master_tcp_drops_stale_transaction_ids(void **state)
{
    (void)state;
    assert_int_equal(keel_modbus_master_init(&m, KEEL_MODBUS_TCP, NULL), KEEL_MODBUS_OK);
    start_read(0, 1, 1);
    uint16_t tid1 = (uint16_t)((out[0] << 8) | out[1]);
    assert_int_equal(keel_modbus_master_poll(&m, keel_modbus_master_deadline(&m)),
                     KEEL_MODBUS_ERR_TIMEOUT);
    start_read(2000000, 1, 1);
    uint16_t tid2 = (uint16_t)((out[0] << 8) | out[1]);
    assert_int_not_equal(tid1, tid2);
    const uint8_t r1[] = {3, 2, 0, 11};
    const uint8_t r2[] = {3, 2, 0, 22};
    uint8_t stream[64];
    size_t a, b;
    assert_int_equal(keel_modbus_tcp_frame(tid1, 1, r1, 4, stream, sizeof stream, &a),
                     KEEL_MODBUS_OK);
    assert_int_equal(keel_modbus_tcp_frame(tid2, 1, r2, 4, stream + a, sizeof stream - a, &b),
                     KEEL_MODBUS_OK);
    keel_modbus_err e = KEEL_MODBUS_ERR_AGAIN;
    for (size_t i = 0; i < a + b; i++) { /* byte by byte */
        assert_int_equal(e, KEEL_MODBUS_ERR_AGAIN);
        e = keel_modbus_master_input(&m, 2000100 + i, stream + i, 1);
    }
    assert_int_equal(e, KEEL_MODBUS_OK);
    const uint8_t *reply;
    size_t len;
    keel_modbus_master_reply(&m, &reply, &len);
    assert_int_equal(reply[3], 22);
    assert_int_equal(m.stats.stray_bytes, a);
}

static void test_master_tcp_bad_header_and_busy(void **state)
{
    (void)state;
    assert_int_equal(keel_modbus_master_init(&m, KEEL_MODBUS_TCP, NULL), KEEL_MODBUS_OK);
    start_read(0, 1, 1);
    uint8_t pdu[5] = {3, 0, 0, 0, 1};
    assert_int_equal(keel_modbus_master_start(&m, 1, 1, pdu, 5, out, sizeof out, &out_len),
                     KEEL_MODBUS_ERR_BUSY);
    const uint8_t bad[] = {0, 1, 0, 9, 0, 3, 1, 3, 0};
    assert_int_equal(keel_modbus_master_input(&m, 5, bad, sizeof bad), KEEL_MODBUS_ERR_FRAME);
    keel_modbus_master_abort(&m);
    assert_int_equal(keel_modbus_master_start(&m, 6, 1, pdu, 5, out, 8, &out_len),
                     KEEL_MODBUS_ERR_NO_SPACE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_master_rtu_reply_in_pieces_completes_by_length, setup_rtu),
        cmocka_unit_test_setup(test_master_rtu_gap_over_t35_ends_frame_as_crc_error, setup_rtu),
        cmocka_unit_test_setup(test_master_rtu_timeout_counts_from_end_of_request, setup_rtu),
        cmocka_unit_test_setup(test_master_rtu_late_reply_is_not_the_next_reply, setup_rtu),
        cmocka_unit_test_setup(test_master_rtu_exception_and_mismatch, setup_rtu),
        cmocka_unit_test_setup(test_master_rtu_broadcast_waits_turnaround, setup_rtu),
        cmocka_unit_test(test_master_tcp_drops_stale_transaction_ids),
        cmocka_unit_test(test_master_tcp_bad_header_and_busy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

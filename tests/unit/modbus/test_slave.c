/* The slave: every function code against a register map, every exception it can raise,
 * broadcast and listen-only semantics, FC 8 counters, and RTU/TCP framing around it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keel/modbus.h"

static uint8_t coils[64], discrete[32];
static uint16_t holding[200], input[50], file1[100];
static keel_modbus_file files[] = {{1, 100, file1}};
static keel_modbus_map map;
static keel_modbus_slave slave;
static uint8_t rsp[KEEL_MODBUS_MAX_PDU];
static size_t rsp_len;

static int setup(void **state)
{
    (void)state;
    memset(&map, 0, sizeof map);
    for (unsigned i = 0; i < 64; i++) {
        coils[i] = (uint8_t)(i % 3 == 0);
    }
    for (unsigned i = 0; i < 32; i++) {
        discrete[i] = (uint8_t)(i & 1);
    }
    for (unsigned i = 0; i < 200; i++) {
        holding[i] = (uint16_t)(1000 + i);
    }
    for (unsigned i = 0; i < 50; i++) {
        input[i] = (uint16_t)(5000 + i);
    }
    for (unsigned i = 0; i < 100; i++) {
        file1[i] = (uint16_t)(0xF000 + i);
    }
    map.coil_base = 0, map.coil_count = 64, map.coils = coils;
    map.discrete_base = 100, map.discrete_count = 32, map.discrete = discrete;
    map.holding_base = 0, map.holding_count = 200, map.holding = holding;
    map.input_base = 0, map.input_count = 50, map.input = input;
    map.files = files, map.file_count = 1;
    map.ident[0] = "Keel";
    map.ident[1] = "KS-1";
    map.ident[2] = "1.0";
    keel_modbus_slave_init(&slave, 7, &keel_modbus_map_model, &map);
    return 0;
}

/* Sends a request PDU to unit 7; returns the reply length. */
static size_t ask(const uint8_t *req, size_t n)
{
    assert_int_equal(keel_modbus_slave_pdu(&slave, 7, req, n, rsp, sizeof rsp, &rsp_len),
                     KEEL_MODBUS_OK);
    return rsp_len;
}

static void expect_exception(const uint8_t *req, size_t n, uint8_t code)
{
    assert_int_equal(ask(req, n), 2);
    assert_int_equal(rsp[0], req[0] | 0x80);
    assert_int_equal(rsp[1], code);
}

static void test_read_coils_packs_lsb_first(void **state)
{
    (void)state;
    const uint8_t req[] = {1, 0, 0, 0, 10};
    assert_int_equal(ask(req, sizeof req), 4);
    assert_int_equal(rsp[1], 2);
    /* coils 0,3,6,9 set: 0b01001001 then 0b10 */
    assert_int_equal(rsp[2], 0x49);
    assert_int_equal(rsp[3], 0x02);
}

static void test_read_discrete_inputs_at_base(void **state)
{
    (void)state;
    const uint8_t req[] = {2, 0, 100, 0, 8};
    assert_int_equal(ask(req, sizeof req), 3);
    assert_int_equal(rsp[2], 0xAA);
    const uint8_t below[] = {2, 0, 99, 0, 1};
    expect_exception(below, sizeof below, KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
}

static void test_read_holding_and_input_registers(void **state)
{
    (void)state;
    const uint8_t req[] = {3, 0, 198, 0, 2};
    assert_int_equal(ask(req, sizeof req), 6);
    assert_int_equal(rsp[1], 4);
    assert_int_equal((rsp[2] << 8) | rsp[3], 1198);
    assert_int_equal((rsp[4] << 8) | rsp[5], 1199);
    const uint8_t in[] = {4, 0, 0, 0, 125};
    expect_exception(in, sizeof in, KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS); /* only 50 */
    const uint8_t in2[] = {4, 0, 49, 0, 1};
    assert_int_equal(ask(in2, sizeof in2), 4);
    assert_int_equal((rsp[2] << 8) | rsp[3], 5049);
}

static void test_read_quantity_out_of_range_is_illegal_value(void **state)
{
    (void)state;
    const uint8_t zero[] = {3, 0, 0, 0, 0};
    expect_exception(zero, sizeof zero, KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    const uint8_t many[] = {3, 0, 0, 0, 126};
    expect_exception(many, sizeof many, KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    const uint8_t bits[] = {1, 0, 0, 0x07, 0xD1}; /* 2001 */
    expect_exception(bits, sizeof bits, KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    const uint8_t wrap[] = {3, 0xFF, 0xFF, 0, 2}; /* 65535 + 2 */
    expect_exception(wrap, sizeof wrap, KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
    const uint8_t shortreq[] = {3, 0, 0, 0};
    expect_exception(shortreq, sizeof shortreq, KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
}

static void test_write_single_coil_echoes_and_rejects_bad_value(void **state)
{
    (void)state;
    const uint8_t on[] = {5, 0, 1, 0xFF, 0x00};
    assert_int_equal(ask(on, sizeof on), 5);
    assert_memory_equal(rsp, on, 5);
    assert_int_equal(coils[1], 1);
    const uint8_t bad[] = {5, 0, 1, 0x12, 0x34};
    expect_exception(bad, sizeof bad, KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    assert_int_equal(coils[1], 1);
    const uint8_t off[] = {5, 0, 1, 0, 0};
    assert_int_equal(ask(off, sizeof off), 5);
    assert_int_equal(coils[1], 0);
    const uint8_t outside[] = {5, 0, 64, 0xFF, 0};
    expect_exception(outside, sizeof outside, KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
}

static void test_write_single_register(void **state)
{
    (void)state;
    const uint8_t req[] = {6, 0, 10, 0xBE, 0xEF};
    assert_int_equal(ask(req, sizeof req), 5);
    assert_memory_equal(rsp, req, 5);
    assert_int_equal(holding[10], 0xBEEF);
    const uint8_t outside[] = {6, 0, 200, 0, 1};
    expect_exception(outside, sizeof outside, KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
}

static void test_write_multiple_coils_checks_byte_count(void **state)
{
    (void)state;
    const uint8_t req[] = {15, 0, 8, 0, 10, 2, 0xFF, 0x03};
    assert_int_equal(ask(req, sizeof req), 5);
    assert_memory_equal(rsp, req, 5);
    for (unsigned i = 8; i < 18; i++) {
        assert_int_equal(coils[i], 1);
    }
    assert_int_equal(coils[19], 0); /* past the 10 written */
    const uint8_t badcount[] = {15, 0, 8, 0, 10, 1, 0xFF};
    expect_exception(badcount, sizeof badcount, KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    const uint8_t truncated[] = {15, 0, 8, 0, 10, 2, 0xFF};
    expect_exception(truncated, sizeof truncated, KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    const uint8_t outside[] = {15, 0, 60, 0, 10, 2, 0xFF, 0x03};
    expect_exception(outside, sizeof outside, KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
}

static void test_write_multiple_registers_all_or_nothing(void **state)
{
    (void)state;
    const uint8_t req[] = {16, 0, 20, 0, 2, 4, 0x11, 0x22, 0x33, 0x44};
    assert_int_equal(ask(req, sizeof req), 5);
    assert_int_equal(holding[20], 0x1122);
    assert_int_equal(holding[21], 0x3344);
    const uint8_t across[] = {16, 0, 199, 0, 2, 4, 0, 1, 0, 2}; /* 199 ok, 200 not */
    expect_exception(across, sizeof across, KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
    assert_int_equal(holding[199], 1199); /* unchanged */
    const uint8_t toomany[] = {16, 0, 0, 0, 124, 248};
    expect_exception(toomany, sizeof toomany, KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
}

static void test_mask_write_register_applies_spec_formula(void **state)
{
    (void)state;
    holding[4] = 0x12;
    const uint8_t req[] = {22, 0, 4, 0, 0xF2, 0, 0x25};
    assert_int_equal(ask(req, sizeof req), 7);
    assert_memory_equal(rsp, req, 7);
    assert_int_equal(holding[4], 0x17); /* the spec's worked example */
}

static void test_read_write_registers_writes_first(void **state)
{
    (void)state;
    const uint8_t req[] = {23, 0, 30, 0, 2, 0, 31, 0, 1, 2, 0xAB, 0xCD};
    assert_int_equal(ask(req, sizeof req), 6);
    assert_int_equal(rsp[1], 4);
    assert_int_equal((rsp[2] << 8) | rsp[3], 1030);
    assert_int_equal((rsp[4] << 8) | rsp[5], 0xABCD);
    const uint8_t badbc[] = {23, 0, 30, 0, 2, 0, 31, 0, 1, 4, 0xAB, 0xCD};
    expect_exception(badbc, sizeof badbc, KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    const uint8_t wtoomany[] = {23, 0, 0, 0, 1, 0, 0, 0, 122, 244};
    expect_exception(wtoomany, sizeof wtoomany, KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
}

static void test_unknown_function_is_illegal_function(void **state)
{
    (void)state;
    const uint8_t req[] = {0x41, 1, 2};
    expect_exception(req, sizeof req, KEEL_MODBUS_EXC_ILLEGAL_FUNCTION);
    const uint8_t fc7[] = {7};
    expect_exception(fc7, sizeof fc7, KEEL_MODBUS_EXC_ILLEGAL_FUNCTION);
}

static void test_model_without_callback_is_illegal_function(void **state)
{
    (void)state;
    static const keel_modbus_model empty = {0};
    keel_modbus_slave_init(&slave, 7, &empty, NULL);
    const uint8_t fcs[][5] = {{1, 0, 0, 0, 1}, {3, 0, 0, 0, 1}, {5, 0, 0, 0, 0}, {6, 0, 0, 0, 0}};
    for (size_t i = 0; i < 4; i++) {
        expect_exception(fcs[i], 5, KEEL_MODBUS_EXC_ILLEGAL_FUNCTION);
    }
    const uint8_t rid[] = {17};
    expect_exception(rid, 1, KEEL_MODBUS_EXC_ILLEGAL_FUNCTION);
}

static uint8_t busy_regs(void *ctx, int t, uint16_t a, uint16_t n, uint16_t *r)
{
    (void)ctx, (void)t, (void)a, (void)n, (void)r;
    return KEEL_MODBUS_EXC_SERVER_DEVICE_BUSY;
}

static void test_model_exception_passes_through_and_is_counted(void **state)
{
    (void)state;
    static const keel_modbus_model busy = {.read_regs = busy_regs};
    keel_modbus_slave_init(&slave, 7, &busy, NULL);
    const uint8_t req[] = {3, 0, 0, 0, 1};
    expect_exception(req, sizeof req, KEEL_MODBUS_EXC_SERVER_DEVICE_BUSY);
    assert_int_equal(slave.counters.server_busy, 1);
    assert_int_equal(slave.counters.bus_exceptions, 1);
}

static void test_diagnostics_echo_and_counters(void **state)
{
    (void)state;
    const uint8_t echo[] = {8, 0, 0, 0xA5, 0x37, 0x12, 0x34};
    assert_int_equal(ask(echo, sizeof echo), sizeof echo);
    assert_memory_equal(rsp, echo, sizeof echo);
    const uint8_t bad[] = {3, 0, 0, 0, 0};
    expect_exception(bad, sizeof bad, KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    const uint8_t exc_count[] = {8, 0, 13, 0, 0};
    assert_int_equal(ask(exc_count, sizeof exc_count), 5);
    assert_int_equal((rsp[3] << 8) | rsp[4], 1);
    const uint8_t msg_count[] = {8, 0, 14, 0, 0};
    assert_int_equal(ask(msg_count, sizeof msg_count), 5);
    assert_int_equal((rsp[3] << 8) | rsp[4], 4); /* echo, bad, exc_count, this one */
    const uint8_t clear[] = {8, 0, 10, 0, 0};
    assert_int_equal(ask(clear, sizeof clear), 5);
    assert_int_equal(slave.counters.bus_exceptions, 0);
    const uint8_t unknown_sub[] = {8, 0, 99, 0, 0};
    expect_exception(unknown_sub, sizeof unknown_sub, KEEL_MODBUS_EXC_ILLEGAL_FUNCTION);
    const uint8_t nonzero[] = {8, 0, 11, 0, 1};
    expect_exception(nonzero, sizeof nonzero, KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
}

static void test_diagnostics_listen_only_until_restart(void **state)
{
    (void)state;
    const uint8_t listen[] = {8, 0, 4, 0, 0};
    assert_int_equal(ask(listen, sizeof listen), 0);
    const uint8_t rd[] = {3, 0, 0, 0, 1};
    assert_int_equal(ask(rd, sizeof rd), 0);
    assert_int_equal(ask(rd, sizeof rd), 0);
    const uint8_t restart[] = {8, 0, 1, 0, 0};
    assert_int_equal(ask(restart, sizeof restart), 0); /* no reply when leaving listen-only */
    assert_false(slave.listen_only);
    assert_int_equal(ask(rd, sizeof rd), 4);
    assert_int_equal(ask(restart, sizeof restart), 5); /* now echoed */
}

static void test_report_server_id_appends_run_indicator(void **state)
{
    (void)state;
    const uint8_t req[] = {17};
    assert_int_equal(ask(req, 1), 2 + 4 + 1);
    assert_int_equal(rsp[1], 5);
    assert_memory_equal(rsp + 2, "KS-1", 4);
    assert_int_equal(rsp[6], 0xFF);
}

static void test_read_file_record_two_subrequests(void **state)
{
    (void)state;
    const uint8_t req[] = {20, 14, 6, 0, 1, 0, 2, 0, 2, 6, 0, 1, 0, 98, 0, 2};
    assert_int_equal(ask(req, sizeof req), 2 + 6 + 6);
    assert_int_equal(rsp[1], 12);
    assert_int_equal(rsp[2], 5);
    assert_int_equal(rsp[3], 6);
    assert_int_equal((rsp[4] << 8) | rsp[5], 0xF002);
    assert_int_equal((rsp[12] << 8) | rsp[13], 0xF063);
    keel_modbus_file_ref refs[2] = {{1, 2, 2, NULL}, {1, 98, 2, NULL}};
    uint16_t a[2], b[2];
    refs[0].data = a;
    refs[1].data = b;
    assert_int_equal(keel_modbus_rsp_read_file(rsp, rsp_len, refs, 2, NULL), KEEL_MODBUS_OK);
    assert_int_equal(b[1], 0xF063);
}

static void test_read_file_record_errors(void **state)
{
    (void)state;
    const uint8_t badtype[] = {20, 7, 5, 0, 1, 0, 0, 0, 1};
    expect_exception(badtype, sizeof badtype, KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
    const uint8_t nofile[] = {20, 7, 6, 0, 2, 0, 0, 0, 1};
    expect_exception(nofile, sizeof nofile, KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
    const uint8_t past[] = {20, 7, 6, 0, 1, 0, 99, 0, 2};
    expect_exception(past, sizeof past, KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
    const uint8_t record10000[] = {20, 7, 6, 0, 1, 0x27, 0x10, 0, 1};
    expect_exception(record10000, sizeof record10000, KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
    const uint8_t badbc[] = {20, 8, 6, 0, 1, 0, 0, 0, 1, 0};
    expect_exception(badbc, sizeof badbc, KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    const uint8_t toolong[] = {20, 7, 6, 0, 1, 0, 0, 0, 126}; /* reply > PDU */
    expect_exception(toolong, sizeof toolong, KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
}

static void test_write_file_record_echoes_and_is_atomic(void **state)
{
    (void)state;
    uint16_t data[3] = {0x0102, 0x0304, 0x0506};
    keel_modbus_file_ref ref = {1, 10, 3, data};
    uint8_t req[KEEL_MODBUS_MAX_PDU];
    size_t n;
    assert_int_equal(keel_modbus_req_write_file(&ref, 1, req, sizeof req, &n), KEEL_MODBUS_OK);
    assert_int_equal(ask(req, n), n);
    assert_memory_equal(rsp, req, n);
    assert_int_equal(file1[11], 0x0304);
    /* Two sub-requests, the second one malformed (reference type 5): nothing is written. */
    const uint8_t two[] = {21,   18, 6, 0, 1, 0, 0, 0, 1,    0xAA,
                           0xAA, 5,  0, 1, 0, 1, 0, 1, 0xBB, 0xBB};
    expect_exception(two, sizeof two, KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
    assert_int_equal(file1[0], 0xF000);
    const uint8_t ragged[] = {21, 10, 6, 0, 1, 0, 0, 0, 2, 0xAA, 0xAA, 0xAA};
    expect_exception(ragged, sizeof ragged, KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
}

static void test_device_id_basic_stream_and_individual(void **state)
{
    (void)state;
    const uint8_t basic[] = {43, 14, 1, 0};
    size_t n = ask(basic, sizeof basic);
    keel_modbus_device_id id;
    assert_int_equal(keel_modbus_rsp_device_id(rsp, n, &id, NULL), KEEL_MODBUS_OK);
    assert_int_equal(id.count, 3);
    assert_false(id.more);
    assert_int_equal(id.conformity, 0x81);
    assert_int_equal(id.objects[1].len, 4);
    assert_memory_equal(id.objects[1].value, "KS-1", 4);
    const uint8_t one[] = {43, 14, 4, 2};
    n = ask(one, sizeof one);
    assert_int_equal(keel_modbus_rsp_device_id(rsp, n, &id, NULL), KEEL_MODBUS_OK);
    assert_int_equal(id.count, 1);
    assert_memory_equal(id.objects[0].value, "1.0", 3);
    const uint8_t missing[] = {43, 14, 4, 5};
    expect_exception(missing, sizeof missing, KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
    const uint8_t badcode[] = {43, 14, 5, 0};
    expect_exception(badcode, sizeof badcode, KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    const uint8_t othermei[] = {43, 13, 1, 0};
    expect_exception(othermei, sizeof othermei, KEEL_MODBUS_EXC_ILLEGAL_FUNCTION);
}

static void test_device_id_long_values_set_more_follows(void **state)
{
    (void)state;
    static char big[3][120];
    for (int i = 0; i < 3; i++) {
        memset(big[i], 'a' + i, 119);
        big[i][119] = 0;
        map.ident[i] = big[i];
    }
    const uint8_t basic[] = {43, 14, 1, 0};
    size_t n = ask(basic, sizeof basic);
    keel_modbus_device_id id;
    assert_int_equal(keel_modbus_rsp_device_id(rsp, n, &id, NULL), KEEL_MODBUS_OK);
    assert_true(id.more);
    assert_int_equal(id.count, 2);
    assert_int_equal(id.next_object, 2);
    const uint8_t next[] = {43, 14, 1, 2};
    n = ask(next, sizeof next);
    assert_int_equal(keel_modbus_rsp_device_id(rsp, n, &id, NULL), KEEL_MODBUS_OK);
    assert_false(id.more);
    assert_int_equal(id.objects[0].id, 2);
}

static void test_broadcast_writes_but_never_answers(void **state)
{
    (void)state;
    const uint8_t req[] = {6, 0, 3, 0x55, 0xAA};
    assert_int_equal(keel_modbus_slave_pdu(&slave, 0, req, sizeof req, rsp, sizeof rsp, &rsp_len),
                     KEEL_MODBUS_OK);
    assert_int_equal(rsp_len, 0);
    assert_int_equal(holding[3], 0x55AA);
    assert_int_equal(slave.counters.server_no_response, 1);
    const uint8_t other[] = {6, 0, 3, 0, 0};
    assert_int_equal(
        keel_modbus_slave_pdu(&slave, 8, other, sizeof other, rsp, sizeof rsp, &rsp_len),
        KEEL_MODBUS_OK);
    assert_int_equal(rsp_len, 0);
    assert_int_equal(holding[3], 0x55AA); /* another unit's request changes nothing */
}

static void test_rtu_frames_counted_and_bad_crc_dropped(void **state)
{
    (void)state;
    uint8_t adu[KEEL_MODBUS_MAX_RTU_ADU], out[KEEL_MODBUS_MAX_RTU_ADU];
    size_t n, m;
    const uint8_t pdu[] = {3, 0, 0, 0, 1};
    assert_int_equal(keel_modbus_rtu_frame(7, pdu, sizeof pdu, adu, sizeof adu, &n),
                     KEEL_MODBUS_OK);
    assert_int_equal(keel_modbus_slave_rtu(&slave, adu, n, out, sizeof out, &m), KEEL_MODBUS_OK);
    assert_int_equal(m, 7);
    assert_int_equal(keel_modbus_crc16(out, m), 0); /* a frame with its CRC checks to 0 */
    adu[2] ^= 1;
    assert_int_equal(keel_modbus_slave_rtu(&slave, adu, n, out, sizeof out, &m),
                     KEEL_MODBUS_ERR_CRC);
    assert_int_equal(m, 0);
    assert_int_equal(keel_modbus_slave_rtu(&slave, adu, 2, out, sizeof out, &m),
                     KEEL_MODBUS_ERR_SHORT);
    assert_int_equal(keel_modbus_slave_rtu(&slave, adu, 300, out, sizeof out, &m),
                     KEEL_MODBUS_ERR_TOO_BIG);
    assert_int_equal(slave.counters.bus_messages, 4);
    assert_int_equal(slave.counters.bus_comm_errors, 3);
    assert_int_equal(slave.counters.char_overruns, 1);
}

static void test_tcp_stream_of_two_requests_answers_both(void **state)
{
    (void)state;
    uint8_t buf[64], out[KEEL_MODBUS_MAX_TCP_ADU];
    size_t a, b, used, m;
    const uint8_t p1[] = {3, 0, 0, 0, 1};
    const uint8_t p2[] = {4, 0, 1, 0, 1};
    assert_int_equal(keel_modbus_tcp_frame(1, 7, p1, 5, buf, sizeof buf, &a), KEEL_MODBUS_OK);
    assert_int_equal(keel_modbus_tcp_frame(2, 0xFF, p2, 5, buf + a, sizeof buf - a, &b),
                     KEEL_MODBUS_OK);
    assert_int_equal(keel_modbus_slave_tcp(&slave, buf, a + b, &used, out, sizeof out, &m),
                     KEEL_MODBUS_OK);
    assert_int_equal(used, a);
    assert_int_equal(out[1], 1);
    assert_int_equal(keel_modbus_slave_tcp(&slave, buf + a, b, &used, out, sizeof out, &m),
                     KEEL_MODBUS_OK);
    assert_int_equal(out[1], 2); /* tid echoed */
    assert_int_equal(out[6], 0xFF);
    assert_int_equal((out[9] << 8) | out[10], 5001);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup(f, setup)
    const struct CMUnitTest tests[] = {
        T(test_read_coils_packs_lsb_first),
        T(test_read_discrete_inputs_at_base),
        T(test_read_holding_and_input_registers),
        T(test_read_quantity_out_of_range_is_illegal_value),
        T(test_write_single_coil_echoes_and_rejects_bad_value),
        T(test_write_single_register),
        T(test_write_multiple_coils_checks_byte_count),
        T(test_write_multiple_registers_all_or_nothing),
        T(test_mask_write_register_applies_spec_formula),
        T(test_read_write_registers_writes_first),
        T(test_unknown_function_is_illegal_function),
        T(test_model_without_callback_is_illegal_function),
        T(test_model_exception_passes_through_and_is_counted),
        T(test_diagnostics_echo_and_counters),
        T(test_diagnostics_listen_only_until_restart),
        T(test_report_server_id_appends_run_indicator),
        T(test_read_file_record_two_subrequests),
        T(test_read_file_record_errors),
        T(test_write_file_record_echoes_and_is_atomic),
        T(test_device_id_basic_stream_and_individual),
        T(test_device_id_long_values_set_more_follows),
        T(test_broadcast_writes_but_never_answers),
        T(test_rtu_frames_counted_and_bad_crc_dropped),
        T(test_tcp_stream_of_two_requests_answers_both),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The master's side of the PDU: every request builder against the byte layouts of the
 * MODBUS Application Protocol spec's examples, the limits they refuse, and reply checks that
 * tell an answer to another request from the right one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keel/modbus.h"

static uint8_t pdu[KEEL_MODBUS_MAX_PDU];
static size_t n;

#define EXPECT(...)                                                                                \
    do {                                                                                           \
        const uint8_t want[] = {__VA_ARGS__};                                                      \
        assert_int_equal(n, sizeof want);                                                          \
        assert_memory_equal(pdu, want, sizeof want);                                               \
    } while (0)

static void test_req_builders_match_spec_examples(void **state)
{
    (void)state;
    assert_int_equal(keel_modbus_req_read(1, 19, 19, pdu, sizeof pdu, &n), KEEL_MODBUS_OK);
    EXPECT(0x01, 0x00, 0x13, 0x00, 0x13);
    assert_int_equal(keel_modbus_req_read(3, 107, 3, pdu, sizeof pdu, &n), KEEL_MODBUS_OK);
    EXPECT(0x03, 0x00, 0x6B, 0x00, 0x03);
    assert_int_equal(keel_modbus_req_write_coil(172, true, pdu, sizeof pdu, &n), KEEL_MODBUS_OK);
    EXPECT(0x05, 0x00, 0xAC, 0xFF, 0x00);
    assert_int_equal(keel_modbus_req_write_register(1, 3, pdu, sizeof pdu, &n), KEEL_MODBUS_OK);
    EXPECT(0x06, 0x00, 0x01, 0x00, 0x03);
    const uint8_t bits[2] = {0xCD, 0xFD}; /* coils 8, 9 = 1, 0; bits past the 10th are junk */
    assert_int_equal(keel_modbus_req_write_coils(19, 10, bits, pdu, sizeof pdu, &n),
                     KEEL_MODBUS_OK);
    EXPECT(0x0F, 0x00, 0x13, 0x00, 0x0A, 0x02, 0xCD, 0x01); /* the spec's frame: junk zeroed */
    const uint16_t regs[2] = {0x000A, 0x0102};
    assert_int_equal(keel_modbus_req_write_registers(1, 2, regs, pdu, sizeof pdu, &n),
                     KEEL_MODBUS_OK);
    EXPECT(0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0A, 0x01, 0x02);
    assert_int_equal(keel_modbus_req_mask_write(4, 0xF2, 0x25, pdu, sizeof pdu, &n),
                     KEEL_MODBUS_OK);
    EXPECT(0x16, 0x00, 0x04, 0x00, 0xF2, 0x00, 0x25);
    const uint16_t w[3] = {0x00FF, 0x00FF, 0x00FF};
    assert_int_equal(keel_modbus_req_read_write(3, 6, 14, 3, w, pdu, sizeof pdu, &n),
                     KEEL_MODBUS_OK);
    EXPECT(0x17, 0x00, 0x03, 0x00, 0x06, 0x00, 0x0E, 0x00, 0x03, 0x06, 0x00, 0xFF, 0x00, 0xFF, 0x00,
           0xFF);
    const uint16_t q[1] = {0xA537};
    assert_int_equal(keel_modbus_req_diagnostics(0, q, 1, pdu, sizeof pdu, &n), KEEL_MODBUS_OK);
    EXPECT(0x08, 0x00, 0x00, 0xA5, 0x37);
    assert_int_equal(keel_modbus_req_report_server_id(pdu, sizeof pdu, &n), KEEL_MODBUS_OK);
    EXPECT(0x11);
    keel_modbus_file_ref refs[2] = {{4, 1, 2, NULL}, {3, 9, 2, NULL}};
    assert_int_equal(keel_modbus_req_read_file(refs, 2, pdu, sizeof pdu, &n), KEEL_MODBUS_OK);
    EXPECT(0x14, 0x0E, 0x06, 0x00, 0x04, 0x00, 0x01, 0x00, 0x02, 0x06, 0x00, 0x03, 0x00, 0x09, 0x00,
           0x02);
    uint16_t data[3] = {0x06AF, 0x04BE, 0x100D};
    keel_modbus_file_ref wref = {4, 7, 3, data};
    assert_int_equal(keel_modbus_req_write_file(&wref, 1, pdu, sizeof pdu, &n), KEEL_MODBUS_OK);
    EXPECT(0x15, 0x0D, 0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x03, 0x06, 0xAF, 0x04, 0xBE, 0x10,
           0x0D);
    assert_int_equal(keel_modbus_req_device_id(1, 0, pdu, sizeof pdu, &n), KEEL_MODBUS_OK);
    EXPECT(0x2B, 0x0E, 0x01, 0x00);
}

static void test_req_builders_refuse_out_of_range(void **state)
{
    (void)state;
    uint16_t regs[130] = {0};
    uint8_t bits[250] = {0};
    assert_int_equal(keel_modbus_req_read(3, 0, 0, pdu, sizeof pdu, &n), KEEL_MODBUS_ERR_ARG);
    assert_int_equal(keel_modbus_req_read(3, 0, 126, pdu, sizeof pdu, &n), KEEL_MODBUS_ERR_ARG);
    assert_int_equal(keel_modbus_req_read(1, 0, 2001, pdu, sizeof pdu, &n), KEEL_MODBUS_ERR_ARG);
    assert_int_equal(keel_modbus_req_read(3, 65535, 2, pdu, sizeof pdu, &n), KEEL_MODBUS_ERR_ARG);
    assert_int_equal(keel_modbus_req_read(7, 0, 1, pdu, sizeof pdu, &n), KEEL_MODBUS_ERR_ARG);
    assert_int_equal(keel_modbus_req_write_coils(0, 1969, bits, pdu, sizeof pdu, &n),
                     KEEL_MODBUS_ERR_ARG);
    assert_int_equal(keel_modbus_req_write_registers(0, 124, regs, pdu, sizeof pdu, &n),
                     KEEL_MODBUS_ERR_ARG);
    assert_int_equal(keel_modbus_req_read_write(0, 1, 0, 122, regs, pdu, sizeof pdu, &n),
                     KEEL_MODBUS_ERR_ARG);
    keel_modbus_file_ref bad[] = {{0, 0, 1, regs}, {1, 10000, 1, regs}, {1, 9999, 2, regs}};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(keel_modbus_req_read_file(&bad[i], 1, pdu, sizeof pdu, &n),
                         KEEL_MODBUS_ERR_ARG);
    }
    keel_modbus_file_ref big = {1, 0, 125, regs}; /* a reply of 2 + 2 + 250 bytes > PDU */
    assert_int_equal(keel_modbus_req_read_file(&big, 1, pdu, sizeof pdu, &n),
                     KEEL_MODBUS_ERR_TOO_BIG);
    assert_int_equal(keel_modbus_req_device_id(5, 0, pdu, sizeof pdu, &n), KEEL_MODBUS_ERR_ARG);
    assert_int_equal(keel_modbus_req_write_registers(0, 100, regs, pdu, 100, &n),
                     KEEL_MODBUS_ERR_NO_SPACE);
}

static void test_rsp_check_tells_other_replies_apart(void **state)
{
    (void)state;
    const uint8_t rd[] = {3, 0, 10, 0, 2};
    const uint8_t good[] = {3, 4, 0, 1, 0, 2};
    uint8_t exc = 0xEE;
    assert_int_equal(keel_modbus_rsp_check(rd, 5, good, sizeof good, &exc), KEEL_MODBUS_OK);
    assert_int_equal(exc, 0);
    const uint8_t three[] = {3, 6, 0, 1, 0, 2, 0, 3};
    assert_int_equal(keel_modbus_rsp_check(rd, 5, three, sizeof three, NULL),
                     KEEL_MODBUS_ERR_MISMATCH);
    const uint8_t lying[] = {3, 4, 0, 1, 0};
    assert_int_equal(keel_modbus_rsp_check(rd, 5, lying, sizeof lying, NULL),
                     KEEL_MODBUS_ERR_FRAME);
    const uint8_t other_fc[] = {4, 4, 0, 1, 0, 2};
    assert_int_equal(keel_modbus_rsp_check(rd, 5, other_fc, sizeof other_fc, NULL),
                     KEEL_MODBUS_ERR_MISMATCH);
    const uint8_t ex[] = {0x83, 0x02};
    assert_int_equal(keel_modbus_rsp_check(rd, 5, ex, 2, &exc), KEEL_MODBUS_ERR_EXCEPTION);
    assert_int_equal(exc, 2);
    assert_int_equal(keel_modbus_rsp_exception(ex, 2), 2);
    const uint8_t wr[] = {6, 0, 1, 0, 3};
    const uint8_t echo_other[] = {6, 0, 2, 0, 3};
    assert_int_equal(keel_modbus_rsp_check(wr, 5, echo_other, 5, NULL), KEEL_MODBUS_ERR_MISMATCH);
    const uint8_t w16[] = {16, 0, 1, 0, 2, 4, 0, 10, 1, 2};
    const uint8_t w16_rsp[] = {16, 0, 1, 0, 3};
    assert_int_equal(keel_modbus_rsp_check(w16, sizeof w16, w16_rsp, 5, NULL),
                     KEEL_MODBUS_ERR_MISMATCH);
    const uint8_t diag[] = {8, 0, 11, 0, 0};
    const uint8_t diag_rsp[] = {8, 0, 12, 0, 9};
    assert_int_equal(keel_modbus_rsp_check(diag, 5, diag_rsp, 5, NULL), KEEL_MODBUS_ERR_MISMATCH);
    const uint8_t id[] = {43, 14, 1, 0};
    const uint8_t id_rsp[] = {43, 14, 2, 0x81, 0, 0, 1, 0, 1, 'K'};
    assert_int_equal(keel_modbus_rsp_check(id, 4, id_rsp, sizeof id_rsp, NULL),
                     KEEL_MODBUS_ERR_MISMATCH); /* answers read code 2, asked 1 */
    const uint8_t id_trunc[] = {43, 14, 1, 0x81, 0, 0, 1, 0, 5, 'K'};
    assert_int_equal(keel_modbus_rsp_check(id, 4, id_trunc, sizeof id_trunc, NULL),
                     KEEL_MODBUS_ERR_FRAME);
}

static void test_rsp_read_file_checks_each_sub_response(void **state)
{
    (void)state;
    uint16_t a[2], b[1];
    keel_modbus_file_ref refs[2] = {{4, 1, 2, a}, {3, 9, 1, b}};
    const uint8_t rsp[] = {0x14, 0x0A, 0x05, 0x06, 0x0D, 0xFE, 0x00, 0x20, 0x03, 0x06, 0x33, 0xCD};
    assert_int_equal(keel_modbus_rsp_read_file(rsp, sizeof rsp, refs, 2, NULL), KEEL_MODBUS_OK);
    assert_int_equal(a[0], 0x0DFE);
    assert_int_equal(b[0], 0x33CD);
    refs[1].count = 2; /* asked for 2, got 1 */
    assert_int_equal(keel_modbus_rsp_read_file(rsp, sizeof rsp, refs, 2, NULL),
                     KEEL_MODBUS_ERR_MISMATCH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_req_builders_match_spec_examples),
        cmocka_unit_test(test_req_builders_refuse_out_of_range),
        cmocka_unit_test(test_rsp_check_tells_other_replies_apart),
        cmocka_unit_test(test_rsp_read_file_checks_each_sub_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

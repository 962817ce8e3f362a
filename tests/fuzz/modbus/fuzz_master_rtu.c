/* The RTU master with a request open, fed arbitrary reply bytes in arbitrary chunks at
 * arbitrary times. Byte 0 picks the request, byte 1 whether to append a valid CRC to the
 * reply; later bytes are split into chunks by their own values. The master must end every
 * transaction with a verdict, and an OK verdict must carry a reply that passes the checks. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) {
        return 0;
    }
    keel_modbus_master m;
    keel_modbus_line line = {19200, 8, KEEL_MODBUS_PARITY_EVEN, 1};
    if (keel_modbus_master_init(&m, KEEL_MODBUS_RTU, &line) != KEEL_MODBUS_OK) {
        abort();
    }
    uint8_t pdu[KEEL_MODBUS_MAX_PDU], out[KEEL_MODBUS_MAX_RTU_ADU];
    size_t n = fuzz_request(data[0], pdu), out_len;
    if (keel_modbus_master_start(&m, 0, 1, pdu, n, out, sizeof out, &out_len) != KEEL_MODBUS_OK) {
        abort();
    }
    uint8_t rsp[600];
    size_t len = size - 2 > 590 ? 590 : size - 2;
    memcpy(rsp, data + 2, len);
    if (data[1] & 1) {
        uint16_t crc = keel_modbus_crc16(rsp, len);
        rsp[len++] = (uint8_t)crc;
        rsp[len++] = (uint8_t)(crc >> 8);
    }
    uint64_t t = 10000;
    keel_modbus_err e = KEEL_MODBUS_ERR_AGAIN;
    for (size_t at = 0; at < len;) {
        size_t chunk = 1 + rsp[at] % 7;
        if (chunk > len - at) {
            chunk = len - at;
        }
        e = keel_modbus_master_input(&m, t, rsp + at, chunk);
        t += (data[1] & 2) ? 3000 : 500; /* sometimes longer than t3.5 (1823 us) */
        at += chunk;
    }
    for (int i = 0; i < 3 && e == KEEL_MODBUS_ERR_AGAIN; i++) {
        uint64_t d = keel_modbus_master_deadline(&m);
        if (d == UINT64_MAX) {
            break;
        }
        e = keel_modbus_master_poll(&m, d);
    }
    if (e == KEEL_MODBUS_OK) {
        const uint8_t *req, *reply;
        size_t req_len, reply_len;
        keel_modbus_master_request(&m, &req, &req_len);
        keel_modbus_master_reply(&m, &reply, &reply_len);
        if (keel_modbus_rsp_check(req, req_len, reply, reply_len, NULL) != KEEL_MODBUS_OK) {
            abort();
        }
        keel_modbus_device_id id;
        uint16_t back[3];
        keel_modbus_file_ref ref = {1, 2, 3, back};
        if (keel_modbus_rsp_device_id(reply, reply_len, &id, NULL) == KEEL_MODBUS_OK &&
            id.count > 32) {
            abort();
        }
        if (keel_modbus_rsp_read_file(reply, reply_len, &ref, 1, NULL) == KEEL_MODBUS_OK &&
            reply[0] != KEEL_MODBUS_FC_READ_FILE_RECORD) {
            abort();
        }
    }
    return 0;
}

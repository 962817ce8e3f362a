/* The TCP master with a request open, fed an arbitrary stream in chunks. Byte 0 picks the
 * request; when byte 1 is odd, the transaction id and a correct MBAP header are written over
 * the start of the stream so the fuzzer reaches the reply checks. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) {
        return 0;
    }
    keel_modbus_master m;
    if (keel_modbus_master_init(&m, KEEL_MODBUS_TCP, NULL) != KEEL_MODBUS_OK) {
        abort();
    }
    uint8_t pdu[KEEL_MODBUS_MAX_PDU], out[KEEL_MODBUS_MAX_TCP_ADU];
    size_t n = fuzz_request(data[0], pdu), out_len;
    if (keel_modbus_master_start(&m, 0, 1, pdu, n, out, sizeof out, &out_len) != KEEL_MODBUS_OK) {
        abort();
    }
    uint8_t rsp[700];
    size_t len = size - 2 > 690 ? 690 : size - 2;
    memcpy(rsp, data + 2, len);
    if ((data[1] & 1) && len >= 8) {
        size_t body = len - 6 > 254 ? 254 : len - 6;
        rsp[0] = out[0];
        rsp[1] = out[1];
        rsp[2] = rsp[3] = 0;
        rsp[4] = (uint8_t)(body >> 8);
        rsp[5] = (uint8_t)body;
        rsp[6] = 1;
    }
    keel_modbus_err e = KEEL_MODBUS_ERR_AGAIN;
    for (size_t at = 0; at < len && e == KEEL_MODBUS_ERR_AGAIN;) {
        size_t chunk = 1 + rsp[at] % 13;
        if (chunk > len - at) {
            chunk = len - at;
        }
        e = keel_modbus_master_input(&m, 100 + at, rsp + at, chunk);
        at += chunk;
    }
    if (e == KEEL_MODBUS_OK) {
        const uint8_t *req, *reply;
        size_t req_len, reply_len;
        keel_modbus_master_request(&m, &req, &req_len);
        keel_modbus_master_reply(&m, &reply, &reply_len);
        if (keel_modbus_rsp_check(req, req_len, reply, reply_len, NULL) != KEEL_MODBUS_OK) {
            abort();
        }
    }
    if (e == KEEL_MODBUS_ERR_AGAIN &&
        keel_modbus_master_poll(&m, keel_modbus_master_deadline(&m)) != KEEL_MODBUS_ERR_TIMEOUT) {
        abort();
    }
    return 0;
}

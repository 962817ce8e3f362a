/* The TCP slave fed an arbitrary byte stream, as a connection delivers it: ADUs are taken off
 * the front until the stream is short or broken; each reply must be a well-formed MBAP frame
 * echoing the request's transaction id. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static keel_modbus_map map;
    keel_modbus_slave s;
    fuzz_map(&map);
    keel_modbus_slave_init(&s, 1, &keel_modbus_map_model, &map);
    size_t at = 0;
    while (at < size) {
        uint8_t out[KEEL_MODBUS_MAX_TCP_ADU];
        size_t out_len, used;
        keel_modbus_err e =
            keel_modbus_slave_tcp(&s, data + at, size - at, &used, out, sizeof out, &out_len);
        if (e != KEEL_MODBUS_OK) {
            if (used != 0) {
                abort();
            }
            break;
        }
        if (used < 8 || used > size - at) {
            abort();
        }
        if (out_len) {
            keel_modbus_mbap h;
            const uint8_t *pdu;
            size_t pdu_len, u2;
            if (keel_modbus_tcp_parse(out, out_len, &h, &pdu, &pdu_len, &u2) != KEEL_MODBUS_OK ||
                u2 != out_len || out[0] != data[at] || out[1] != data[at + 1]) {
                abort();
            }
        }
        at += used;
    }
    return 0;
}

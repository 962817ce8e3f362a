/* The RTU slave fed arbitrary frames. Byte 0 bit 0 asks for a valid CRC to be appended so the
 * fuzzer reaches the PDU handlers; every reply must be a well-formed RTU frame no longer than
 * the protocol allows, and the counters must account for every frame. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    static keel_modbus_map map;
    keel_modbus_slave s;
    fuzz_map(&map);
    keel_modbus_slave_init(&s, 1, &keel_modbus_map_model, &map);
    uint8_t adu[300];
    size_t len = size - 1 > 297 ? 297 : size - 1;
    memcpy(adu, data + 1, len);
    if ((data[0] & 1) && len >= 1) {
        uint16_t crc = keel_modbus_crc16(adu, len);
        adu[len++] = (uint8_t)crc;
        adu[len++] = (uint8_t)(crc >> 8);
    }
    uint8_t out[KEEL_MODBUS_MAX_RTU_ADU];
    size_t out_len;
    keel_modbus_err e = keel_modbus_slave_rtu(&s, adu, len, out, sizeof out, &out_len);
    if (out_len) {
        if (e != KEEL_MODBUS_OK || out_len > KEEL_MODBUS_MAX_RTU_ADU || out_len < 5 ||
            keel_modbus_crc16(out, out_len) != 0 || out[0] != adu[0]) {
            abort();
        }
    }
    bool diag = len > 1 && adu[1] == KEEL_MODBUS_FC_DIAGNOSTICS; /* may clear the counters */
    if (!diag && s.counters.bus_messages != 1) {
        abort();
    }
    if (e != KEEL_MODBUS_OK && s.counters.bus_comm_errors != 1) {
        abort();
    }
    return 0;
}

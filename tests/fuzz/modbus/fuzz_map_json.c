/* Register map files: arbitrary text must load or be refused with a message, never crash or
 * leak; a map that loads must serve reads inside its tables. */
#include <stdint.h>
#include <stdlib.h>

#include "keel/modbus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    keel_modbus_map map;
    uint8_t unit;
    char msg[256];
    keel_modbus_err e =
        keel_modbus_map_parse("fuzz.json", (const char *)data, size, &map, &unit, msg, sizeof msg);
    if (e != KEEL_MODBUS_OK) {
        if (msg[0] == 0) {
            abort(); /* a refusal always says why */
        }
        return 0;
    }
    if (map.holding_count) {
        keel_modbus_slave s;
        keel_modbus_slave_init(&s, unit, &keel_modbus_map_model, &map);
        uint8_t req[5] = {3, (uint8_t)(map.holding_base >> 8), (uint8_t)map.holding_base, 0, 1};
        uint8_t rsp[KEEL_MODBUS_MAX_PDU];
        size_t n;
        if (keel_modbus_slave_pdu(&s, unit ? unit : 1, req, 5, rsp, sizeof rsp, &n) !=
                KEEL_MODBUS_OK ||
            (unit != 0 && (n != 4 || rsp[0] != 3))) {
            abort();
        }
    }
    keel_modbus_map_free(&map);
    return 0;
}

/* Fuzzes the check keeld applies to every message an app sends: any bytes give a status and
 * a message it accepts has a length that matches and a known op. */
#include <stdint.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (keel_wire_check(data, size) == KEEL_APP_OK) {
        keel_wire_hdr h;
        memcpy(&h, data, sizeof h);
        if (h.len != size - sizeof h || h.op == 0 || h.op >= KEEL_WIRE_OP_COUNT) {
            __builtin_trap();
        }
    }
    return 0;
}

/* Fuzzes the RS485 bridge's decoders with what the other core could put in a frame: any bytes,
 * any length. A payload that decodes must re-encode to the same bytes (no field silently
 * altered), and the frame it points at must lie inside the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridge_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t again[BRIDGE_RESULT_MAX];
    bridge_xfer x;
    if (bridge_xfer_decode(data, size, &x) == BRIDGE_PROTO_OK) {
        if (x.frame != data + BRIDGE_XFER_HDR || x.frame_len + BRIDGE_XFER_HDR != size ||
            x.frame_len < BRIDGE_MIN_FRAME || x.frame_len > BRIDGE_MAX_FRAME) {
            abort();
        }
        size_t n = bridge_xfer_encode(&x, again, sizeof again);
        if (n != size || memcmp(again, data, size) != 0) {
            abort();
        }
    }
    bridge_result r;
    if (bridge_result_decode(data, size, &r) == BRIDGE_PROTO_OK) {
        if (r.status >= BRIDGE_STATUS_COUNT || r.frame_len + BRIDGE_RESULT_HDR != size) {
            abort();
        }
        size_t n = bridge_result_encode(&r, again, sizeof again);
        if (n != size || memcmp(again, data, size) != 0) {
            abort();
        }
    }
    return 0;
}

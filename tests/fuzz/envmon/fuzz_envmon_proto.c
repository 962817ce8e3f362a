/* Fuzzes the envmon intercore decoders with what the other core could put in a frame: any
 * bytes, any length. A payload that decodes must re-encode to the same bytes (no field is
 * silently altered), apart from the reserved bytes the encoder writes as zero. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envmon_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    envmon_env e;
    if (envmon_env_decode(data, size, &e) == ENVMON_PROTO_OK) {
        uint8_t again[ENVMON_ENV_BYTES];
        envmon_env_encode(&e, again);
        if (memcmp(again, data, 3) != 0 || memcmp(again + 4, data + 4, 24) != 0) {
            abort();
        }
    }
    uint8_t mode;
    (void)envmon_hvac_set_decode(data, size, &mode);
    envmon_hvac_ack a;
    if (envmon_hvac_ack_decode(data, size, &a) == ENVMON_PROTO_OK && a.hvac > 2) {
        abort();
    }
    return 0;
}

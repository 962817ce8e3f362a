/* Fuzzes keeld's manifest reader: any bytes give a manifest or an error message, never a
 * crash, and an accepted manifest keeps its invariants. */
#include <stdint.h>
#include <string.h>

#include "supervisor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sv_manifest m;
    char msg[256];
    if (sv_manifest_parse("fuzz", (const char *)data, size, &m, msg, sizeof msg) == SV_OK) {
        if (m.name[0] == '\0' || memchr(m.name, '/', strlen(m.name)) ||
            (!m.realtime && (m.exec[0] == '/' || strstr(m.exec, ".."))) || m.max_procs == 0 ||
            m.nargs > SV_MAX_ARGS || m.npartners > SV_MAX_PARTNERS) {
            __builtin_trap();
        }
    }
    return 0;
}

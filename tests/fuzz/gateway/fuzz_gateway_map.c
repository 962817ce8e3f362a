/* Fuzzes the gateway's poll map parser: any text. A map that parses must hold only what the
 * parser promises (units 1..247, FC 3/4, 1..64 points, NUL-terminated names). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gateway_map m;
    char msg[256];
    if (gateway_map_parse((const char *)data, size, &m, msg, sizeof msg) != GATEWAY_MAP_OK) {
        if (!memchr(msg, '\0', sizeof msg)) {
            abort();
        }
        return 0;
    }
    if (m.n_points < 1 || m.n_points > GATEWAY_MAX_POINTS) {
        abort();
    }
    for (size_t i = 0; i < m.n_points; i++) {
        const gateway_point *p = &m.points[i];
        if (p->unit < 1 || p->unit > 247 || (p->function != 3 && p->function != 4) ||
            !memchr(p->name, '\0', sizeof p->name) || p->scale == 0.0) {
            abort();
        }
    }
    return 0;
}

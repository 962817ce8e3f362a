/* Fuzzes the device config's "serial" and "gpio" sections (devices.c): any JSON gives a
 * config or a message, never a crash, and what is accepted keeps the invariants the code that
 * opens devices relies on (names without '/', absolute paths, settings in range). */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <string.h>

#include "supervisor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *root = cJSON_ParseWithLength((const char *)data, size);
    if (!root) {
        return 0;
    }
    static sv_config c;
    char msg[256];
    memset(&c, 0, sizeof c);
    if (sv_devices_config(&c, root, msg, sizeof msg)) {
        if (c.nserial > SV_MAX_SERIAL || c.ngpio > SV_MAX_GPIO) {
            __builtin_trap();
        }
        for (int i = 0; i < c.nserial; i++) {
            const sv_serial_port *p = &c.serial[i];
            if (p->name[0] == '\0' || strchr(p->name, '/') || p->path[0] != '/' ||
                p->data_bits < 5 || p->data_bits > 8 || p->stop_bits < 1 || p->stop_bits > 2 ||
                !strchr("NEO", p->parity)) {
                __builtin_trap();
            }
        }
        for (int i = 0; i < c.ngpio; i++) {
            const sv_gpio_line *g = &c.gpio[i];
            if (g->name[0] == '\0' || strchr(g->name, '/') || g->chip[0] != '/' || g->line > 65535) {
                __builtin_trap();
            }
        }
    } else if (msg[0] == '\0') {
        __builtin_trap(); /* a refusal always says why */
    }
    cJSON_Delete(root);
    return 0;
}

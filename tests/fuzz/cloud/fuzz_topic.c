/* Fuzzes the topic parser: any bytes, both schemes, device and operator side. A topic that
 * parses must have bounded, NUL-terminated strings; the builders must round-trip it. */
#include <stdint.h>
#include <string.h>

#include "keel/cloud.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static keel_cloud_topics hub, plain;
    static int ready;
    if (!ready) {
        if (keel_cloud_topics_init(&hub, KEEL_CLOUD_SCHEME_IOTHUB, "dev", NULL) ||
            keel_cloud_topics_init(&plain, KEEL_CLOUD_SCHEME_PLAIN, "dev", "keel")) {
            __builtin_trap();
        }
        ready = 1;
    }
    const keel_cloud_topics *ts[] = {&hub, &plain};
    for (int i = 0; i < 2; i++) {
        for (int op = 0; op < 2; op++) {
            keel_cloud_msg m;
            if (keel_cloud_parse_topic(ts[i], op, (const char *)data, size, &m) != KEEL_CLOUD_OK) {
                continue;
            }
            if (strlen(m.rid) >= sizeof m.rid || strlen(m.name) >= sizeof m.name ||
                strlen(m.device) >= sizeof m.device) {
                __builtin_trap();
            }
            if (m.kind == KEEL_CLOUD_MSG_METHOD && !op) {
                char buf[KEEL_CLOUD_MAX_TOPIC];
                /* What parsed as a method's rid must be usable for its answer. */
                if (keel_cloud_topic_method_response(ts[i], 200, m.rid, buf, sizeof buf) !=
                    KEEL_CLOUD_OK) {
                    __builtin_trap();
                }
            }
        }
    }
    return 0;
}

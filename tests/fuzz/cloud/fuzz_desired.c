/* Fuzzes desired-properties payloads: parse, then merge the result into a document, as the
 * link does with every patch from the broker. */
#include <cjson/cJSON.h>
#include <stdint.h>

#include "keel/cloud.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *doc;
    const cJSON *desired;
    int64_t version;
    if (keel_cloud_desired_parse((const char *)data, size, &doc, &desired, &version) !=
        KEEL_CLOUD_OK) {
        return 0;
    }
    if (version < -1) {
        __builtin_trap();
    }
    cJSON *base = cJSON_Parse("{\"a\":{\"b\":1},\"c\":[1,2]}");
    (void)keel_cloud_desired_merge(base, desired);
    char *s = cJSON_PrintUnformatted(base);
    cJSON_free(s);
    cJSON_Delete(base);
    cJSON_Delete(doc);
    return 0;
}

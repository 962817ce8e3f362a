/* Fuzzes JSON config parsing and the typed getters on whatever parses. */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *root;
    keel_config_error err;
    if (keel_config_parse("fuzz", (const char *)data, size, &root, &err) != KEEL_CONFIG_OK) {
        return 0;
    }
    const char *s;
    int64_t i;
    double d;
    bool b;
    (void)keel_config_get_string(root, "name", true, &s, &err);
    (void)keel_config_get_int(root, "baud", true, 0, 1000000, &i, &err);
    (void)keel_config_get_number(root, "gain", false, &d, &err);
    (void)keel_config_get_bool(root, "on", false, &b, &err);
    cJSON_Delete(root);
    return 0;
}

/* The capabilities an app_manifest.json may grant, one parser each. The table is the whole
 * list: a key not in it is refused by the parser, so a misspelt capability is an error rather
 * than a permission silently not granted. */
#include <string.h>

#include "manifest_private.h"

/* "intercore": ["<uuid>", ...] — the components this one may open a channel with. */
static keel_manifest_err parse_intercore(const char *file, const cJSON *value,
                                         keel_manifest_caps *caps, keel_manifest_error *err)
{
    if (!cJSON_IsArray(value)) {
        return keel_manifest_fail(err, KEEL_MANIFEST_ERR_TYPE,
                                  "%s: capabilities.intercore: must be an array of component IDs",
                                  file);
    }
    size_t i = 0;
    for (const cJSON *it = value->child; it; it = it->next, i++) {
        if (!cJSON_IsString(it)) {
            return keel_manifest_fail(err, KEEL_MANIFEST_ERR_TYPE,
                                      "%s: capabilities.intercore[%zu]: must be a string", file, i);
        }
        if (caps->n_partners == KEEL_MANIFEST_MAX_PARTNERS) {
            return keel_manifest_fail(err, KEEL_MANIFEST_ERR_LIMIT,
                                      "%s: capabilities.intercore: more than %d partners", file,
                                      KEEL_MANIFEST_MAX_PARTNERS);
        }
        keel_uuid id;
        if (!keel_manifest_uuid_parse(it->valuestring, &id)) {
            return keel_manifest_fail(err, KEEL_MANIFEST_ERR_VALUE,
                                      "%s: capabilities.intercore[%zu]: \"%.40s\" is not a UUID "
                                      "(8-4-4-4-12 hex digits)",
                                      file, i, it->valuestring);
        }
        for (size_t j = 0; j < caps->n_partners; j++) {
            if (keel_manifest_uuid_equal(&caps->partners[j], &id)) {
                return keel_manifest_fail(err, KEEL_MANIFEST_ERR_VALUE,
                                          "%s: capabilities.intercore[%zu]: listed twice", file, i);
            }
        }
        caps->partners[caps->n_partners++] = id;
    }
    return KEEL_MANIFEST_OK;
}

keel_manifest_err keel_manifest_string_list(const char *file, const char *where,
                                            const cJSON *value, char *table, size_t width,
                                            size_t max, size_t *count, keel_manifest_error *err)
{
    if (!cJSON_IsArray(value)) {
        return keel_manifest_fail(err, KEEL_MANIFEST_ERR_TYPE, "%s: %s: must be an array of strings",
                                  file, where);
    }
    size_t i = 0;
    *count = 0;
    for (const cJSON *it = value->child; it; it = it->next, i++) {
        if (!cJSON_IsString(it)) {
            return keel_manifest_fail(err, KEEL_MANIFEST_ERR_TYPE, "%s: %s[%zu]: must be a string",
                                      file, where, i);
        }
        if (*count == max) {
            return keel_manifest_fail(err, KEEL_MANIFEST_ERR_LIMIT, "%s: %s: more than %zu entries",
                                      file, where, max);
        }
        size_t n = strlen(it->valuestring);
        if (n == 0 || n >= width) {
            return keel_manifest_fail(err, KEEL_MANIFEST_ERR_VALUE,
                                      "%s: %s[%zu]: must be 1..%zu characters", file, where, i,
                                      width - 1);
        }
        memcpy(table + *count * width, it->valuestring, n + 1);
        (*count)++;
    }
    return KEEL_MANIFEST_OK;
}

/* "cloud": {"telemetry": true, ..., "http": ["host[:port]"]} — what the app may ask keeld's
 * cloud link for. Unknown features are errors like unknown capabilities. */
static keel_manifest_err parse_cloud(const char *file, const cJSON *value, keel_manifest_caps *caps,
                                     keel_manifest_error *err)
{
    if (!cJSON_IsObject(value)) {
        return keel_manifest_fail(err, KEEL_MANIFEST_ERR_TYPE,
                                  "%s: capabilities.cloud: must be an object", file);
    }
    static const char *const flags[] = {"telemetry", "properties", "methods", "log", "mqtt"};
    bool *dst[] = {&caps->cloud_telemetry, &caps->cloud_properties, &caps->cloud_methods,
                   &caps->cloud_log, &caps->cloud_mqtt};
    for (const cJSON *it = value->child; it; it = it->next) {
        if (strcmp(it->string, "http") == 0) {
            keel_manifest_err rc = keel_manifest_string_list(
                file, "capabilities.cloud.http", it, &caps->http[0][0], KEEL_MANIFEST_HOST_MAX,
                KEEL_MANIFEST_MAX_HOSTS, &caps->n_http, err);
            if (rc)
                return rc;
            continue;
        }
        size_t k = 0;
        while (k < sizeof flags / sizeof flags[0] && strcmp(flags[k], it->string) != 0) {
            k++;
        }
        if (k == sizeof flags / sizeof flags[0]) {
            return keel_manifest_fail(err, KEEL_MANIFEST_ERR_UNKNOWN,
                                      "%s: capabilities.cloud: unknown feature \"%.40s\"", file,
                                      it->string);
        }
        if (!cJSON_IsBool(it)) {
            return keel_manifest_fail(err, KEEL_MANIFEST_ERR_TYPE,
                                      "%s: capabilities.cloud.%s: must be true or false", file,
                                      flags[k]);
        }
        *dst[k] = cJSON_IsTrue(it);
    }
    return KEEL_MANIFEST_OK;
}

/* Device names: the keys of the device config's "serial" / "gpio" sections, which map them to
 * paths. A name is a handle, never a path: the app cannot point keeld at a file. */
static keel_manifest_err device_names(const char *file, const char *where, const cJSON *value,
                                      char *table, size_t max, size_t *count,
                                      keel_manifest_error *err)
{
    keel_manifest_err rc = keel_manifest_string_list(file, where, value, table,
                                                     KEEL_MANIFEST_SERIAL_MAX, max, count, err);
    for (size_t i = 0; rc == KEEL_MANIFEST_OK && i < *count; i++) {
        const char *n = table + i * KEEL_MANIFEST_SERIAL_MAX;
        for (const char *c = n; *c && rc == KEEL_MANIFEST_OK; c++) {
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.') ||
                strcmp(n, ".") == 0 || strcmp(n, "..") == 0) {
                rc = keel_manifest_fail(err, KEEL_MANIFEST_ERR_VALUE,
                                        "%s: %s[%zu]: a device name from the device config "
                                        "([A-Za-z0-9._-]), not a path",
                                        file, where, i);
            }
        }
    }
    return rc;
}

/* "serial": ["rs485", ...] */
static keel_manifest_err parse_serial(const char *file, const cJSON *value,
                                      keel_manifest_caps *caps, keel_manifest_error *err)
{
    return device_names(file, "capabilities.serial", value, &caps->serial[0][0],
                        KEEL_MANIFEST_MAX_SERIAL, &caps->n_serial, err);
}

/* "gpio": ["relay", ...] */
static keel_manifest_err parse_gpio(const char *file, const cJSON *value, keel_manifest_caps *caps,
                                    keel_manifest_error *err)
{
    return device_names(file, "capabilities.gpio", value, &caps->gpio[0][0],
                        KEEL_MANIFEST_MAX_GPIO, &caps->n_gpio, err);
}

/* "limits": {"memory_mb": 4..65536, "cpu_percent": 1..100, "processes": 1..4096,
 * "files": 8..65536}. */
static keel_manifest_err parse_limits(const char *file, const cJSON *value,
                                      keel_manifest_caps *caps, keel_manifest_error *err)
{
    if (!cJSON_IsObject(value)) {
        return keel_manifest_fail(err, KEEL_MANIFEST_ERR_TYPE,
                                  "%s: capabilities.limits: must be an object", file);
    }
    static const struct {
        const char *key;
        double min, max;
    } rows[] = {{"memory_mb", 4, 65536}, {"cpu_percent", 1, 100}, {"processes", 1, 4096},
                {"files", 8, 65536}};
    uint32_t *dst[] = {&caps->memory_mb, &caps->cpu_percent, &caps->processes, &caps->files};
    for (const cJSON *it = value->child; it; it = it->next) {
        size_t k = 0;
        while (k < sizeof rows / sizeof rows[0] && strcmp(rows[k].key, it->string) != 0) {
            k++;
        }
        if (k == sizeof rows / sizeof rows[0]) {
            return keel_manifest_fail(err, KEEL_MANIFEST_ERR_UNKNOWN,
                                      "%s: capabilities.limits: unknown limit \"%.40s\"", file,
                                      it->string);
        }
        if (!cJSON_IsNumber(it) || it->valuedouble < rows[k].min ||
            it->valuedouble > rows[k].max ||
            it->valuedouble != (double)(uint32_t)it->valuedouble) {
            return keel_manifest_fail(err, KEEL_MANIFEST_ERR_VALUE,
                                      "%s: capabilities.limits.%s: must be an integer %g..%g",
                                      file, rows[k].key, rows[k].min, rows[k].max);
        }
        *dst[k] = (uint32_t)it->valuedouble;
    }
    return KEEL_MANIFEST_OK;
}

const keel_manifest_cap keel_manifest_caps_table[] = {
    {"intercore", parse_intercore},
    {"cloud", parse_cloud},
    {"serial", parse_serial},
    {"gpio", parse_gpio},
    {"limits", parse_limits},
};
const size_t keel_manifest_caps_count =
    sizeof keel_manifest_caps_table / sizeof keel_manifest_caps_table[0];

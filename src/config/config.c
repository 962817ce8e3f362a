/* JSON configuration loading with errors a person can act on (file:line:col). cJSON does the
 * parsing; this file adds bounded reading, positions and typed, named lookups. */
#include "keel/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *keel_config_err_name(keel_config_err e)
{
    static const char *const names[KEEL_CONFIG_ERR_COUNT] = {
        [KEEL_CONFIG_OK] = "KEEL_CONFIG_OK",
        [KEEL_CONFIG_ERR_IO] = "KEEL_CONFIG_ERR_IO",
        [KEEL_CONFIG_ERR_TOO_BIG] = "KEEL_CONFIG_ERR_TOO_BIG",
        [KEEL_CONFIG_ERR_SYNTAX] = "KEEL_CONFIG_ERR_SYNTAX",
        [KEEL_CONFIG_ERR_MISSING] = "KEEL_CONFIG_ERR_MISSING",
        [KEEL_CONFIG_ERR_TYPE] = "KEEL_CONFIG_ERR_TYPE",
        [KEEL_CONFIG_ERR_RANGE] = "KEEL_CONFIG_ERR_RANGE",
    };
    return (unsigned)e < KEEL_CONFIG_ERR_COUNT ? names[e] : "KEEL_CONFIG_ERR_UNKNOWN";
}

__attribute__((format(printf, 3, 4))) static keel_config_err fail(keel_config_error *err,
                                                                 keel_config_err code,
                                                                 const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

keel_config_err keel_config_parse(const char *name, const char *text, size_t len,
                                  cJSON **out, keel_config_error *err)
{
    *out = NULL;
    if (len > KEEL_CONFIG_MAX_BYTES) {
        return fail(err, KEEL_CONFIG_ERR_TOO_BIG, "%s: larger than %u bytes", name,
                    KEEL_CONFIG_MAX_BYTES);
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        /* cJSON points at where it gave up; turn that into line:column. */
        size_t off = (end && end >= text && end <= text + len) ? (size_t)(end - text) : 0;
        unsigned line = 1, col = 1;
        for (size_t i = 0; i < off; i++) {
            if (text[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        return fail(err, KEEL_CONFIG_ERR_SYNTAX, "%s:%u:%u: not valid JSON", name, line, col);
    }
    *out = root;
    return KEEL_CONFIG_OK;
}

keel_config_err keel_config_load(const char *path, cJSON **out, keel_config_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        return fail(err, KEEL_CONFIG_ERR_IO, "%s: %s", path, strerror(errno));
    }
    char *buf = malloc(KEEL_CONFIG_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        return fail(err, KEEL_CONFIG_ERR_IO, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, KEEL_CONFIG_MAX_BYTES + 1, f);
    bool bad = ferror(f);
    fclose(f);
    keel_config_err rc;
    if (bad) {
        rc = fail(err, KEEL_CONFIG_ERR_IO, "%s: read error", path);
    } else {
        rc = keel_config_parse(path, buf, n, out, err);
    }
    free(buf);
    return rc;
}

static keel_config_err lookup(const cJSON *obj, const char *key, bool required,
                              const cJSON **item, keel_config_error *err)
{
    *item = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!*item && required) {
        return fail(err, KEEL_CONFIG_ERR_MISSING, "missing required key \"%s\"", key);
    }
    return KEEL_CONFIG_OK;
}

keel_config_err keel_config_get_string(const cJSON *obj, const char *key, bool required,
                                       const char **out, keel_config_error *err)
{
    const cJSON *it;
    keel_config_err rc = lookup(obj, key, required, &it, err);
    if (rc != KEEL_CONFIG_OK || !it) {
        return rc;
    }
    if (!cJSON_IsString(it)) {
        return fail(err, KEEL_CONFIG_ERR_TYPE, "\"%s\" must be a string", key);
    }
    *out = it->valuestring;
    return KEEL_CONFIG_OK;
}

keel_config_err keel_config_get_number(const cJSON *obj, const char *key, bool required,
                                       double *out, keel_config_error *err)
{
    const cJSON *it;
    keel_config_err rc = lookup(obj, key, required, &it, err);
    if (rc != KEEL_CONFIG_OK || !it) {
        return rc;
    }
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble)) {
        return fail(err, KEEL_CONFIG_ERR_TYPE, "\"%s\" must be a number", key);
    }
    *out = it->valuedouble;
    return KEEL_CONFIG_OK;
}

keel_config_err keel_config_get_int(const cJSON *obj, const char *key, bool required,
                                    int64_t min, int64_t max, int64_t *out,
                                    keel_config_error *err)
{
    const cJSON *it;
    keel_config_err rc = lookup(obj, key, required, &it, err);
    if (rc != KEEL_CONFIG_OK || !it) {
        return rc;
    }
    double v = it->valuedouble;
    if (!cJSON_IsNumber(it) || !isfinite(v) || v != floor(v)) {
        return fail(err, KEEL_CONFIG_ERR_TYPE, "\"%s\" must be an integer", key);
    }
    if (v < (double)min || v > (double)max) {
        return fail(err, KEEL_CONFIG_ERR_RANGE, "\"%s\" must be in %lld..%lld", key,
                    (long long)min, (long long)max);
    }
    *out = (int64_t)v;
    return KEEL_CONFIG_OK;
}

keel_config_err keel_config_get_bool(const cJSON *obj, const char *key, bool required,
                                     bool *out, keel_config_error *err)
{
    const cJSON *it;
    keel_config_err rc = lookup(obj, key, required, &it, err);
    if (rc != KEEL_CONFIG_OK || !it) {
        return rc;
    }
    if (!cJSON_IsBool(it)) {
        return fail(err, KEEL_CONFIG_ERR_TYPE, "\"%s\" must be true or false", key);
    }
    *out = cJSON_IsTrue(it);
    return KEEL_CONFIG_OK;
}

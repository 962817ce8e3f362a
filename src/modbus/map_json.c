/* Register maps from JSON files, so a user configures a slave (simulated or real) without
 * writing C. The format is in docs/modbus.md; errors name the file, the key and the problem.
 *
 *   {"unit": 1,
 *    "holding_registers": {"base": 0, "count": 10, "values": [215, 480]},
 *    "input_registers": {...}, "coils": {...}, "discrete_inputs": {...},
 *    "files": [{"number": 1, "records": 1000}],
 *    "identification": {"vendor": "Keel", "product_code": "KS-1", "revision": "1.0"}}
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/config.h"
#include "keel/modbus.h"

static const char *const ident_keys[8] = {
    "vendor",       "product_code", "revision",         "vendor_url",
    "product_name", "model_name",   "application_name", NULL};

/* One table: base, count, optional initial values. *out_regs or *out_bits gets the array. */
static keel_modbus_err load_table(const char *path, const cJSON *root, const char *key, bool bits,
                                  uint16_t *base, uint16_t *count, void **array, char *msg,
                                  size_t cap)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!t) {
        return KEEL_MODBUS_OK;
    }
    if (!cJSON_IsObject(t)) {
        snprintf(msg, cap, "%s: \"%s\" must be an object {base, count, values}", path, key);
        return KEEL_MODBUS_ERR_FRAME;
    }
    keel_config_error err;
    int64_t b = 0, n = 0;
    if (keel_config_get_int(t, "base", false, 0, 65535, &b, &err) != KEEL_CONFIG_OK ||
        keel_config_get_int(t, "count", true, 1, 65536 - b, &n, &err) != KEEL_CONFIG_OK) {
        snprintf(msg, cap, "%s: %s: %s", path, key, err.msg);
        return KEEL_MODBUS_ERR_FRAME;
    }
    size_t size = bits ? 1 : 2;
    void *a = calloc((size_t)n, size);
    if (!a) {
        return KEEL_MODBUS_ERR_NO_SPACE;
    }
    const cJSON *vals = cJSON_GetObjectItemCaseSensitive(t, "values");
    if (vals) {
        if (!cJSON_IsArray(vals) || cJSON_GetArraySize(vals) > n) {
            snprintf(msg, cap, "%s: %s.values must be an array of at most %lld numbers", path, key,
                     (long long)n);
            free(a);
            return KEEL_MODBUS_ERR_FRAME;
        }
        int i = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, vals)
        {
            double max = bits ? 1 : 65535;
            if (!cJSON_IsNumber(v) && !cJSON_IsBool(v)) {
                snprintf(msg, cap, "%s: %s.values[%d] is not a number", path, key, i);
                free(a);
                return KEEL_MODBUS_ERR_FRAME;
            }
            double d = cJSON_IsBool(v) ? (cJSON_IsTrue(v) ? 1 : 0) : v->valuedouble;
            if (d < -32768 || d > max || (bits && d < 0) || d != (double)(long)d) {
                snprintf(msg, cap, "%s: %s.values[%d] = %g is out of range (%s)", path, key, i, d,
                         bits ? "0 or 1" : "-32768..65535");
                free(a);
                return KEEL_MODBUS_ERR_FRAME;
            }
            if (bits) {
                ((uint8_t *)a)[i] = (uint8_t)d;
            } else {
                ((uint16_t *)a)[i] = (uint16_t)(int32_t)d; /* negatives as two's complement */
            }
            i++;
        }
    }
    *base = (uint16_t)b;
    *count = (uint16_t)(n > 65535 ? 65535 : n);
    *array = a;
    return KEEL_MODBUS_OK;
}

void keel_modbus_map_free(keel_modbus_map *map)
{
    if (!map) {
        return;
    }
    free(map->coils);
    free(map->discrete);
    free(map->holding);
    free(map->input);
    for (size_t i = 0; i < map->file_count; i++) {
        free(map->files[i].data);
    }
    free(map->files);
    for (size_t i = 0; i < 8; i++) {
        free((char *)map->ident[i]);
    }
    memset(map, 0, sizeof *map);
}

static keel_modbus_err load(const char *path, const cJSON *root, keel_modbus_map *map,
                            uint8_t *unit, char *msg, size_t cap)
{
    keel_config_error err;
    int64_t u = 1;
    if (keel_config_get_int(root, "unit", false, 0, 247, &u, &err) != KEEL_CONFIG_OK) {
        snprintf(msg, cap, "%s: %s", path, err.msg);
        return KEEL_MODBUS_ERR_FRAME;
    }
    *unit = (uint8_t)u;
    keel_modbus_err e;
    void *a;
#define TABLE(key, bits, base, count, field)                                                       \
    a = NULL;                                                                                      \
    e = load_table(path, root, key, bits, &map->base, &map->count, &a, msg, cap);                  \
    map->field = a;                                                                                \
    if (e != KEEL_MODBUS_OK) {                                                                     \
        return e;                                                                                  \
    }
    TABLE("coils", true, coil_base, coil_count, coils)
    TABLE("discrete_inputs", true, discrete_base, discrete_count, discrete)
    TABLE("holding_registers", false, holding_base, holding_count, holding)
    TABLE("input_registers", false, input_base, input_count, input)
#undef TABLE
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(root, "files");
    if (files) {
        if (!cJSON_IsArray(files)) {
            snprintf(msg, cap, "%s: \"files\" must be an array", path);
            return KEEL_MODBUS_ERR_FRAME;
        }
        size_t n = (size_t)cJSON_GetArraySize(files);
        map->files = calloc(n ? n : 1, sizeof *map->files);
        if (!map->files) {
            return KEEL_MODBUS_ERR_NO_SPACE;
        }
        const cJSON *f;
        cJSON_ArrayForEach(f, files)
        {
            int64_t num, rec;
            if (keel_config_get_int(f, "number", true, 1, 65535, &num, &err) != KEEL_CONFIG_OK ||
                keel_config_get_int(f, "records", true, 1, 10000, &rec, &err) != KEEL_CONFIG_OK) {
                snprintf(msg, cap, "%s: files[%zu]: %s", path, map->file_count, err.msg);
                return KEEL_MODBUS_ERR_FRAME;
            }
            keel_modbus_file *mf = &map->files[map->file_count++];
            mf->number = (uint16_t)num;
            mf->records = (uint16_t)rec;
            mf->data = calloc((size_t)rec, sizeof *mf->data);
            if (!mf->data) {
                return KEEL_MODBUS_ERR_NO_SPACE;
            }
        }
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "identification");
    if (id) {
        for (size_t i = 0; ident_keys[i]; i++) {
            const char *v = NULL;
            if (keel_config_get_string(id, ident_keys[i], false, &v, &err) != KEEL_CONFIG_OK) {
                snprintf(msg, cap, "%s: identification: %s", path, err.msg);
                return KEEL_MODBUS_ERR_FRAME;
            }
            if (v) {
                map->ident[i] = strdup(v);
            }
        }
    }
    return KEEL_MODBUS_OK;
}

static keel_modbus_err from_tree(const char *name, keel_config_err ce, cJSON *root,
                                 const keel_config_error *err, keel_modbus_map *map, uint8_t *unit,
                                 char *msg, size_t cap)
{
    if (ce != KEEL_CONFIG_OK) {
        snprintf(msg, cap, "%s", err->msg);
        return ce == KEEL_CONFIG_ERR_IO ? KEEL_MODBUS_ERR_IO : KEEL_MODBUS_ERR_FRAME;
    }
    keel_modbus_err e = KEEL_MODBUS_ERR_FRAME;
    if (!cJSON_IsObject(root)) {
        snprintf(msg, cap, "%s: the map must be a JSON object", name);
    } else {
        e = load(name, root, map, unit, msg, cap);
    }
    cJSON_Delete(root);
    if (e != KEEL_MODBUS_OK) {
        keel_modbus_map_free(map);
    }
    return e;
}

keel_modbus_err keel_modbus_map_load(const char *path, keel_modbus_map *map, uint8_t *unit,
                                     char *msg, size_t msg_cap)
{
    if (!path || !map || !unit || !msg || msg_cap == 0) {
        return KEEL_MODBUS_ERR_ARG;
    }
    msg[0] = 0;
    memset(map, 0, sizeof *map);
    cJSON *root = NULL;
    keel_config_error err;
    keel_config_err ce = keel_config_load(path, &root, &err);
    return from_tree(path, ce, root, &err, map, unit, msg, msg_cap);
}

keel_modbus_err keel_modbus_map_parse(const char *name, const char *text, size_t len,
                                      keel_modbus_map *map, uint8_t *unit, char *msg,
                                      size_t msg_cap)
{
    if (!name || !text || !map || !unit || !msg || msg_cap == 0) {
        return KEEL_MODBUS_ERR_ARG;
    }
    msg[0] = 0;
    memset(map, 0, sizeof *map);
    cJSON *root = NULL;
    keel_config_error err;
    keel_config_err ce = keel_config_parse(name, text, len, &root, &err);
    return from_tree(name, ce, root, &err, map, unit, msg, msg_cap);
}

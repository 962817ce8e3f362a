/* Payloads of the twin: desired documents and patches in, Plug and Play acknowledgements out.
 * No I/O. cJSON parses; every input is bounded by KEEL_CLOUD_MAX_MESSAGE before it is parsed,
 * and nesting is bounded by cJSON's own limit (CJSON_NESTING_LIMIT), so hostile input costs
 * at most one bounded parse.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "keel/cloud.h"

/* "$version" as an integer >= 0; anything else (a string, a fraction) is malformed. */
static bool read_version(const cJSON *obj, int64_t *version)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "$version");
    if (!v) {
        *version = -1;
        return true;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740991.0 ||
        floor(v->valuedouble) != v->valuedouble) {
        return false;
    }
    *version = (int64_t)v->valuedouble;
    return true;
}

keel_cloud_err keel_cloud_desired_parse(const char *json, size_t len, cJSON **doc,
                                        const cJSON **desired, int64_t *version)
{
    if (!json || !doc || !desired || !version) {
        return KEEL_CLOUD_ERR_ARG;
    }
    *doc = NULL;
    *desired = NULL;
    if (len > KEEL_CLOUD_MAX_MESSAGE) {
        return KEEL_CLOUD_ERR_TOO_BIG;
    }
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, NULL, false);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return KEEL_CLOUD_ERR_MALFORMED;
    }
    /* A twin GET answer wraps the desired document; a patch is the document itself. */
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "desired");
    if (d && cJSON_GetObjectItemCaseSensitive(root, "reported")) {
        if (!cJSON_IsObject(d)) {
            cJSON_Delete(root);
            return KEEL_CLOUD_ERR_MALFORMED;
        }
    } else {
        d = root;
    }
    if (!read_version(d, version)) {
        cJSON_Delete(root);
        return KEEL_CLOUD_ERR_MALFORMED;
    }
    *doc = root;
    *desired = d;
    return KEEL_CLOUD_OK;
}

keel_cloud_err keel_cloud_desired_merge(cJSON *base, const cJSON *patch)
{
    if (!cJSON_IsObject(base) || !cJSON_IsObject(patch)) {
        return KEEL_CLOUD_ERR_ARG;
    }
    for (const cJSON *m = patch->child; m; m = m->next) {
        if (!m->string) {
            return KEEL_CLOUD_ERR_MALFORMED;
        }
        if (cJSON_IsNull(m)) {
            cJSON_DeleteItemFromObjectCaseSensitive(base, m->string);
            continue;
        }
        cJSON *cur = cJSON_GetObjectItemCaseSensitive(base, m->string);
        if (cJSON_IsObject(m) && cJSON_IsObject(cur)) {
            keel_cloud_err e = keel_cloud_desired_merge(cur, m);
            if (e != KEEL_CLOUD_OK) {
                return e;
            }
            continue;
        }
        cJSON *copy = cJSON_Duplicate(m, true);
        if (!copy) {
            return KEEL_CLOUD_ERR_SPACE;
        }
        if (cur) {
            cJSON_ReplaceItemInObjectCaseSensitive(base, m->string, copy);
        } else {
            cJSON_AddItemToObject(base, m->string, copy);
        }
    }
    return KEEL_CLOUD_OK;
}

keel_cloud_err keel_cloud_pnp_ack(const char *name, const char *value_json, int ac, int64_t av,
                                  const char *ad, char *buf, size_t cap)
{
    if (!name || !name[0] || !value_json || !buf || cap == 0) {
        return KEEL_CLOUD_ERR_ARG;
    }
    buf[0] = '\0';
    cJSON *value = cJSON_Parse(value_json);
    if (!value) {
        return KEEL_CLOUD_ERR_MALFORMED;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON *prop = cJSON_CreateObject();
    keel_cloud_err e = KEEL_CLOUD_ERR_SPACE;
    if (root && prop) {
        cJSON_AddItemToObject(prop, "value", value);
        value = NULL;
        cJSON_AddNumberToObject(prop, "ac", ac);
        cJSON_AddNumberToObject(prop, "av", (double)av);
        if (ad) {
            cJSON_AddStringToObject(prop, "ad", ad);
        }
        cJSON_AddItemToObject(root, name, prop);
        prop = NULL;
        e = cJSON_PrintPreallocated(root, buf, (int)(cap > INT32_MAX ? INT32_MAX : cap), false)
                ? KEEL_CLOUD_OK
                : KEEL_CLOUD_ERR_SPACE;
        if (e != KEEL_CLOUD_OK) {
            buf[0] = '\0';
        }
    }
    cJSON_Delete(value);
    cJSON_Delete(prop);
    cJSON_Delete(root);
    return e;
}

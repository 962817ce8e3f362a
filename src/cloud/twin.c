/* The twin on the device side: desired properties cached in the outbox database, so an app
 * gets its settings at boot without the network, and versions respected (an older document or
 * patch never overwrites a newer one; a missed IoT Hub patch triggers a full twin GET instead
 * of a lossy merge). Called from the link's message callback; no I/O of its own beyond the
 * cache and the GET request.
 */
#include <cjson/cJSON.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "link.h"

void cloud_twin_request(keel_cloud *c)
{
    char topic[KEEL_CLOUD_MAX_TOPIC];
    c->twin_rid = ++c->next_rid;
    if (!c->mosq ||
        keel_cloud_topic_twin_get(&c->topics, c->twin_rid, topic, sizeof topic) != KEEL_CLOUD_OK ||
        mosquitto_publish(c->mosq, NULL, topic, 0, NULL, 0, false) != MOSQ_ERR_SUCCESS) {
        cloud_log(c, "twin GET not sent");
    }
}

/* Stores a new desired document if its version is newer than the cached one, then tells the
 * app. `doc` is the full document (for a patch, already merged by the caller). */
static void twin_store(keel_cloud *c, cJSON *doc, int64_t version)
{
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "$version");
    cJSON_AddNumberToObject(doc, "$version", (double)version);
    char *text = cJSON_PrintUnformatted(doc);
    if (!text) {
        cloud_log(c, "desired v%lld: out of memory", (long long)version);
        return;
    }
    keel_cloud_err e = outbox_twin_put(c->ob, text, version);
    if (e != KEEL_CLOUD_OK) {
        /* Not cached means not applied: the broker or hub will offer it again. */
        cloud_log(c, "desired v%lld not cached: %s (%s)", (long long)version,
                  keel_cloud_err_name(e), outbox_errmsg(c->ob));
    } else if (c->cb.on_desired) {
        c->cb.on_desired(c->user, text, version);
    }
    free(text);
}

static int64_t cached_version(keel_cloud *c, cJSON **doc)
{
    char *json = NULL;
    int64_t v = -1;
    if (outbox_twin_get(c->ob, &json, &v) != KEEL_CLOUD_OK) {
        if (doc) {
            *doc = cJSON_CreateObject();
        }
        return -1;
    }
    if (doc) {
        *doc = cJSON_Parse(json);
        if (!*doc) {
            *doc = cJSON_CreateObject();
        }
    }
    free(json);
    return v;
}

void cloud_twin_message(keel_cloud *c, const keel_cloud_msg *m, const char *payload, size_t len,
                        bool full)
{
    cJSON *doc;
    const cJSON *desired;
    int64_t version;
    keel_cloud_err e = keel_cloud_desired_parse(payload, len, &doc, &desired, &version);
    if (e != KEEL_CLOUD_OK) {
        cloud_log(c, "desired properties rejected: %s", keel_cloud_err_name(e));
        return;
    }
    if (version < 0) {
        version = m->version;
    }
    if (version < 0) {
        cloud_log(c, "desired properties rejected: no $version");
        cJSON_Delete(doc);
        return;
    }
    cJSON *base = NULL;
    int64_t have = cached_version(c, full ? NULL : &base);
    if (version <= have) {
        /* Retained documents come again at every subscribe; only older ones are news. */
        if (version < have) {
            cloud_log(c, "desired v%lld ignored: v%lld is cached", (long long)version,
                      (long long)have);
        }
        cJSON_Delete(base);
        cJSON_Delete(doc);
        return;
    }
    if (full) {
        cJSON *copy = cJSON_Duplicate(desired, true);
        if (copy) {
            twin_store(c, copy, version);
        }
        cJSON_Delete(copy);
    } else if (have >= 0 && version > have + 1) {
        /* A patch was missed (v{have+1}..v{version-1}): merging this one would lose it, so
         * ask for the whole twin instead. */
        cloud_log(c, "desired patch v%lld after v%lld: a patch was missed; asking for the twin",
                  (long long)version, (long long)have);
        cloud_twin_request(c);
    } else if (base) {
        if (keel_cloud_desired_merge(base, desired) == KEEL_CLOUD_OK) {
            twin_store(c, base, version);
        } else {
            cloud_log(c, "desired patch v%lld could not be merged", (long long)version);
        }
    }
    cJSON_Delete(base);
    cJSON_Delete(doc);
}

keel_cloud_err keel_cloud_desired(keel_cloud *c, char *json, size_t cap, int64_t *version)
{
    if (!c || !json || cap == 0) {
        return KEEL_CLOUD_ERR_ARG;
    }
    char *text = NULL;
    int64_t v;
    keel_cloud_err e = outbox_twin_get(c->ob, &text, &v);
    if (e != KEEL_CLOUD_OK) {
        return e;
    }
    size_t n = strlen(text);
    if (n >= cap) {
        free(text);
        return KEEL_CLOUD_ERR_SPACE;
    }
    memcpy(json, text, n + 1);
    free(text);
    if (version) {
        *version = v;
    }
    return KEEL_CLOUD_OK;
}

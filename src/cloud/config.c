/* The "cloud" section of the device config, read into a keel_cloud_config.
 *
 *   {"scheme": "plain"|"iothub", "host": "...", "port": 8883, "device_id": "...",
 *    "prefix": "keel", "ca": "ca.pem", "cert": "dev.pem", "key": "dev.key",
 *    "outbox": "/var/lib/keel/outbox.db", "outbox_max_bytes": 67108864,
 *    "mqtt_version": 4, "keepalive_s": 60, "backoff_min_ms": 500, "backoff_max_ms": 60000,
 *    "max_inflight": 64}
 *
 * Documented in docs/config.md; keys are checked with keel_config's getters so a message
 * names the key that is wrong.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "keel/cloud.h"
#include "keel/config.h"

keel_cloud_err keel_cloud_config_from_json(const cJSON *obj, keel_cloud_config *cfg, char *errbuf,
                                           size_t errcap)
{
    if (!cfg || !errbuf || errcap == 0) {
        return KEEL_CLOUD_ERR_ARG;
    }
    memset(cfg, 0, sizeof *cfg);
    errbuf[0] = '\0';
    if (!cJSON_IsObject(obj)) {
        snprintf(errbuf, errcap, "cloud: the section must be an object");
        return KEEL_CLOUD_ERR_ARG;
    }
    keel_config_error err = {{0}};
    const char *scheme = "plain";
    int64_t port = 8883, maxb = 64 << 20, ver = 4, ka = 60, bmin = 500, bmax = 60000, infl = 64;
    keel_config_err e = KEEL_CONFIG_OK;
#define STR(key, req, dst)                                                                         \
    if (e == KEEL_CONFIG_OK)                                                                       \
    e = keel_config_get_string(obj, key, req, dst, &err)
#define INT(key, lo, hi, dst)                                                                      \
    if (e == KEEL_CONFIG_OK)                                                                       \
    e = keel_config_get_int(obj, key, false, lo, hi, dst, &err)
    STR("scheme", false, &scheme);
    STR("host", true, &cfg->host);
    STR("device_id", true, &cfg->device_id);
    STR("prefix", false, &cfg->prefix);
    STR("ca", true, &cfg->ca_file);
    STR("cert", false, &cfg->cert_file);
    STR("key", false, &cfg->key_file);
    STR("outbox", true, &cfg->outbox_path);
    INT("port", 1, 65535, &port);
    INT("outbox_max_bytes", 4096, INT64_MAX, &maxb);
    INT("mqtt_version", 4, 5, &ver);
    INT("keepalive_s", 5, 3600, &ka);
    INT("backoff_min_ms", 1, 3600000, &bmin);
    INT("backoff_max_ms", 1, 3600000, &bmax);
    INT("max_inflight", 1, 65535, &infl);
#undef STR
#undef INT
    if (e != KEEL_CONFIG_OK) {
        snprintf(errbuf, errcap, "cloud: %s", err.msg);
        return KEEL_CLOUD_ERR_ARG;
    }
    if (strcmp(scheme, "plain") == 0) {
        cfg->scheme = KEEL_CLOUD_SCHEME_PLAIN;
    } else if (strcmp(scheme, "iothub") == 0) {
        cfg->scheme = KEEL_CLOUD_SCHEME_IOTHUB;
    } else {
        snprintf(errbuf, errcap, "cloud: \"scheme\" is \"%s\"; expected \"plain\" or \"iothub\"",
                 scheme);
        return KEEL_CLOUD_ERR_ARG;
    }
    if (!cfg->cert_file != !cfg->key_file) {
        snprintf(errbuf, errcap, "cloud: \"cert\" and \"key\" go together");
        return KEEL_CLOUD_ERR_ARG;
    }
    if (bmin > bmax) {
        snprintf(errbuf, errcap, "cloud: \"backoff_min_ms\" is above \"backoff_max_ms\"");
        return KEEL_CLOUD_ERR_ARG;
    }
    cfg->port = (uint16_t)port;
    cfg->outbox_max_bytes = (uint64_t)maxb;
    cfg->mqtt_version = (int)ver;
    cfg->keepalive_s = (int)ka;
    cfg->backoff_min_ms = (uint32_t)bmin;
    cfg->backoff_max_ms = (uint32_t)bmax;
    cfg->max_inflight = (int)infl;
    return KEEL_CLOUD_OK;
}

/* keeld's device config: where state and packages live, which uids apps get, how crashes are
 * kept and restarts paced. Every key is optional; docs/config.md lists them. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "keel/config.h"
#include "supervisor.h"

const char *keel_supervisor_err_name(sv_err e)
{
    static const char *const names[SV_ERR_COUNT] = {
        [SV_OK] = "SV_OK",
        [SV_ERR_IO] = "SV_ERR_IO",
        [SV_ERR_CONFIG] = "SV_ERR_CONFIG",
        [SV_ERR_SANDBOX] = "SV_ERR_SANDBOX",
        [SV_ERR_NOT_FOUND] = "SV_ERR_NOT_FOUND",
        [SV_ERR_STATE] = "SV_ERR_STATE",
        [SV_ERR_FULL] = "SV_ERR_FULL",
    };
    if ((unsigned)e >= SV_ERR_COUNT) {
        return "SV_ERR_UNKNOWN";
    }
    return names[e];
}

static sv_err set_path(char *dst, const char *a, const char *b)
{
    int n = b ? snprintf(dst, PATH_MAX, "%s/%s", a, b) : snprintf(dst, PATH_MAX, "%s", a);
    return n > 0 && n < PATH_MAX ? SV_OK : SV_ERR_CONFIG;
}

sv_err sv_config_defaults(sv_config *c, const char *state_dir)
{
    memset(c, 0, sizeof *c);
    if (set_path(c->state_dir, state_dir, NULL) || set_path(c->store_dir, state_dir, "apps") ||
        set_path(c->socket_path, state_dir, "keeld.sock")) {
        return SV_ERR_CONFIG;
    }
    c->base_uid = 61000;
    c->max_crash_reports = 10;
    c->backoff_initial_ms = 10;
    c->backoff_max_ms = 30000;
    c->stable_ms = 10000;
    c->stop_grace_ms = 2000;
    c->trial_crashes = 3;
    c->trial_ms = 60000;
    c->method_timeout_ms = 10000;
    return SV_OK;
}

static sv_err get_u32(const cJSON *root, const char *key, uint32_t min, uint32_t max,
                      uint32_t *out, keel_config_error *err)
{
    int64_t v = *out;
    if (keel_config_get_int(root, key, false, min, max, &v, err) != KEEL_CONFIG_OK) {
        return SV_ERR_CONFIG;
    }
    *out = (uint32_t)v;
    return SV_OK;
}

sv_err sv_config_load(sv_config *c, const char *path, char *msg, size_t msglen)
{
    cJSON *root;
    keel_config_error err = {{0}};
    if (keel_config_load(path, &root, &err) != KEEL_CONFIG_OK) {
        snprintf(msg, msglen, "%s", err.msg);
        return SV_ERR_CONFIG;
    }
    sv_err e = SV_OK;
    const char *state = NULL, *store = NULL, *sock = NULL, *broker = NULL, *hw = NULL,
               *rca = NULL;
    if (keel_config_get_string(root, "state_dir", false, &state, &err) ||
        keel_config_get_string(root, "broker", false, &broker, &err) ||
        keel_config_get_string(root, "hardware", false, &hw, &err) ||
        keel_config_get_string(root, "release_ca", false, &rca, &err) ||
        keel_config_get_string(root, "store_dir", false, &store, &err) ||
        keel_config_get_string(root, "socket", false, &sock, &err)) {
        e = SV_ERR_CONFIG;
    }
    if (!e && state) {
        e = sv_config_defaults(c, state);
    }
    if (!e && store) {
        e = set_path(c->store_dir, store, NULL);
    }
    if (!e && broker) {
        if (strlen(broker) >= sizeof c->broker || !strchr(broker, ':')) {
            snprintf(err.msg, sizeof err.msg, "\"broker\" must be host:port");
            e = SV_ERR_CONFIG;
        } else {
            snprintf(c->broker, sizeof c->broker, "%s", broker);
        }
    }
    if (!e && hw && !sv_fmt(c->hardware, sizeof c->hardware, "%s", hw)) {
        snprintf(err.msg, sizeof err.msg, "\"hardware\": at most %zu characters",
                 sizeof c->hardware - 1);
        e = SV_ERR_CONFIG;
    }
    if (!e && rca) {
        e = set_path(c->release_ca, rca, NULL);
    }
    if (!e && sock) {
        e = set_path(c->socket_path, sock, NULL);
    }
    if (!e) {
        /* uids below 1000 are the system's; the top of the range leaves room for 32 apps */
        e = get_u32(root, "base_uid", 1000, 0x7fff0000u, &c->base_uid, &err);
    }
    if (!e) {
        e = get_u32(root, "max_crash_reports", 1, 10000, &c->max_crash_reports, &err);
    }
    if (!e) {
        e = get_u32(root, "backoff_initial_ms", 0, 600000, &c->backoff_initial_ms, &err);
    }
    if (!e) {
        e = get_u32(root, "backoff_max_ms", 1, 3600000, &c->backoff_max_ms, &err);
    }
    if (!e) {
        e = get_u32(root, "stable_ms", 1, 3600000, &c->stable_ms, &err);
    }
    if (!e) {
        e = get_u32(root, "stop_grace_ms", 1, 600000, &c->stop_grace_ms, &err);
    }
    if (!e) {
        e = get_u32(root, "trial_crashes", 1, 1000, &c->trial_crashes, &err);
    }
    if (!e) {
        e = get_u32(root, "trial_ms", 1, 86400000, &c->trial_ms, &err);
    }
    if (!e) {
        e = get_u32(root, "method_timeout_ms", 1, 600000, &c->method_timeout_ms, &err);
    }
    if (!e && keel_config_get_bool(root, "allow_unsigned", false, &c->allow_unsigned, &err)) {
        e = SV_ERR_CONFIG;
    }
    const cJSON *cloud = cJSON_GetObjectItemCaseSensitive(root, "cloud");
    if (!e && cloud) {
        /* kept: the cloud link's config points into it for keeld's lifetime */
        c->cloud_json = cJSON_Duplicate(cloud, 1);
    }
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(root, "trusted_keys");
    if (!e && keys) {
        const cJSON *k;
        c->ntrusted = 0;
        bool ok = cJSON_IsArray(keys);
        cJSON_ArrayForEach(k, keys)
        {
            ok = ok && cJSON_IsString(k) && c->ntrusted < 4 &&
                 sv_fmt(c->trusted_keys[c->ntrusted++], PATH_MAX, "%s", k->valuestring);
        }
        if (!ok) {
            snprintf(err.msg, sizeof err.msg, "\"trusted_keys\": at most 4 paths of .pub files");
            e = SV_ERR_CONFIG;
        }
    }
    if (!e && !sv_devices_config(c, root, err.msg, sizeof err.msg)) {
        e = SV_ERR_CONFIG;
    }
    if (e) {
        snprintf(msg, msglen, "%s: %s", path, err.msg);
    }
    cJSON_Delete(root);
    return e;
}

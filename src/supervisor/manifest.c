/* app_manifest.json as keeld reads it: identity, how to run the app, its limits and its
 * capabilities. This is the one place keeld reads a manifest; when the shared manifest module
 * (include/keel/manifest.h) lands, this file becomes a translation from its structure.
 *
 *   {"id": "…uuid…", "name": "sample", "version": "1.0.0", "kind": "app",
 *    "exec": "bin/sample", "args": ["--x"], "heartbeat_ms": 1000, "restart": "on-failure",
 *    "limits": {"memory_mb": 64, "cpu_percent": 50, "processes": 8, "files": 64},
 *    "capabilities": {"cloud": {"telemetry": true, "properties": true, "methods": true,
 *                               "log": true, "mqtt": true, "http": ["example.com"]},
 *                     "partners": ["…uuid…"]}}
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "keel/config.h"
#include "supervisor.h"

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= SV_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
            return false;
        }
    }
    return true;
}

static bool copy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) {
        return false;
    }
    memcpy(dst, src, n + 1);
    return true;
}

/* A JSON array of strings into a fixed table. */
static sv_err string_list(const cJSON *obj, const char *key, char *table, size_t width,
                          int max, int *count, char *msg, size_t msglen)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, key);
    *count = 0;
    if (!arr) {
        return SV_OK;
    }
    if (!cJSON_IsArray(arr)) {
        snprintf(msg, msglen, "\"%s\" must be an array of strings", key);
        return SV_ERR_CONFIG;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsString(it) || *count >= max ||
            !copy(table + (size_t)*count * width, width, it->valuestring)) {
            snprintf(msg, msglen, "\"%s\": at most %d strings of under %zu characters", key, max,
                     width);
            return SV_ERR_CONFIG;
        }
        (*count)++;
    }
    return SV_OK;
}

sv_err sv_manifest_parse(const char *name, const char *text, size_t len, sv_manifest *m,
                         char *msg, size_t msglen)
{
    cJSON *root;
    keel_config_error err = {{0}};
    memset(m, 0, sizeof *m);
    if (keel_config_parse(name, text, len, &root, &err) != KEEL_CONFIG_OK) {
        snprintf(msg, msglen, "%s", err.msg);
        return SV_ERR_CONFIG;
    }
    sv_err e = SV_ERR_CONFIG;
    const char *id, *app, *ver, *kind = "app", *exec = "", *restart = "on-failure";
    int64_t hb = 0, mem = 64, cpu = 0, procs = 16, files = 64;
    bool f = false;
    const cJSON *limits, *caps, *cloud = NULL;
    if (!cJSON_IsObject(root)) {
        snprintf(msg, msglen, "%s: the manifest must be a JSON object", name);
        goto out;
    }
    if (keel_config_get_string(root, "id", true, &id, &err) ||
        keel_config_get_string(root, "name", true, &app, &err) ||
        keel_config_get_string(root, "version", true, &ver, &err) ||
        keel_config_get_string(root, "kind", false, &kind, &err) ||
        keel_config_get_string(root, "exec", false, &exec, &err) ||
        keel_config_get_string(root, "restart", false, &restart, &err) ||
        keel_config_get_int(root, "heartbeat_ms", false, 0, 3600000, &hb, &err)) {
        snprintf(msg, msglen, "%s: %s", name, err.msg);
        goto out;
    }
    if (!name_ok(app)) {
        snprintf(msg, msglen, "%s: \"name\" must be 1-63 of [a-z0-9_-]", name);
        goto out;
    }
    if (!copy(m->id, sizeof m->id, id) || !copy(m->name, sizeof m->name, app) ||
        !copy(m->version, sizeof m->version, ver) || !copy(m->exec, sizeof m->exec, exec)) {
        snprintf(msg, msglen, "%s: \"id\", \"version\" or \"exec\" is too long", name);
        goto out;
    }
    if (strcmp(kind, "app") == 0) {
        m->realtime = false;
    } else if (strcmp(kind, "realtime") == 0) {
        m->realtime = true;
    } else {
        snprintf(msg, msglen, "%s: \"kind\" is \"app\" or \"realtime\", not \"%s\"", name, kind);
        goto out;
    }
    if (!m->realtime && (exec[0] == '\0' || exec[0] == '/' || strstr(exec, ".."))) {
        snprintf(msg, msglen, "%s: \"exec\" must be a relative path inside the package", name);
        goto out;
    }
    if (strcmp(restart, "on-failure") == 0) {
        m->restart = SV_RESTART_ON_FAILURE;
    } else if (strcmp(restart, "always") == 0) {
        m->restart = SV_RESTART_ALWAYS;
    } else if (strcmp(restart, "never") == 0) {
        m->restart = SV_RESTART_NEVER;
    } else {
        snprintf(msg, msglen, "%s: \"restart\" is on-failure, always or never", name);
        goto out;
    }
    m->heartbeat_ms = (uint32_t)hb;
    if (string_list(root, "args", &m->args[0][0], sizeof m->args[0], SV_MAX_ARGS, &m->nargs, msg,
                    msglen)) {
        goto out;
    }
    limits = cJSON_GetObjectItemCaseSensitive(root, "limits");
    if (limits && (keel_config_get_int(limits, "memory_mb", false, 4, 65536, &mem, &err) ||
                   keel_config_get_int(limits, "cpu_percent", false, 0, 100, &cpu, &err) ||
                   keel_config_get_int(limits, "processes", false, 1, 4096, &procs, &err) ||
                   keel_config_get_int(limits, "files", false, 8, 65536, &files, &err))) {
        snprintf(msg, msglen, "%s: limits: %s", name, err.msg);
        goto out;
    }
    m->memory_bytes = (uint64_t)mem << 20;
    m->cpu_percent = (uint32_t)cpu;
    m->max_procs = (uint32_t)procs;
    m->max_files = (uint32_t)files;
    caps = cJSON_GetObjectItemCaseSensitive(root, "capabilities");
    if (caps) {
        cloud = cJSON_GetObjectItemCaseSensitive(caps, "cloud");
        if (string_list(caps, "partners", &m->partners[0][0], sizeof m->partners[0],
                        SV_MAX_PARTNERS, &m->npartners, msg, msglen)) {
            goto out;
        }
    }
    if (cloud) {
#define FLAG(key, field)                                                                         \
    f = false;                                                                                   \
    if (keel_config_get_bool(cloud, key, false, &f, &err)) {                                     \
        snprintf(msg, msglen, "%s: capabilities.cloud: %s", name, err.msg);                      \
        goto out;                                                                                \
    }                                                                                            \
    m->field = f;
        FLAG("telemetry", cloud_telemetry)
        FLAG("properties", cloud_properties)
        FLAG("methods", cloud_methods)
        FLAG("log", cloud_log)
        FLAG("mqtt", cloud_mqtt)
#undef FLAG
        if (string_list(cloud, "http", &m->http_hosts[0][0], sizeof m->http_hosts[0],
                        SV_MAX_HOSTS, &m->nhttp, msg, msglen)) {
            goto out;
        }
    }
    e = SV_OK;
out:
    cJSON_Delete(root);
    return e;
}

sv_err sv_manifest_load(const char *pkg_dir, sv_manifest *m, char *msg, size_t msglen)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/app_manifest.json", pkg_dir) >= (int)sizeof path) {
        snprintf(msg, msglen, "%s: path too long", pkg_dir);
        return SV_ERR_CONFIG;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(msg, msglen, "%s: cannot open", path);
        return SV_ERR_IO;
    }
    static char text[64 * 1024];
    size_t n = fread(text, 1, sizeof text, f);
    bool big = n == sizeof text;
    fclose(f);
    if (big) {
        snprintf(msg, msglen, "%s: larger than 64 KiB", path);
        return SV_ERR_CONFIG;
    }
    return sv_manifest_parse(path, text, n, m, msg, msglen);
}

/* app_manifest.json as keeld uses it: the one place keeld reads a manifest. The parsing is the
 * shared manifest module's (include/keel/manifest.h, schema in docs/manifest.md); this file
 * translates its structure into keeld's view, applies keeld's defaults (64 MiB, 16 processes,
 * 64 files) and keeld's own rules (a path-safe name, an "exec" for every app).
 */
#include <stdio.h>
#include <string.h>

#include "keel/manifest.h"
#include "supervisor.h"

/* keeld names directories, cgroups and log files after the app: stricter than the manifest's
 * printable-ASCII rule. */
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

static uint32_t or_default(uint32_t v, uint32_t dflt)
{
    return v ? v : dflt;
}

sv_err sv_manifest_parse(const char *name, const char *text, size_t len, sv_manifest *m,
                         char *msg, size_t msglen)
{
    static keel_manifest km; /* ~3 KiB: kept off keeld's stack */
    keel_manifest_error err = {{0}};
    memset(m, 0, sizeof *m);
    if (keel_manifest_parse(name, text, len, &km, &err) != KEEL_MANIFEST_OK) {
        snprintf(msg, msglen, "%s", err.msg);
        return SV_ERR_CONFIG;
    }
    if (!name_ok(km.name)) {
        snprintf(msg, msglen, "%s: \"name\": keeld needs 1-63 of [a-z0-9_-] (it names "
                 "directories after the app)", name);
        return SV_ERR_CONFIG;
    }
    m->km = km;
    m->realtime = km.kind == KEEL_MANIFEST_KIND_RT;
    if (km.exec[0] == '\0') {
        /* an app's program, or for real-time firmware what loads it: the sim-port build (a host
         * program) or a script that starts QEMU with the image in the package */
        snprintf(msg, msglen, "%s: \"exec\": keeld needs the path of the program to run", name);
        return SV_ERR_CONFIG;
    }
    char id[KEEL_MANIFEST_UUID_STR];
    keel_manifest_uuid_format(&km.id, id);
    snprintf(m->id, sizeof m->id, "%s", id);
    snprintf(m->name, sizeof m->name, "%s", km.name);
    snprintf(m->version, sizeof m->version, "%s", km.version);
    snprintf(m->exec, sizeof m->exec, "%s", km.exec);
    m->nargs = (int)km.n_args;
    for (size_t i = 0; i < km.n_args && i < SV_MAX_ARGS; i++) {
        snprintf(m->args[i], sizeof m->args[i], "%s", km.args[i]);
    }
    m->heartbeat_ms = km.heartbeat_ms;
    m->restart = km.restart == KEEL_MANIFEST_RESTART_ALWAYS  ? SV_RESTART_ALWAYS
                 : km.restart == KEEL_MANIFEST_RESTART_NEVER ? SV_RESTART_NEVER
                                                             : SV_RESTART_ON_FAILURE;
    const keel_manifest_caps *c = &km.caps;
    m->memory_bytes = (uint64_t)or_default(c->memory_mb, 64) << 20;
    m->cpu_percent = c->cpu_percent;
    m->max_procs = or_default(c->processes, 16);
    m->max_files = or_default(c->files, 64);
    m->cloud_telemetry = c->cloud_telemetry;
    m->cloud_properties = c->cloud_properties;
    m->cloud_methods = c->cloud_methods;
    m->cloud_log = c->cloud_log;
    m->cloud_mqtt = c->cloud_mqtt;
    m->nhttp = (int)c->n_http;
    for (size_t i = 0; i < c->n_http && i < SV_MAX_HOSTS; i++) {
        snprintf(m->http_hosts[i], sizeof m->http_hosts[i], "%s", c->http[i]);
    }
    m->npartners = (int)c->n_partners;
    for (size_t i = 0; i < c->n_partners && i < SV_MAX_PARTNERS; i++) {
        keel_manifest_uuid_format(&c->partners[i], id);
        snprintf(m->partners[i], sizeof m->partners[i], "%s", id);
    }
    return SV_OK;
}

sv_err sv_manifest_load(const char *pkg_dir, sv_manifest *m, char *msg, size_t msglen)
{
    char path[PATH_MAX];
    if (!sv_fmt(path, sizeof path, "%s/app_manifest.json", pkg_dir)) {
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

/* The supervisor tests' device (world.h). */
#include "world.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"

static int copy_file(const char *src, const char *dst, mode_t mode)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        fprintf(stderr, "world: %s: %s\n", src, strerror(errno));
        return -1;
    }
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    char buf[65536];
    ssize_t n;
    int rc = out < 0 ? -1 : 0;
    while (rc == 0 && (n = read(in, buf, sizeof buf)) > 0) {
        rc = write(out, buf, (size_t)n) == n ? 0 : -1;
    }
    close(in);
    if (out >= 0) {
        close(out);
    }
    return rc;
}

int sv_world_init(sv_world *w, const char *tag, const char *extra)
{
    memset(w, 0, sizeof *w);
    const char *t = kf_tmpdir(tag);
    if (!t) {
        return -1;
    }
    snprintf(w->root, sizeof w->root, "%s", t);
    /* the tmpdir must be traversable by the apps' uids for nothing; keeld binds as root */
    snprintf(w->state, sizeof w->state, "%s/state", w->root);
    snprintf(w->sock, sizeof w->sock, "%s/keeld.sock", w->state);
    snprintf(w->config, sizeof w->config, "%s/device.json", w->root);
    /* uids of their own per test process: concurrent tests never share an app uid */
    w->base_uid = 300000u + (unsigned)(getpid() % 20000) * 40u;
    if (mkdir(w->state, 0755) < 0 || mkdir(sv_world_store(w), 0755) < 0) {
        return -1;
    }
    FILE *f = fopen(w->config, "w");
    if (!f) {
        return -1;
    }
    fprintf(f, "{\"state_dir\": \"%s\", \"base_uid\": %u%s%s}\n", w->state, w->base_uid,
            extra && *extra ? ", " : "", extra ? extra : "");
    return fclose(f);
}

const char *sv_world_store(sv_world *w)
{
    static char store[400];
    snprintf(store, sizeof store, "%s/apps", w->state);
    return store;
}

const char *sv_world_id(const char *name)
{
    static char id[40];
    uint32_t h = 2166136261u; /* FNV-1a of the name: distinct names, distinct ids */
    for (const char *p = name; *p; p++) {
        h = (h ^ (uint8_t)*p) * 16777619u;
    }
    snprintf(id, sizeof id, "00000000-0000-4000-8000-0000%08x", (unsigned)h);
    return id;
}

int sv_world_package(const char *dir, const char *name, const char *exe, const char *json)
{
    return sv_world_package_version(dir, name, exe, "1.0.0", json);
}

int sv_world_package_version(const char *dir, const char *name, const char *exe,
                             const char *version, const char *json)
{
    char p[1024], src[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (mkdir(p, 0755) < 0 && errno != EEXIST) {
        return -1;
    }
    snprintf(p, sizeof p, "%s/%s/bin", dir, name);
    if (mkdir(p, 0755) < 0 && errno != EEXIST) {
        return -1;
    }
    snprintf(src, sizeof src, "%s/tests/integration/supervisor/apps/%s", kf_build_dir(), exe);
    snprintf(p, sizeof p, "%s/%s/bin/%s", dir, name, exe);
    if (copy_file(src, p, 0755) < 0) {
        return -1;
    }
    snprintf(p, sizeof p, "%s/%s/app_manifest.json", dir, name);
    FILE *f = fopen(p, "w");
    if (!f) {
        return -1;
    }
    fprintf(f,
            "{\"schema\": 1, \"kind\": \"app\", \"id\": \"%s\", "
            "\"name\": \"%s\", \"version\": \"%s\", \"exec\": \"bin/%s\"%s%s}\n",
            sv_world_id(name), name, version, exe,
            json && *json ? ", " : "", json ? json : "");
    return fclose(f);
}

int sv_world_start(sv_world *w)
{
    char exe[512];
    snprintf(exe, sizeof exe, "%s/bin/keeld", kf_build_dir());
    char *argv[] = {exe, "--config", w->config, NULL};
    if (kf_spawn(&w->keeld, "keeld", argv, NULL) < 0) {
        return -1;
    }
    if (kf_wait_log(&w->keeld, "ready:", 20000) < 0) {
        kf_dump_log(&w->keeld, 40);
        return -1;
    }
    return 0;
}

int sv_world_ctl(sv_world *w, const char *req, char *out, size_t cap)
{
    return keel_supervisor_ctl(w->sock, req, out, cap, 5000);
}

bool sv_world_wait(sv_world *w, const char *req, const char *needle, int timeout_ms)
{
    static char out[65536];
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        if (sv_world_ctl(w, req, out, sizeof out) >= 0 && strstr(out, needle)) {
            return true;
        }
        poll(NULL, 0, 20); /* polling a condition with a deadline, as kf_wait_* do */
    }
    fprintf(stderr, "timed out waiting for '%s' in answer to '%s'; last answer:\n%s\n", needle,
            req, out);
    return false;
}

/* The cloud link inside keeld (include/keel/cloud.h): apps' telemetry and reported properties
 * go into its durable outbox, desired properties come from its cache (apps with the properties
 * capability get a PROPERTY_CHANGED notification when they change), and every crash report is
 * summarised to the cloud as telemetry from "keeld". Direct methods named "<app>.<method>" are
 * routed to the app (on_method) and its answer goes back to the caller. The link runs on keeld's loop: its socket
 * is in the epoll set and keel_cloud_step() is called every turn, bounded by its own timer. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "keel/cloud.h"
#include "supervisor.h"

/* ---- calls pending when keeld died ----
 * Every call routed to an app is kept as an empty file <state>/calls/<hex of its request id>
 * until it is answered, so that calls a killed keeld left open are answered 503 "supervisor
 * restarted" as soon as the next keeld is connected, instead of the caller timing out. */
#define SV_MAX_ORPHANS 64
static char g_orphans[SV_MAX_ORPHANS][128];
static int g_norphans;

static bool call_path(const sv_daemon *d, const char *rid, char *out, size_t cap)
{
    char hex[2 * 128 + 1];
    size_t n = strlen(rid);
    if (n >= 128) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)rid[i]);
    }
    hex[2 * n] = '\0';
    return sv_fmt(out, cap, "%s/calls/%s", d->cfg.state_dir, hex);
}

static void call_keep(const sv_daemon *d, const char *rid, bool keep)
{
    char p[PATH_MAX];
    if (!call_path(d, rid, p, sizeof p)) {
        return;
    }
    if (!keep) {
        (void)unlink(p);
        return;
    }
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close(fd); /* its name is the record; a call lost to a power cut times out as before */
    }
}

/* At start: the calls the previous keeld left open, to answer once connected. */
static void orphans_load(const sv_daemon *d)
{
    char dir[PATH_MAX];
    if (!sv_fmt(dir, sizeof dir, "%s/calls", d->cfg.state_dir)) {
        return;
    }
    (void)mkdir(dir, 0700);
    DIR *dp = opendir(dir);
    struct dirent *e;
    while (dp && (e = readdir(dp))) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.' || n % 2 || n / 2 >= sizeof g_orphans[0]) {
            continue;
        }
        if (g_norphans < SV_MAX_ORPHANS) {
            char *rid = g_orphans[g_norphans];
            bool ok = true;
            for (size_t i = 0; i < n / 2 && ok; i++) {
                unsigned v;
                ok = sscanf(e->d_name + 2 * i, "%2x", &v) == 1 && v != 0;
                rid[i] = (char)v;
            }
            rid[n / 2] = '\0';
            g_norphans += ok;
        }
        char p[PATH_MAX + 300];
        (void)sv_fmt(p, sizeof p, "%s/%s", dir, e->d_name);
        (void)unlink(p);
    }
    if (dp) {
        closedir(dp);
    }
}

static void on_state(void *user, bool connected, const char *why)
{
    sv_daemon *d = user;
    sv_logf("cloud: %s (%s)", connected ? "connected" : "disconnected", why ? why : "");
    for (int i = 0; connected && i < g_norphans; i++) {
        if (keel_cloud_method_answer(d->cloud, g_orphans[i], 503,
                                     "{\"error\":\"supervisor restarted: the call was lost, "
                                     "make it again\"}") == KEEL_CLOUD_OK) {
            sv_logf("cloud: a call left open by the previous keeld answered 503");
        }
    }
    g_norphans = connected ? 0 : g_norphans;
    for (int i = 0; i < d->napps; i++) {
        sv_app *a = &d->apps[i];
        if (a->state == SV_RUNNING) {
            (void)sv_notify(d, a,
                            connected ? KEEL_APP_NOTIFY_NETWORK_UP : KEEL_APP_NOTIFY_NETWORK_DOWN,
                            0);
        }
    }
}

static void on_desired(void *user, const char *json, int64_t version)
{
    sv_daemon *d = user;
    sv_deploy_desired(d, json);
    for (int i = 0; i < d->napps; i++) {
        sv_app *a = &d->apps[i];
        if (a->state == SV_RUNNING && a->m.cloud_properties) {
            (void)sv_notify(d, a, KEEL_APP_NOTIFY_PROPERTY_CHANGED, (uint64_t)version);
        }
    }
}

/* Answers a call the cloud made and keeld cannot route, with a JSON {"error": why}. */
static void refuse(sv_daemon *d, const char *name, const char *rid, int status, const char *why)
{
    char body[256];
    snprintf(body, sizeof body, "{\"error\":\"%s\"}", why);
    sv_logf("cloud: method %s: %d %s", name, status, why);
    if (keel_cloud_method_answer(d->cloud, rid, status, body) != KEEL_CLOUD_OK) {
        sv_logf("cloud: method %s: answer not sent", name);
    }
}

/* A method call "<app>.<method>" goes to the app as a CLOUD_MESSAGE notification; the app
 * takes it (sv_cloud_method_take) and answers (sv_cloud_method_answer), or the cloud gets 504
 * after method_timeout_ms (sv_cloud_service). The app decides which methods it has: keeld
 * checks only the app and its "methods" capability. */
static void on_method(void *user, const char *name, const char *rid, const char *payload,
                      size_t len)
{
    sv_daemon *d = user;
    const char *dot = strchr(name, '.');
    char app[SV_NAME_MAX];
    if (!dot || dot == name || !dot[1] || (size_t)(dot - name) >= sizeof app) {
        refuse(d, name, rid, 404, "no such method: call <app>.<method>");
        return;
    }
    snprintf(app, sizeof app, "%.*s", (int)(dot - name), name);
    const char *method = dot + 1;
    sv_app *a = sv_app_find(d, app);
    if (!a) {
        refuse(d, name, rid, 404, "no such app");
        return;
    }
    if (!a->m.cloud_methods) {
        refuse(d, name, rid, 403, "the app's manifest does not grant cloud methods");
        return;
    }
    if (a->state != SV_RUNNING || !a->ready) {
        refuse(d, name, rid, 503, "the app is not running");
        return;
    }
    if (strlen(method) >= SV_NAME_MAX || strlen(rid) >= sizeof a->calls[0].rid ||
        sizeof(keel_wire_method_call) + strlen(method) + len > KEEL_APP_MAX_PAYLOAD) {
        refuse(d, name, rid, 413, "method name or body too large");
        return;
    }
    sv_call *c = NULL;
    for (int i = 0; i < SV_MAX_CALLS && !c; i++) {
        c = a->calls[i].used ? NULL : &a->calls[i];
    }
    if (!c) {
        refuse(d, name, rid, 503, "the app has too many calls waiting");
        return;
    }
    char *body = malloc(len ? len : 1);
    if (!body) {
        refuse(d, name, rid, 503, "out of memory");
        return;
    }
    memcpy(body, payload, len);
    *c = (sv_call){.used = true,
                   .id = ++d->next_call_id,
                   .body = body,
                   .body_len = len,
                   .deadline_ms = sv_now_ms() + d->cfg.method_timeout_ms};
    snprintf(c->rid, sizeof c->rid, "%s", rid);
    snprintf(c->method, sizeof c->method, "%s", method);
    call_keep(d, rid, true);
    (void)sv_notify(d, a, KEEL_APP_NOTIFY_CLOUD_MESSAGE, c->id);
}

static void call_free(const sv_daemon *d, sv_call *c)
{
    call_keep(d, c->rid, false);
    free(c->body);
    *c = (sv_call){0};
}

keel_app_status sv_cloud_method_take(sv_daemon *d, sv_app *a, char *out, size_t cap,
                                     size_t *outlen)
{
    (void)d;
    sv_call *c = NULL;
    for (int i = 0; i < SV_MAX_CALLS; i++) {
        sv_call *k = &a->calls[i];
        if (k->used && !k->taken && (!c || k->id < c->id)) {
            c = k; /* oldest first */
        }
    }
    if (!c) {
        return KEEL_APP_ERR_NOT_FOUND;
    }
    keel_wire_method_call h = {c->id, (uint32_t)strlen(c->method), (uint32_t)c->body_len, 0};
    if (sizeof h + h.name_len + h.body_len > cap) {
        return KEEL_APP_ERR_NO_SPACE; /* on_method bounds it: not reached */
    }
    memcpy(out, &h, sizeof h);
    memcpy(out + sizeof h, c->method, h.name_len);
    memcpy(out + sizeof h + h.name_len, c->body, c->body_len);
    *outlen = sizeof h + h.name_len + h.body_len;
    c->taken = true;
    return KEEL_APP_OK;
}

keel_app_status sv_cloud_method_answer(sv_daemon *d, sv_app *a, const char *p, size_t len)
{
    keel_wire_method m;
    memcpy(&m, p, sizeof m); /* the wire check guarantees the size */
    sv_call *c = NULL;
    for (int i = 0; i < SV_MAX_CALLS && !c; i++) {
        c = a->calls[i].used && a->calls[i].id == m.call_id ? &a->calls[i] : NULL;
    }
    if (!c || !d->cloud) {
        return KEEL_APP_ERR_NOT_FOUND; /* never made, answered already, or timed out */
    }
    if (m.status < 100 || m.status > 599) {
        return KEEL_APP_ERR_INVALID_ARG;
    }
    size_t blen = len - sizeof m;
    char body[KEEL_APP_MAX_PAYLOAD + 1];
    memcpy(body, p + sizeof m, blen);
    body[blen] = '\0';
    if (blen == 0) {
        snprintf(body, sizeof body, "{}");
    } else {
        cJSON *j = cJSON_ParseWithLength(body, blen);
        if (!j) {
            return KEEL_APP_ERR_INVALID_ARG; /* the cloud gets JSON; the call stays open */
        }
        cJSON_Delete(j);
    }
    keel_cloud_err e = keel_cloud_method_answer(d->cloud, c->rid, m.status, body);
    sv_logf("cloud: method %s.%s answered %d%s", a->m.name, c->method, (int)m.status,
            e == KEEL_CLOUD_OK ? "" : " (not sent: link down)");
    call_free(d, c);
    return e == KEEL_CLOUD_OK ? KEEL_APP_OK : KEEL_APP_ERR_IO;
}

void sv_cloud_app_gone(sv_daemon *d, sv_app *a)
{
    for (int k = 0; k < SV_MAX_CALLS; k++) {
        sv_call *c = &a->calls[k];
        if (c->used) {
            char name[2 * SV_NAME_MAX + 1];
            snprintf(name, sizeof name, "%s.%s", a->m.name, c->method);
            if (d->cloud) {
                refuse(d, name, c->rid, 503, "the app stopped before answering");
            }
            call_free(d, c);
        }
    }
}

/* Calls past their deadline get 504: the caller hears why instead of timing out itself. */
static void method_deadlines(sv_daemon *d)
{
    int64_t now = sv_now_ms();
    for (int i = 0; i < d->napps; i++) {
        sv_app *a = &d->apps[i];
        for (int k = 0; k < SV_MAX_CALLS; k++) {
            sv_call *c = &a->calls[k];
            if (c->used && now >= c->deadline_ms) {
                char name[2 * SV_NAME_MAX + 1];
                snprintf(name, sizeof name, "%s.%s", a->m.name, c->method);
                refuse(d, name, c->rid, 504, "the app did not answer in time");
                call_free(d, c);
            }
        }
    }
}

static void on_log(void *user, const char *line)
{
    (void)user;
    sv_logf("cloud: %s", line);
}

int sv_cloud_open(sv_daemon *d)
{
    if (!d->cfg.cloud_json) {
        return 0;
    }
    static keel_cloud_config cc;
    char err[256];
    if (keel_cloud_config_from_json(d->cfg.cloud_json, &cc, err, sizeof err) != KEEL_CLOUD_OK) {
        sv_logf("cloud: config: %s", err);
        return -1;
    }
    orphans_load(d);
    static const keel_cloud_callbacks cb = {on_state, on_desired, on_method, NULL, on_log};
    if (keel_cloud_open(&cc, &cb, d, &d->cloud, err, sizeof err) != KEEL_CLOUD_OK) {
        sv_logf("cloud: %s", err);
        return -1;
    }
    sv_logf("cloud: link to %s:%u as %s", cc.host, (unsigned)cc.port, cc.device_id);
    return 0;
}

void sv_cloud_service(sv_daemon *d)
{
    if (!d->cloud) {
        return;
    }
    method_deadlines(d);
    d->cloud_next_ms = keel_cloud_step(d->cloud, 0);
    /* the link's socket changes across reconnects: (re)register it every turn */
    int fd = keel_cloud_fd(d->cloud);
    if (fd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN | (keel_cloud_want_write(d->cloud) ? EPOLLOUT : 0),
                                 .data.u64 = (uint64_t)SV_EV_CLOUD << 32};
        if (epoll_ctl(d->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 && errno == ENOENT) {
            (void)epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev);
        }
    }
}

void sv_cloud_crash(sv_daemon *d, const sv_app *a, uint32_t seq, int wstatus, const char *reason)
{
    if (!d->cloud) {
        return;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON *c = cJSON_AddObjectToObject(root, "keel_crash");
    cJSON_AddStringToObject(c, "app", a->m.name);
    cJSON_AddStringToObject(c, "id", a->m.id);
    cJSON_AddStringToObject(c, "version", a->m.version);
    cJSON_AddNumberToObject(c, "report", seq);
    cJSON_AddStringToObject(c, "reason", reason);
    if (WIFSIGNALED(wstatus)) {
        char sig[16];
        snprintf(sig, sizeof sig, "SIG%s", sigabbrev_np(WTERMSIG(wstatus)) ? sigabbrev_np(WTERMSIG(wstatus)) : "?");
        cJSON_AddStringToObject(c, "signal", sig);
    } else {
        cJSON_AddNumberToObject(c, "exit", WEXITSTATUS(wstatus));
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (text) {
        if (keel_cloud_send_telemetry(d->cloud, text, strlen(text), "source=keeld", NULL) !=
            KEEL_CLOUD_OK) {
            sv_logf("cloud: crash report %u of %s not queued", seq, a->m.name);
        }
        cJSON_free(text);
    }
}

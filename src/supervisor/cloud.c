/* The cloud link inside keeld (include/keel/cloud.h): apps' telemetry and reported properties
 * go into its durable outbox, desired properties come from its cache (apps with the properties
 * capability get a PROPERTY_CHANGED notification when they change), and every crash report is
 * summarised to the cloud as telemetry from "keeld". The link runs on keeld's loop: its socket
 * is in the epoll set and keel_cloud_step() is called every turn, bounded by its own timer. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>

#include "keel/cloud.h"
#include "supervisor.h"

static void on_state(void *user, bool connected, const char *why)
{
    sv_daemon *d = user;
    sv_logf("cloud: %s (%s)", connected ? "connected" : "disconnected", why ? why : "");
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

static void on_method(void *user, const char *name, const char *rid, const char *payload,
                      size_t len)
{
    sv_daemon *d = user;
    (void)payload;
    (void)len;
    /* method routing to apps is not built yet: answer so the caller does not time out */
    sv_logf("cloud: method %s (rid %s): no app takes methods yet, answering 501", name, rid);
    if (keel_cloud_method_answer(d->cloud, rid, 501, "{\"error\":\"not implemented\"}") !=
        KEEL_CLOUD_OK) {
        sv_logf("cloud: method %s: answer not sent", name);
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

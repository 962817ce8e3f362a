/* The receiver and driver helpers shared by the cloud integration tests (receiver.h). */
#include "receiver.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_msg(void *user, const keel_cloud_msg *m, const char *topic, const void *payload,
                   size_t len)
{
    (void)topic;
    receiver *r = user;
    if (strcmp(m->device, r->device) != 0) {
        return;
    }
    /* Telemetry and reported properties share one outbox, so one id sequence: a reported
     * patch's request id is its message id. */
    uint64_t id = m->kind == KEEL_CLOUD_MSG_REPORTED ? strtoull(m->rid, NULL, 10) : m->mid;
    if (m->kind != KEEL_CLOUD_MSG_TELEMETRY && m->kind != KEEL_CLOUD_MSG_REPORTED) {
        return;
    }
    if (id <= r->last) {
        r->dups++;
        return;
    }
    if (id != r->last + 1) {
        fprintf(stderr, "receiver: gap: id %llu after %llu\n", (unsigned long long)id,
                (unsigned long long)r->last);
        r->gaps++;
    }
    r->last = id;
    if (m->kind == KEEL_CLOUD_MSG_TELEMETRY) {
        char buf[64];
        size_t n = len < sizeof buf - 1 ? len : sizeof buf - 1;
        memcpy(buf, payload, n);
        buf[n] = '\0';
        unsigned long long v = 0;
        if (sscanf(buf, "{\"n\":%llu", &v) != 1 || v != m->mid) {
            r->bad_payload++;
        }
    } else {
        size_t n = len < sizeof r->last_reported - 1 ? len : sizeof r->last_reported - 1;
        memcpy(r->last_reported, payload, n);
        r->last_reported[n] = '\0';
        r->reported++;
    }
}

void op_config(keel_cloud_op_config *cfg, const kb_broker *b, const char *name, char *paths,
               size_t cap)
{
    /* paths holds three strings: ca, cert, key. */
    size_t third = cap / 3;
    char *ca = paths, *cert = paths + third, *key = paths + 2 * third;
    snprintf(ca, third, "%s/ca.pem", b->dir);
    snprintf(cert, third, "%s/%s.pem", b->dir, name);
    snprintf(key, third, "%s/%s.key", b->dir, name);
    *cfg = (keel_cloud_op_config){.scheme = KEEL_CLOUD_SCHEME_PLAIN,
                                  .host = "127.0.0.1",
                                  .port = b->port,
                                  .prefix = b->prefix,
                                  .ca_file = ca,
                                  .cert_file = cert,
                                  .key_file = key,
                                  .timeout_ms = 10000};
}

int rx_open(receiver *r, const kb_broker *b, const char *device, const char *client_id)
{
    static char paths[3 * 300];
    keel_cloud_op_config cfg;
    op_config(&cfg, b, "operator", paths, sizeof paths);
    cfg.client_id = client_id;
    cfg.persistent = client_id != NULL;
    r->device = device;
    char err[256];
    keel_cloud_err e = keel_cloud_op_open(&cfg, on_msg, r, &r->op, err, sizeof err);
    if (e != KEEL_CLOUD_OK) {
        fprintf(stderr, "receiver: %s\n", err);
        return -1;
    }
    e = keel_cloud_op_watch(r->op, device, KEEL_CLOUD_WATCH_TELEMETRY | KEEL_CLOUD_WATCH_REPORTED);
    if (e != KEEL_CLOUD_OK) {
        fprintf(stderr, "receiver: watch %s: %s\n", device, keel_cloud_err_name(e));
        keel_cloud_op_close(r->op);
        r->op = NULL;
        return -1;
    }
    return 0;
}

void rx_close(receiver *r)
{
    keel_cloud_op_close(r->op);
    r->op = NULL;
}

bool rx_wait_last(receiver *r, uint64_t want, const kf_proc *driver, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    while (r->last < want && now_ms() < deadline) {
        if (keel_cloud_op_step(r->op, 50) != KEEL_CLOUD_OK) {
            fprintf(stderr, "receiver: connection lost\n");
            return false;
        }
        if (driver && !kf_running((kf_proc *)driver)) {
            fprintf(stderr, "receiver: the driver died\n");
            kf_dump_log(driver, 30);
            return false;
        }
    }
    if (r->last < want) {
        fprintf(stderr, "receiver: got up to %llu of %llu (dups %llu)\n",
                (unsigned long long)r->last, (unsigned long long)want, (unsigned long long)r->dups);
    }
    return r->last >= want;
}

bool rx_wait_reported(receiver *r, const char *needle, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    while (!(r->reported && strstr(r->last_reported, needle)) && now_ms() < deadline) {
        if (keel_cloud_op_step(r->op, 50) != KEEL_CLOUD_OK) {
            return false;
        }
    }
    return r->reported && strstr(r->last_reported, needle);
}

int driver_start(kf_proc *p, const char *config, const char *log, ...)
{
    static char bin[512];
    snprintf(bin, sizeof bin, "%s/bin/keel-cloudlink", kf_build_dir());
    char *argv[32] = {bin, "--config", (char *)config};
    int n = 3;
    va_list ap;
    va_start(ap, log);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 30) {
        argv[n++] = (char *)a;
    }
    va_end(ap);
    argv[n] = NULL;
    static char deflog[400];
    if (!log) {
        /* One log per driver process started, beside the config (kf_tmpdir slots are few). */
        static int seq;
        snprintf(deflog, sizeof deflog, "%s.%d.log", config, ++seq);
        log = deflog;
    }
    return kf_spawn(p, "keel-cloudlink", argv, log);
}

uint64_t driver_accepted(const kf_proc *p)
{
    FILE *f = fopen(p->log, "r");
    if (!f) {
        return 0;
    }
    char line[512];
    unsigned long long best = 0, v;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "accepted %llu", &v) == 1 && v > best) {
            best = v;
        }
    }
    fclose(f);
    return best;
}

bool driver_wait_accepted(kf_proc *p, uint64_t want, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    while (driver_accepted(p) < want) {
        if (now_ms() >= deadline || !kf_running(p)) {
            return false;
        }
        /* The log grows line by line; wait for the next line rather than spin. */
        (void)kf_wait_log(p, "\n", 20);
    }
    return true;
}

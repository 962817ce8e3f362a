/* The well-behaved app: what docs/apps.md builds up to. It registers a notification ring,
 * keeps a boot counter in its data directory, heartbeats, logs every notification it gets
 * (with the delivery latency when the notification's arg is a CLOCK_MONOTONIC timestamp in ns,
 * as the benchmark sends), and exits cleanly when keeld asks it to stop.
 *
 *   sample            run until stopped
 *   sample rtt N      time N SDK round trips (heartbeat calls), log the mean, keep running
 *
 * Cloud methods it answers (when its manifest grants "methods"): "echo" answers 200 with the
 * call's body, "slow" is never answered (keeld's 504), "quit" makes it exit without answering
 * (keeld's 503), anything else 404. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keel/app.h"

static volatile sig_atomic_t g_stop;
static void on_term(int s)
{
    (void)s;
    g_stop = 1;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void logf_(keel_app *app, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(keel_app *app, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) {
        if (keel_app_log(app, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1) != KEEL_APP_OK) {
            return; /* nowhere to report it */
        }
    }
}

/* A boot counter in /data proves the data directory is the app's and writable. */
static unsigned boot_count(void)
{
    unsigned n = 0;
    FILE *f = fopen("boots", "r");
    if (f) {
        if (fscanf(f, "%u", &n) != 1) {
            n = 0;
        }
        fclose(f);
    }
    f = fopen("boots", "w");
    if (f) {
        fprintf(f, "%u\n", n + 1);
        fclose(f);
    }
    return n + 1;
}

static void answer_methods(keel_app *app)
{
    uint32_t id;
    char name[64];
    static char body[KEEL_APP_MAX_PAYLOAD];
    size_t len;
    while (keel_app_method_take(app, &id, name, sizeof name, body, sizeof body, &len) ==
           KEEL_APP_OK) {
        keel_app_status st = KEEL_APP_OK;
        if (strcmp(name, "quit") == 0) {
            logf_(app, "sample: method quit: exiting");
            exit(0);
        }
        if (strcmp(name, "echo") == 0) {
            st = keel_app_method_answer(app, id, 200, body, len);
        } else if (strcmp(name, "slow") != 0) {
            st = keel_app_method_answer(app, id, 404, "{\"error\":\"no such method\"}", 26);
        }
        logf_(app, "sample: method %s call %u answered %s", name, id, keel_app_status_name(st));
    }
}

int main(int argc, char **argv)
{
    keel_app *app;
    keel_app_status st = keel_app_open(&app);
    if (st != KEEL_APP_OK) {
        fprintf(stderr, "sample: keel_app_open: %s\n", keel_app_status_name(st));
        return 1;
    }
    signal(SIGTERM, on_term);
    static uint64_t ring[(sizeof(keel_app_ring) + 64 * sizeof(keel_app_notification)) / 8];
    int wake = -1;
    st = keel_app_notify_register(app, ring, sizeof ring, &wake);
    logf_(app, "sample: started, boot %u, ring %s", boot_count(), keel_app_status_name(st));
    /* after an update keeld keeps the previous version until the new one says it is well */
    st = keel_app_confirm_health(app);
    logf_(app, "sample: health confirmed %s", keel_app_status_name(st));
    st = keel_app_telemetry_send(app, "{\"boot\":1}", 10);
    logf_(app, "sample: telemetry %s", keel_app_status_name(st));

    if (argc == 3 && strcmp(argv[1], "rtt") == 0) {
        int n = atoi(argv[2]);
        int64_t t0 = now_ns();
        for (int i = 0; i < n; i++) {
            if (keel_app_heartbeat(app) != KEEL_APP_OK) {
                break;
            }
        }
        int64_t dt = now_ns() - t0;
        logf_(app, "sample: rtt_ns=%lld over %d calls", (long long)(n > 0 ? dt / n : 0), n);
    }
    printf("sample: stdout works\n");
    fflush(stdout);

    while (!g_stop) {
        struct pollfd p = {.fd = wake, .events = POLLIN};
        int r = poll(&p, 1, 100);
        if (r < 0 && errno != EINTR) {
            break;
        }
        keel_app_notification recs[16];
        size_t got = 0;
        while (keel_app_notify_take(app, recs, 16, &got) == KEEL_APP_OK && got > 0) {
            int64_t t = now_ns();
            for (size_t i = 0; i < got; i++) {
                if (recs[i].type == KEEL_APP_NOTIFY_STOP_REQUESTED) {
                    g_stop = 1;
                }
                if (recs[i].type == KEEL_APP_NOTIFY_CLOUD_MESSAGE) {
                    answer_methods(app);
                }
                logf_(app, "sample: notify type=%u seq=%u arg=%llu latency_ns=%lld",
                      recs[i].type, recs[i].seq, (unsigned long long)recs[i].arg,
                      recs[i].arg > 0 && recs[i].arg < (uint64_t)t ? (long long)(t - (int64_t)recs[i].arg)
                                                                 : -1LL);
            }
        }
        /* after the records, so the heartbeat's round trip does not delay their handling */
        if (keel_app_heartbeat(app) == KEEL_APP_ERR_NOT_CONNECTED) {
            break;
        }
    }
    logf_(app, "sample: stopping");
    keel_app_close(app);
    return 0;
}

/* keel-cloudlink: a process that holds one cloud link, as keeld will. Tests, the benchmark and
 * demos run it against a real broker: it generates numbered telemetry ({"n": mid}) so a
 * receiver can check order and completeness across broker outages and SIGKILLs, acknowledges
 * desired properties the IoT Plug and Play way, and answers every method by echoing it.
 *
 * It prints one line per event on stdout (line-buffered) for tests to wait on:
 *   connected | down <why> | accepted <mid> | desired <version> <json> | method <name> <rid>
 *   | drained | error <what>
 */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keel/cloud.h"
#include "keel/config.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

typedef struct driver {
    keel_cloud *c;
    bool ack_desired;
} driver;

static void on_state(void *user, bool connected, const char *why)
{
    (void)user;
    if (connected) {
        printf("connected\n");
    } else {
        printf("down %s\n", why);
    }
}

static void on_log(void *user, const char *line)
{
    (void)user;
    printf("log %s\n", line);
}

static void on_desired(void *user, const char *json, int64_t version)
{
    driver *d = user;
    printf("desired %lld %s\n", (long long)version, json);
    if (!d->ack_desired || !d->c) {
        return;
    }
    /* One reported patch acknowledging every desired property at this version. */
    cJSON *doc = cJSON_Parse(json);
    cJSON *ack = cJSON_CreateObject();
    for (cJSON *m = doc ? doc->child : NULL; m; m = m->next) {
        if (m->string[0] == '$') {
            continue;
        }
        cJSON *p = cJSON_CreateObject();
        cJSON_AddItemToObject(p, "value", cJSON_Duplicate(m, true));
        cJSON_AddNumberToObject(p, "ac", 200);
        cJSON_AddNumberToObject(p, "av", (double)version);
        cJSON_AddStringToObject(p, "ad", "applied");
        cJSON_AddItemToObject(ack, m->string, p);
    }
    char *text = cJSON_PrintUnformatted(ack);
    if (text && keel_cloud_report(d->c, text, NULL) != KEEL_CLOUD_OK) {
        printf("error report not accepted\n");
    }
    free(text);
    cJSON_Delete(ack);
    cJSON_Delete(doc);
}

static void on_method(void *user, const char *name, const char *rid, const char *payload,
                      size_t len)
{
    driver *d = user;
    printf("method %s %s\n", name, rid);
    cJSON *answer = cJSON_CreateObject();
    cJSON_AddStringToObject(answer, "method", name);
    cJSON *req = cJSON_ParseWithLength(payload, len);
    cJSON_AddItemToObject(answer, "echo", req ? req : cJSON_CreateNull());
    char *text = cJSON_PrintUnformatted(answer);
    if (keel_cloud_method_answer(d->c, rid, 200, text) != KEEL_CLOUD_OK) {
        printf("error method answer not sent\n");
    }
    free(text);
    cJSON_Delete(answer);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char usage[] =
    "usage: keel-cloudlink --config FILE [options]\n"
    "  --config FILE       device config: a JSON object with a \"cloud\" section (or the section)\n"
    "  --count N           generate telemetry {\"n\": mid} until message id N was accepted\n"
    "  --rate HZ           messages per second (default 0: as fast as the disk takes them)\n"
    "  --batch B           messages per group commit (default 1)\n"
    "  --pad BYTES         extra payload bytes per message (default 0)\n"
    "  --report JSON       queue this reported-properties patch at start\n"
    "  --ack-desired       acknowledge desired properties (IoT Plug and Play ac/av/ad)\n"
    "  --exit-when-drained exit 0 once --count was reached and the outbox is empty\n"
    "  --seconds S         exit after S seconds (default: run until SIGTERM)\n";

int main(int argc, char **argv)
{
    const char *config = NULL, *report = NULL;
    long long count = 0, batch = 1, pad = 0;
    double rate = 0, seconds = 0;
    bool ack = false, exit_drained = false;
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"count", required_argument, 0, 'n'},
                                         {"rate", required_argument, 0, 'r'},
                                         {"batch", required_argument, 0, 'b'},
                                         {"pad", required_argument, 0, 'p'},
                                         {"report", required_argument, 0, 'R'},
                                         {"ack-desired", no_argument, 0, 'a'},
                                         {"exit-when-drained", no_argument, 0, 'x'},
                                         {"seconds", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            config = optarg;
            break;
        case 'n':
            count = atoll(optarg);
            break;
        case 'r':
            rate = atof(optarg);
            break;
        case 'b':
            batch = atoll(optarg);
            break;
        case 'p':
            pad = atoll(optarg);
            break;
        case 'R':
            report = optarg;
            break;
        case 'a':
            ack = true;
            break;
        case 'x':
            exit_drained = true;
            break;
        case 's':
            seconds = atof(optarg);
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (!config || batch < 1 || pad < 0 || pad > 200000 || count < 0) {
        fputs(usage, stderr);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN); /* a peer that hangs up is an error return, not a death */

    cJSON *root = NULL;
    keel_config_error cerr;
    if (keel_config_load(config, &root, &cerr) != KEEL_CONFIG_OK) {
        fprintf(stderr, "keel-cloudlink: %s\n", cerr.msg);
        return 3;
    }
    const cJSON *section = cJSON_GetObjectItemCaseSensitive(root, "cloud");
    keel_cloud_config cfg;
    char err[512];
    if (keel_cloud_config_from_json(section ? section : root, &cfg, err, sizeof err) !=
        KEEL_CLOUD_OK) {
        fprintf(stderr, "keel-cloudlink: %s: %s\n", config, err);
        cJSON_Delete(root);
        return 2;
    }
    driver d = {.ack_desired = ack};
    keel_cloud_callbacks cb = {
        .on_state = on_state, .on_desired = on_desired, .on_method = on_method, .on_log = on_log};
    keel_cloud_err e = keel_cloud_open(&cfg, &cb, &d, &d.c, err, sizeof err);
    if (e != KEEL_CLOUD_OK) {
        fprintf(stderr, "keel-cloudlink: %s\n", err);
        printf("error %s\n", err);
        cJSON_Delete(root);
        return e == KEEL_CLOUD_ERR_DISK_FULL ? 3 : 1;
    }
    if (report && keel_cloud_report(d.c, report, NULL) != KEEL_CLOUD_OK) {
        printf("error report not accepted\n");
    }

    char *payload = malloc((size_t)pad + 64);
    int64_t start = now_ms(), next_send = start;
    keel_cloud_stats st;
    keel_cloud_get_stats(d.c, &st);
    uint64_t next = st.last_mid; /* the mid the next message will get, minus one */
    bool drained_said = false;
    int rc = 0;
    while (!stop) {
        int64_t now = now_ms();
        if (seconds > 0 && now - start >= (int64_t)(seconds * 1000)) {
            break;
        }
        if ((uint64_t)count > next && now >= next_send) {
            long long n = batch;
            if ((long long)((uint64_t)count - next) < n) {
                n = (long long)((uint64_t)count - next);
            }
            bool batched = n > 1;
            if (batched && keel_cloud_batch_begin(d.c) != KEEL_CLOUD_OK) {
                printf("error batch begin\n");
                batched = false;
            }
            uint64_t mid = 0;
            bool ok = true;
            for (long long i = 0; i < n && ok; i++) {
                /* The outbox's ids are the message ids: the payload names the id it will get,
                 * so a receiver can check payload and id agree. */
                int len =
                    snprintf(payload, 64, "{\"n\":%llu,\"pad\":\"", (unsigned long long)(next + 1));
                memset(payload + len, 'x', (size_t)pad);
                len += (int)pad;
                memcpy(payload + len, "\"}", 2);
                len += 2;
                e = keel_cloud_send_telemetry(d.c, payload, (size_t)len, NULL, &mid);
                if (e != KEEL_CLOUD_OK) {
                    printf("error telemetry not accepted: %s\n", keel_cloud_err_name(e));
                    ok = false;
                } else {
                    next = mid;
                }
            }
            if (batched) {
                if (ok && keel_cloud_batch_commit(d.c) == KEEL_CLOUD_OK) {
                    printf("accepted %llu\n", (unsigned long long)mid);
                } else {
                    keel_cloud_batch_rollback(d.c);
                    keel_cloud_get_stats(d.c, &st);
                    next = st.last_mid;
                    ok = false;
                }
            } else if (ok) {
                printf("accepted %llu\n", (unsigned long long)mid);
            }
            if (!ok) {
                /* Disk full or over the bound: say so and stop generating; keep sending. */
                count = (long long)next;
            }
            next_send = rate > 0 ? next_send + (int64_t)(1000.0 * (double)n / rate) : now;
        }
        int wait = (uint64_t)count > next ? (int)(next_send - now_ms()) : 200;
        if (wait < 0) {
            wait = 0;
        }
        int due = keel_cloud_step(d.c, wait > 200 ? 200 : wait);
        (void)due;
        if ((uint64_t)count <= next) {
            keel_cloud_get_stats(d.c, &st);
            if (st.queued == 0 && !drained_said) {
                printf("drained\n");
                drained_said = true;
                if (exit_drained) {
                    break;
                }
            } else if (st.queued) {
                drained_said = false;
            }
        }
    }
    free(payload);
    keel_cloud_close(d.c);
    cJSON_Delete(root);
    return rc;
}

/* keel cloud: the operator's side of the cloud link on a plain MQTT broker: watch telemetry
 * and reported properties, set desired properties, call a method, and deploy a release (a
 * desired property naming a signed manifest's URL, which the device's update agent acts on).
 *
 * Connection options are shared by every verb; they can come from an operator config file
 * (--config FILE: {"host", "port", "prefix", "ca", "cert", "key"}) and be overridden on the
 * command line.
 */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "keel/cloud.h"
#include "keel/config.h"

#define CONN_USAGE                                                                                 \
    "Connection (all verbs):\n"                                                                    \
    "  --config FILE   operator config: {\"host\",\"port\",\"prefix\",\"ca\",\"cert\",\"key\"}\n"  \
    "  --host HOST     broker host (default localhost)\n"                                          \
    "  --port N        broker TLS port (default 8883)\n"                                           \
    "  --prefix P      topic prefix (default keel)\n"                                              \
    "  --ca FILE       CA bundle that verifies the broker (required)\n"                            \
    "  --cert FILE     operator client certificate\n"                                              \
    "  --key FILE      its key\n"

enum {
    OPT_CONFIG = 256,
    OPT_HOST,
    OPT_PORT,
    OPT_PREFIX,
    OPT_CA,
    OPT_CERT,
    OPT_KEY,
    OPT_DEVICE,
    OPT_TIMEOUT,
    OPT_COUNT,
    OPT_MANIFEST,
    OPT_GROUP,
    OPT_SHA
};

static const struct option conn_opts[] = {{"config", required_argument, 0, OPT_CONFIG},
                                          {"host", required_argument, 0, OPT_HOST},
                                          {"port", required_argument, 0, OPT_PORT},
                                          {"prefix", required_argument, 0, OPT_PREFIX},
                                          {"ca", required_argument, 0, OPT_CA},
                                          {"cert", required_argument, 0, OPT_CERT},
                                          {"key", required_argument, 0, OPT_KEY},
                                          {"device", required_argument, 0, OPT_DEVICE},
                                          {"timeout", required_argument, 0, OPT_TIMEOUT},
                                          {"count", required_argument, 0, OPT_COUNT},
                                          {"manifest", required_argument, 0, OPT_MANIFEST},
                                          {"group", required_argument, 0, OPT_GROUP},
                                          {"sha256", required_argument, 0, OPT_SHA},
                                          {0, 0, 0, 0}};

typedef struct opts {
    const char *config, *host, *prefix, *ca, *cert, *key;
    long port;
    const char *device, *manifest, *group, *sha256;
    double timeout_s;
    long long count;
    cJSON *config_json;
} opts;

/* Parses options common to all verbs into o; leaves positional args at argv[optind..]. */
static int parse_opts(int argc, char **argv, opts *o, const char *verb)
{
    memset(o, 0, sizeof *o);
    o->timeout_s = 10;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", conn_opts, NULL)) != -1) {
        switch (c) {
        case OPT_CONFIG:
            o->config = optarg;
            break;
        case OPT_HOST:
            o->host = optarg;
            break;
        case OPT_PORT:
            o->port = strtol(optarg, NULL, 10);
            break;
        case OPT_PREFIX:
            o->prefix = optarg;
            break;
        case OPT_CA:
            o->ca = optarg;
            break;
        case OPT_CERT:
            o->cert = optarg;
            break;
        case OPT_KEY:
            o->key = optarg;
            break;
        case OPT_DEVICE:
            o->device = optarg;
            break;
        case OPT_TIMEOUT:
            o->timeout_s = atof(optarg);
            break;
        case OPT_COUNT:
            o->count = atoll(optarg);
            break;
        case OPT_MANIFEST:
            o->manifest = optarg;
            break;
        case OPT_GROUP:
            o->group = optarg;
            break;
        case OPT_SHA:
            o->sha256 = optarg;
            break;
        default:
            return keel_cli_fail(KEEL_EXIT_USAGE, verb, "bad option (see --help)");
        }
    }
    if (o->config) {
        keel_config_error err;
        if (keel_config_load(o->config, &o->config_json, &err) != KEEL_CONFIG_OK) {
            return keel_cli_fail(KEEL_EXIT_IO, verb, "%s", err.msg);
        }
        const cJSON *j = o->config_json;
        const char **fields[] = {&o->host, &o->prefix, &o->ca, &o->cert, &o->key};
        const char *keys[] = {"host", "prefix", "ca", "cert", "key"};
        for (int i = 0; i < 5; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
            if (!*fields[i] && cJSON_IsString(v)) {
                *fields[i] = v->valuestring;
            }
        }
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "port");
        if (!o->port && cJSON_IsNumber(p)) {
            o->port = (long)p->valuedouble;
        }
    }
    if (o->port < 0 || o->port > 65535) {
        return keel_cli_fail(KEEL_EXIT_USAGE, verb, "--port %ld is not a port", o->port);
    }
    if (!o->ca) {
        return keel_cli_fail(KEEL_EXIT_USAGE, verb,
                             "--ca FILE is required: the broker is always verified");
    }
    return KEEL_EXIT_OK;
}

static int connect_op(opts *o, const char *verb, keel_cloud_op_fn fn, void *user,
                      keel_cloud_op **op)
{
    keel_cloud_op_config cfg = {
        .scheme = KEEL_CLOUD_SCHEME_PLAIN,
        .host = o->host ? o->host : "localhost",
        .port = (uint16_t)(o->port ? o->port : 8883),
        .prefix = o->prefix ? o->prefix : "keel",
        .ca_file = o->ca,
        .cert_file = o->cert,
        .key_file = o->key,
        .timeout_ms = (int)(o->timeout_s * 1000),
    };
    char err[320];
    keel_cloud_err e = keel_cloud_op_open(&cfg, fn, user, op, err, sizeof err);
    if (e != KEEL_CLOUD_OK) {
        return keel_cli_fail(e == KEEL_CLOUD_ERR_TLS ? KEEL_EXIT_VERIFY : KEEL_EXIT_IO, verb, "%s",
                             err);
    }
    return KEEL_EXIT_OK;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- watch ------------------------------------------------------------------------------ */

#define WATCH_DEVICES 1024
typedef struct watch_state {
    char dev[WATCH_DEVICES][KEEL_CLOUD_MAX_ID];
    uint64_t last[WATCH_DEVICES];
    int n;
    long long shown, dups;
} watch_state;

static volatile sig_atomic_t watch_stop;
static void on_sigint(int sig)
{
    (void)sig;
    watch_stop = 1;
}

/* Message ids are per device and increasing; a QoS 1 redelivery repeats one already shown. */
static bool watch_is_dup(watch_state *w, const char *device, uint64_t id)
{
    int i;
    for (i = 0; i < w->n && strcmp(w->dev[i], device) != 0; i++) {
    }
    if (i == w->n) {
        if (w->n == WATCH_DEVICES) {
            return false;
        }
        snprintf(w->dev[w->n], sizeof w->dev[0], "%s", device);
        w->last[w->n++] = 0;
    }
    if (id && id <= w->last[i]) {
        return true;
    }
    if (id) {
        w->last[i] = id;
    }
    return false;
}

static void on_watch(void *user, const keel_cloud_msg *m, const char *topic, const void *payload,
                     size_t len)
{
    watch_state *w = user;
    const char *kind;
    uint64_t id = 0;
    switch (m->kind) {
    case KEEL_CLOUD_MSG_TELEMETRY:
        kind = "telemetry";
        id = m->mid;
        break;
    case KEEL_CLOUD_MSG_REPORTED:
        kind = "reported";
        id = strtoull(m->rid, NULL, 10);
        break;
    case KEEL_CLOUD_MSG_METHOD_RESPONSE:
        kind = "method-response";
        break;
    case KEEL_CLOUD_MSG_DESIRED:
        kind = "desired";
        break;
    default:
        kind = NULL;
        break;
    }
    if (!kind) {
        printf("? %s %.*s\n", topic, (int)(len > 4096 ? 4096 : len), (const char *)payload);
        return;
    }
    if (watch_is_dup(w, m->device, id)) {
        w->dups++;
        return;
    }
    printf("%s %s", m->device, kind);
    if (id) {
        printf(" id=%llu", (unsigned long long)id);
    }
    printf(" %.*s\n", (int)(len > 4096 ? 4096 : len), (const char *)payload);
    fflush(stdout);
    w->shown++;
}

static int cloud_watch(int argc, char **argv)
{
    opts o;
    int rc = parse_opts(argc, argv, &o, "cloud watch");
    if (rc != KEEL_EXIT_OK) {
        cJSON_Delete(o.config_json);
        return rc;
    }
    watch_state *w = calloc(1, sizeof *w);
    keel_cloud_op *op = NULL;
    rc = w ? connect_op(&o, "cloud watch", on_watch, w, &op) : KEEL_EXIT_FAIL;
    if (rc == KEEL_EXIT_OK && keel_cloud_op_watch(op, o.device ? o.device : "+",
                                                  KEEL_CLOUD_WATCH_TELEMETRY |
                                                      KEEL_CLOUD_WATCH_REPORTED) != KEEL_CLOUD_OK) {
        rc = keel_cli_fail(KEEL_EXIT_REMOTE, "cloud watch", "the broker refused the subscription");
    }
    if (rc == KEEL_EXIT_OK) {
        signal(SIGINT, on_sigint);
        signal(SIGTERM, on_sigint);
        fprintf(stderr, "keel cloud watch: watching %s (Ctrl-C to stop)\n",
                o.device ? o.device : "every device");
        /* --timeout bounds the wait for --count messages; without --count it runs on. */
        int64_t deadline = o.count ? now_ms() + (int64_t)(o.timeout_s * 1000) : INT64_MAX;
        while (!watch_stop && (!o.count || w->shown < o.count)) {
            if (now_ms() >= deadline) {
                rc = keel_cli_fail(KEEL_EXIT_TIMEOUT, "cloud watch", "%lld of %lld messages",
                                   w->shown, o.count);
                break;
            }
            if (keel_cloud_op_step(op, 200) != KEEL_CLOUD_OK) {
                rc = keel_cli_fail(KEEL_EXIT_IO, "cloud watch", "connection to the broker lost");
                break;
            }
        }
        fprintf(stderr, "keel cloud watch: %lld messages, %lld redeliveries dropped\n", w->shown,
                w->dups);
    }
    keel_cloud_op_close(op);
    free(w);
    cJSON_Delete(o.config_json);
    return rc;
}

/* ---- set, deploy ------------------------------------------------------------------------ */

static int set_one(keel_cloud_op *op, const char *verb, const char *device, const char *patch)
{
    int64_t v = 0;
    keel_cloud_err e = keel_cloud_op_set_desired(op, device, patch, &v);
    if (e == KEEL_CLOUD_ERR_MALFORMED) {
        return keel_cli_fail(KEEL_EXIT_USAGE, verb, "the patch is not a JSON object: %s", patch);
    }
    if (e != KEEL_CLOUD_OK) {
        return keel_cli_fail(KEEL_EXIT_IO, verb, "%s: %s", device, keel_cloud_err_name(e));
    }
    printf("%s: desired version %lld\n", device, (long long)v);
    return KEEL_EXIT_OK;
}

static int cloud_set(int argc, char **argv)
{
    opts o;
    int rc = parse_opts(argc, argv, &o, "cloud set");
    if (rc == KEEL_EXIT_OK && (!o.device || optind != argc - 1)) {
        rc = keel_cli_fail(KEEL_EXIT_USAGE, "cloud set", "usage: --device ID JSON");
    }
    keel_cloud_op *op = NULL;
    if (rc == KEEL_EXIT_OK) {
        rc = connect_op(&o, "cloud set", NULL, NULL, &op);
    }
    if (rc == KEEL_EXIT_OK) {
        rc = set_one(op, "cloud set", o.device, argv[optind]);
    }
    keel_cloud_op_close(op);
    cJSON_Delete(o.config_json);
    return rc;
}

static int cloud_deploy(int argc, char **argv)
{
    opts o;
    int rc = parse_opts(argc, argv, &o, "cloud deploy");
    if (rc == KEEL_EXIT_OK && (!o.manifest || (!o.device && !o.group) || optind != argc)) {
        rc = keel_cli_fail(KEEL_EXIT_USAGE, "cloud deploy",
                           "usage: --manifest URL (--device ID[,ID...] | --group FILE)");
    }
    if (rc == KEEL_EXIT_OK && strncmp(o.manifest, "https://", 8) != 0 &&
        strncmp(o.manifest, "http://", 7) != 0) {
        rc = keel_cli_fail(KEEL_EXIT_USAGE, "cloud deploy", "--manifest must be an http(s) URL");
    }
    /* Devices: a comma list, or a group file with one device id per line (# comments). */
    char *list = NULL;
    size_t n = 0;
    if (rc == KEEL_EXIT_OK && o.group) {
        FILE *f = fopen(o.group, "r");
        if (!f) {
            rc = keel_cli_fail(KEEL_EXIT_IO, "cloud deploy", "cannot read group %s", o.group);
        } else {
            size_t cap = 0;
            char line[256];
            while (fgets(line, sizeof line, f)) {
                char *s = line + strspn(line, " \t");
                s[strcspn(s, " \t\r\n#")] = '\0';
                if (!*s) {
                    continue;
                }
                size_t l = strlen(s);
                char *grown = realloc(list, cap + l + 2);
                if (!grown) {
                    break;
                }
                list = grown;
                memcpy(list + cap, s, l);
                list[cap + l] = ',';
                list[cap + l + 1] = '\0';
                cap += l + 1;
            }
            fclose(f);
        }
    } else if (rc == KEEL_EXIT_OK) {
        list = strdup(o.device);
    }
    keel_cloud_op *op = NULL;
    if (rc == KEEL_EXIT_OK && list) {
        rc = connect_op(&o, "cloud deploy", NULL, NULL, &op);
    }
    int failed = 0;
    if (rc == KEEL_EXIT_OK && list) {
        cJSON *patch = cJSON_CreateObject();
        cJSON *upd = cJSON_AddObjectToObject(patch, "update");
        cJSON_AddStringToObject(upd, "manifest_url", o.manifest);
        if (o.sha256) {
            cJSON_AddStringToObject(upd, "manifest_sha256", o.sha256);
        }
        char *text = cJSON_PrintUnformatted(patch);
        char *save = NULL;
        for (char *dev = strtok_r(list, ",", &save); dev; dev = strtok_r(NULL, ",", &save)) {
            n++;
            if (set_one(op, "cloud deploy", dev, text) != KEEL_EXIT_OK) {
                failed++;
            }
        }
        fprintf(stderr, "keel cloud deploy: %zu device(s), %d failed\n", n, failed);
        free(text);
        cJSON_Delete(patch);
        rc = failed ? KEEL_EXIT_FAIL : KEEL_EXIT_OK;
    }
    free(list);
    keel_cloud_op_close(op);
    cJSON_Delete(o.config_json);
    return rc;
}

/* ---- call ------------------------------------------------------------------------------- */

static int cloud_call(int argc, char **argv)
{
    opts o;
    int rc = parse_opts(argc, argv, &o, "cloud call");
    if (rc == KEEL_EXIT_OK && (!o.device || optind >= argc || argc - optind > 2)) {
        rc = keel_cli_fail(KEEL_EXIT_USAGE, "cloud call", "usage: --device ID METHOD [JSON]");
    }
    keel_cloud_op *op = NULL;
    if (rc == KEEL_EXIT_OK) {
        rc = connect_op(&o, "cloud call", NULL, NULL, &op);
    }
    if (rc == KEEL_EXIT_OK) {
        const char *method = argv[optind];
        const char *payload = optind + 1 < argc ? argv[optind + 1] : "{}";
        int status = 0;
        static char resp[KEEL_CLOUD_MAX_MESSAGE + 1];
        keel_cloud_err e = keel_cloud_op_call(
            op, o.device, method, payload, (int)(o.timeout_s * 1000), &status, resp, sizeof resp);
        if (e == KEEL_CLOUD_ERR_ARG) {
            rc = keel_cli_fail(KEEL_EXIT_USAGE, "cloud call", "bad device id or method name");
        } else if (e != KEEL_CLOUD_OK) {
            rc = keel_cli_fail(KEEL_EXIT_TIMEOUT, "cloud call",
                               "%s did not answer %s within %.0f s", o.device, method, o.timeout_s);
        } else {
            printf("%d %s\n", status, resp);
            rc = status >= 400 ? KEEL_EXIT_REMOTE : KEEL_EXIT_OK;
        }
    }
    keel_cloud_op_close(op);
    cJSON_Delete(o.config_json);
    return rc;
}

static const struct keel_cli_verb cloud_verbs[] = {
    {"watch", "print devices' telemetry and reported properties as they arrive",
     "usage: keel cloud watch [--device ID] [--count N --timeout S] CONNECTION\n\n"
     "One line per message: DEVICE KIND id=N PAYLOAD. QoS 1 redeliveries (an id already\n"
     "shown) are dropped and counted. With --count, exits 0 after N messages or 4 when\n"
     "--timeout (default 10 s) passes first; otherwise runs until Ctrl-C.\n\n" CONN_USAGE
     "\nExample:\n  keel cloud watch --ca ca.pem --cert operator.pem --key operator.key\n",
     cloud_watch},
    {"set", "merge a JSON patch into a device's desired properties",
     "usage: keel cloud set --device ID JSON CONNECTION\n\n"
     "Reads the device's retained desired document, merges the patch (null removes a key),\n"
     "bumps $version and publishes it retained, so the device gets it now or when it next\n"
     "connects.\n\n" CONN_USAGE
     "\nExample:\n  keel cloud set --device dev1 '{\"interval\":5}' --ca ca.pem ...\n",
     cloud_set},
    {"call", "call a direct method on a device and print its answer",
     "usage: keel cloud call --device ID METHOD [JSON] [--timeout S] CONNECTION\n\n"
     "Prints STATUS PAYLOAD. Exit 6 if the device answered with a status >= 400, 4 if it did\n"
     "not answer within --timeout (default 10 s).\n\n" CONN_USAGE,
     cloud_call},
    {"deploy", "announce a signed release to devices (desired property update.manifest_url)",
     "usage: keel cloud deploy --manifest URL (--device ID[,ID...] | --group FILE)\n"
     "                         [--sha256 HEX] CONNECTION\n\n"
     "Sets {\"update\":{\"manifest_url\":URL}} in each device's desired properties; the\n"
     "device's update agent fetches and verifies the release. A group file lists one device\n"
     "id per line (# starts a comment). Exit 1 if any device could not be set.\n\n" CONN_USAGE,
     cloud_deploy},
    {NULL, NULL, NULL, NULL},
};

const struct keel_cli_noun keel_noun_cloud = {"cloud", "cloud link: watch, set, call, deploy",
                                              cloud_verbs};

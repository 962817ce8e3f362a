/* keel-gateway: the MODBUS sensor gateway, the second reference high-level app (seed 002).
 * Every period it reads each point of its poll map from the sensors on the field bus with
 * Keel's MODBUS master, scales the raw registers, and sends one JSON telemetry message with
 * every reading that succeeded (failures are counted per point and reported as "errors").
 * It answers the cloud method updateSensorFirmware {"unit": 2, "image": "/path/fw.kimg"}: the
 * image is verified against the keys given with --sensor-key and pushed with the update
 * module's sensor profile (sensor_update.c); without --sensor-key the answer is 501. The push
 * runs inside the method call (seconds for a small image on a fast bus; polling pauses).
 *
 * The bus (gateway_bus.h) is the gateway's own MODBUS client (TCP, RTU over TCP, a serial
 * line), or the RT core's RS485 line driver through the bridge channel ("rt_bridge" in the
 * config): then this process builds and checks every frame, and the RT core moves them.
 *
 * Under keeld ($KEEL_APP_FD set): the bridge channel comes from keel_app_channel_open,
 * telemetry goes through keeld, and cloud method calls are taken from keeld. Standalone: the
 * cloud link runs in this process (--cloud) and the bridge channel comes from keel-sim's
 * --bridge-socket (--rt-socket). --once and --update-sensor do one job and exit. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "fetch.h"
#include "gateway_bus.h"
#include "gateway_map.h"
#include "sensor_update.h"
#include "keel/app.h"
#include "keel/app_curl.h"
#include "keel/cloud.h"
#include "keel/config.h"
#include "keel/modbus.h"

static const char usage[] =
    "usage: keel-gateway --config FILE [--cloud FILE] [--status FILE]\n"
    "\n"
    "The MODBUS sensor gateway: polls the sensors in the config's poll map and sends their\n"
    "readings as telemetry.\n"
    "\n"
    "  --config FILE   the poll map (bus, period_ms, points; see docs/config.md)\n"
    "  --cloud FILE    device config with a \"cloud\" section (default: the --config file;\n"
    "                  not used under keeld, whose cloud link carries the telemetry)\n"
    "  --status FILE   keep a JSON snapshot of the last readings here\n"
    "  --sensor-key F  trust this public key for sensor firmware (updateSensorFirmware)\n"
    "  --rt-socket P   bus \"rt_bridge\" outside keeld: the bridge channel from keel-sim's\n"
    "                  --bridge-socket P (under keeld: keel_app_channel_open)\n"
    "  --once          poll once, print the telemetry, exit (0 if every point answered)\n"
    "  --update-sensor UNIT:IMAGE  push a signed image (a path, or an http(s) URL) to a\n"
    "                  sensor (needs --sensor-key), print the result, exit (0 running it,\n"
    "                  4 refused, 1 failed)\n"
    "  --ca FILE       CA certificate for https image URLs (default: the system's; under\n"
    "                  keeld ship one in the package, e.g. /app/ca.pem)\n"
    "  -h, --help      this text\n"
    "\n"
    "Exit: 0 stopped, 1 a poll or push failed, 2 usage, 3 i/o, 4 image refused,\n"
    "5 the config is invalid.\n";

static volatile sig_atomic_t stop;
static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct gateway {
    gateway_map map;
    gateway_bus *bus;
    keel_cloud *cloud;
    keel_app *app;         /* under keeld */
    const char *rt_socket; /* the bridge channel from keel-sim, outside keeld */
    char cloud_state[160];
    uint32_t errors[GATEWAY_MAX_POINTS];
    double values[GATEWAY_MAX_POINTS];
    bool have[GATEWAY_MAX_POINTS];
    uint64_t polls, sent;
    keel_image_pubkey sensor_key;
    bool have_key;
    char last_update[600]; /* "status body", body up to 512 */
    gateway_push_job job;  /* updateSensorFirmware, running beside the poll loop */
    gateway_bus *job_bus;  /* the bus the job uses: not closed under it */
    uint32_t job_reported; /* progress last reported */
    char pending_rid[128]; /* the call to answer when the job ends (cloud link) */
    uint32_t pending_id;   /* ... (keeld) */
    const char *ca_file;   /* --ca: for https image URLs with a private CA */
} gateway;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void cb_state(void *user, bool connected, const char *why)
{
    gateway *g = user;
    snprintf(g->cloud_state, sizeof g->cloud_state, "%s", connected ? "connected" : why);
    say("cloud %s", g->cloud_state);
}

static keel_modbus_err open_bus(gateway *g);

#define DEFERRED 0 /* method(): the answer comes when the push job ends */

/* Starts updateSensorFirmware's job: {"unit": N, "image": "/path"} or {"unit": N, "url":
 * "https://..."}. DEFERRED when it runs, or a status and body at once. */
static int start_update(gateway *g, const cJSON *req, char *body, size_t cap)
{
    const cJSON *unit = cJSON_GetObjectItemCaseSensitive(req, "unit");
    const cJSON *image = cJSON_GetObjectItemCaseSensitive(req, "image");
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(req, "url");
    if (!g->have_key) {
        snprintf(body, cap, "{\"error\":\"no trusted sensor key (keel-gateway --sensor-key)\"}");
        return 501;
    }
    if (!cJSON_IsNumber(unit) || unit->valuedouble < 1 || unit->valuedouble > 247 ||
        (cJSON_IsString(image) == cJSON_IsString(url))) {
        snprintf(body, cap,
                 "{\"error\":\"expected unit (1..247) and one of image (a path on the "
                 "gateway) or url (http or https)\"}");
        return 400;
    }
    if (g->job.running) {
        snprintf(body, cap, "{\"error\":\"an update of unit %u is in progress\"}", g->job.unit);
        return 409;
    }
    if (!g->bus && open_bus(g) != KEEL_MODBUS_OK) {
        snprintf(body, cap, "{\"error\":\"the bus is not open\"}");
        return 503;
    }
    uint8_t u = (uint8_t)unit->valuedouble;
    uint8_t *img = NULL;
    size_t len = 0;
    int tunnel = -1;
    if (cJSON_IsString(image)) {
        img = gateway_image_read(image->valuestring, &len, body, cap);
        if (!img) {
            return 400;
        }
    } else if (g->app) {
        /* no network under keeld: keeld tunnels to the URL's host if the manifest allows it */
        char target[300];
        if (keel_app_curl_target(url->valuestring, target, sizeof target) != KEEL_APP_OK) {
            snprintf(body, cap, "{\"error\":\"url: not an http(s) URL\"}");
            return 400;
        }
        keel_app_status st = keel_app_cloud_open(g->app, "http", target, &tunnel);
        if (st != KEEL_APP_OK) {
            snprintf(body, cap, "{\"error\":\"keeld refused a tunnel to %s: %s\"}", target,
                     keel_app_status_name(st));
            return st == KEEL_APP_ERR_DENIED ? 403 : 502;
        }
    }
    say("updateSensorFirmware: unit %u <- %s", u,
        cJSON_IsString(image) ? image->valuestring : url->valuestring);
    g->job.ca_file = g->ca_file;
    if (gateway_push_start(&g->job, g->bus, u, img, len, img ? NULL : url->valuestring, tunnel,
                           &g->sensor_key) != 0) {
        snprintf(body, cap, "{\"error\":\"cannot start the update\"}");
        return 500;
    }
    g->job_bus = g->bus;
    return DEFERRED;
}

/* A cloud method call (from the in-process cloud link or from keeld): status and body, or
 * DEFERRED (the caller keeps the call's id and the job's end answers it). */
static int method(gateway *g, const char *name, const char *payload, size_t len, char *body,
                  size_t cap)
{
    int status = 404;
    snprintf(body, cap, "{\"error\":\"no such method\"}");
    if (strcmp(name, "updateSensorFirmware") == 0) {
        cJSON *req = cJSON_ParseWithLength(payload, len);
        status = start_update(g, req, body, cap);
        cJSON_Delete(req);
        if (status == DEFERRED) {
            say("method %s: running, polling goes on", name);
            return status;
        }
        snprintf(g->last_update, sizeof g->last_update, "%d %s", status, body);
    }
    say("method %s -> %d %s", name, status, body);
    return status;
}

/* Reports the update's progress (a reported property, sensorUpdate) and, when it ended,
 * answers the call that started it. */
static void report_update(gateway *g, const char *state)
{
    char json[300];
    snprintf(json, sizeof json,
             "{\"sensorUpdate\":{\"unit\":%u,\"state\":\"%s\",\"sent\":%u,\"total\":%u,"
             "\"status\":%d}}",
             g->job.unit, state, atomic_load(&g->job.sent), atomic_load(&g->job.total),
             g->job.running ? 0 : g->job.status);
    if (g->cloud) {
        (void)!keel_cloud_report(g->cloud, json, NULL);
    } else if (g->app) {
        (void)!keel_app_properties_report(g->app, json, strlen(json));
    }
}

static void service_job(gateway *g)
{
    if (!g->job.running) {
        return;
    }
    if (!gateway_push_reap(&g->job)) {
        uint32_t sent = atomic_load(&g->job.sent);
        if (sent != g->job_reported) {
            g->job_reported = sent;
            report_update(g, atomic_load(&g->job.fetched) ? "pushing" : "fetching");
        }
        return;
    }
    g->job_reported = UINT32_MAX;
    report_update(g, g->job.status == 200 ? "done" : "failed");
    snprintf(g->last_update, sizeof g->last_update, "%d %s", g->job.status, g->job.body);
    say("method updateSensorFirmware -> %d %s", g->job.status, g->job.body);
    if (g->cloud && g->pending_rid[0] &&
        keel_cloud_method_answer(g->cloud, g->pending_rid, g->job.status, g->job.body) !=
            KEEL_CLOUD_OK) {
        say("method updateSensorFirmware: answer not accepted");
    }
    if (g->app && g->pending_id &&
        keel_app_method_answer(g->app, g->pending_id, g->job.status, g->job.body,
                               strlen(g->job.body)) != KEEL_APP_OK) {
        say("method updateSensorFirmware: answer not accepted");
    }
    g->pending_rid[0] = '\0';
    g->pending_id = 0;
}

static void cb_method(void *user, const char *name, const char *rid, const char *payload,
                      size_t len)
{
    gateway *g = user;
    char body[512];
    int status = method(g, name, payload, len, body, sizeof body);
    if (status == DEFERRED) {
        snprintf(g->pending_rid, sizeof g->pending_rid, "%s", rid);
        return;
    }
    if (g->cloud && keel_cloud_method_answer(g->cloud, rid, status, body) != KEEL_CLOUD_OK) {
        say("method %s: answer not accepted", name);
    }
}

/* Under keeld: answers the method calls keeld holds for us. */
static void keeld_methods(gateway *g)
{
    for (;;) {
        uint32_t id;
        char name[64], body[512];
        static char payload[KEEL_APP_MAX_PAYLOAD + 1];
        size_t len = 0;
        keel_app_status st =
            keel_app_method_take(g->app, &id, name, sizeof name, payload, sizeof payload - 1, &len);
        if (st == KEEL_APP_ERR_NOT_FOUND) {
            return;
        }
        int status = 413;
        snprintf(body, sizeof body, "{\"error\":\"request too large\"}");
        if (st == KEEL_APP_OK) {
            payload[len] = '\0';
            status = method(g, name, payload, len, body, sizeof body);
            if (status == DEFERRED) {
                g->pending_id = id;
                continue;
            }
        } else if (st != KEEL_APP_ERR_NO_SPACE) {
            say("keeld: method_take: %s", keel_app_status_name(st));
            return;
        }
        if (keel_app_method_answer(g->app, id, status, body, strlen(body)) != KEEL_APP_OK) {
            say("method %s: answer not accepted", name);
        }
    }
}

/* The bridge channel's end: from keeld, or from keel-sim's socket. */
static keel_icc_err bridge_end(gateway *g, keel_icc_end *end)
{
    int fd = -1;
    if (g->rt_socket) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        if (strlen(g->rt_socket) >= sizeof a.sun_path) {
            return KEEL_ICC_ERR_ARG;
        }
        strcpy(a.sun_path, g->rt_socket);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
            if (fd >= 0) {
                close(fd);
            }
            return KEEL_ICC_ERR_IO;
        }
    } else if (g->app) {
        /* BUSY: the RT loader is not running (yet, or restarting): the next poll asks again */
        keel_app_status st = keel_app_channel_open(g->app, g->map.target, &fd);
        if (st != KEEL_APP_OK) {
            return st == KEEL_APP_ERR_DENIED ? KEEL_ICC_ERR_DENIED : KEEL_ICC_ERR_IO;
        }
    } else {
        return KEEL_ICC_ERR_ARG;
    }
    keel_icc_err rc = keel_icc_end_recv(fd, end);
    close(fd);
    return rc;
}

static keel_modbus_err open_bus(gateway *g)
{
    const gateway_map *m = &g->map;
    keel_modbus_line line = {.baud = m->baud,
                             .data_bits = 8,
                             .parity = m->parity == 'N'   ? KEEL_MODBUS_PARITY_NONE
                                       : m->parity == 'O' ? KEEL_MODBUS_PARITY_ODD
                                                          : KEEL_MODBUS_PARITY_EVEN,
                             .stop_bits = m->stop_bits};
    keel_modbus_client *c = NULL;
    keel_modbus_err e;
    if (m->bus == GATEWAY_BUS_RT_BRIDGE) {
        keel_icc_end end;
        keel_icc *chan = NULL;
        keel_icc_err ie = bridge_end(g, &end);
        if (ie == KEEL_ICC_OK && (ie = keel_icc_open(&end, NULL, &chan)) != KEEL_ICC_OK) {
            keel_icc_end_close(&end);
        }
        if (ie != KEEL_ICC_OK) {
            static keel_icc_err said = KEEL_ICC_OK; /* one line per outage */
            if (ie != said) {
                say("bus: the RT bridge channel: %s", keel_icc_err_name(ie));
            }
            said = ie;
            return KEEL_MODBUS_ERR_IO;
        }
        /* Replies a previous instance asked for and never read are stale: drop them. */
        keel_icc_msg msg;
        static uint8_t junk[KEEL_ICC_MIN_MSG];
        while (keel_icc_recv(chan, &msg, junk, sizeof junk, 0) == KEEL_ICC_OK) {
        }
        g->bus = gateway_bus_bridge(chan, &line);
        if (!g->bus) {
            return KEEL_MODBUS_ERR_NO_SPACE;
        }
        gateway_bus_set_timeout(g->bus, 1000000);
        say("bus: RT core's RS485 line driver through the bridge channel");
        return KEEL_MODBUS_OK;
    }
    if (m->bus == GATEWAY_BUS_RTU) {
        keel_modbus_serial_opts o = {.line = line, .rs485 = m->rs485};
        e = keel_modbus_client_serial(m->target, &o, &c);
    } else {
        char host[128];
        snprintf(host, sizeof host, "%s", m->target);
        char *colon = strrchr(host, ':');
        const char *port = "502";
        if (colon) {
            *colon = '\0';
            port = colon + 1;
        }
        e = keel_modbus_client_tcp(host, port, m->bus == GATEWAY_BUS_RTU_OVER_TCP, &c);
    }
    if (e != KEEL_MODBUS_OK) {
        return e;
    }
    g->bus = gateway_bus_client(c);
    if (!g->bus) {
        return KEEL_MODBUS_ERR_NO_SPACE;
    }
    gateway_bus_set_timeout(g->bus, 1000000);
    return KEEL_MODBUS_OK;
}

/* Polls every point; returns how many failed. Writes the telemetry document into json. */
static size_t poll_all(gateway *g, char *json, size_t cap)
{
    if (!g->bus && open_bus(g) != KEEL_MODBUS_OK) {
        snprintf(json, cap, "{}");
        return g->map.n_points;
    }
    cJSON *doc = cJSON_CreateObject();
    size_t failed = 0;
    uint32_t errors = 0;
    for (size_t i = 0; i < g->map.n_points; i++) {
        const gateway_point *p = &g->map.points[i];
        uint16_t raw;
        keel_modbus_err e =
            gateway_bus_read_registers(g->bus, p->unit, p->function, p->address, 1, &raw);
        if (e == KEEL_MODBUS_OK) {
            g->values[i] = gateway_point_value(p, raw);
            g->have[i] = true;
            cJSON_AddNumberToObject(doc, p->name, g->values[i]);
        } else {
            if (g->errors[i]++ == 0) {
                say("%s (unit %u, FC %u, address %u): %s", p->name, p->unit, p->function,
                    p->address, keel_modbus_err_name(e));
            }
            failed++;
            if ((e == KEEL_MODBUS_ERR_CLOSED || e == KEEL_MODBUS_ERR_IO) &&
                !(g->job.running && g->job_bus == g->bus)) { /* never under a running push */
                gateway_bus_close(g->bus);                   /* reopen at the next poll */
                g->bus = NULL;
                failed += g->map.n_points - i - 1;
                break;
            }
        }
        errors += g->errors[i];
    }
    cJSON_AddNumberToObject(doc, "errors", errors);
    char *text = cJSON_PrintUnformatted(doc);
    snprintf(json, cap, "%s", text ? text : "{}");
    cJSON_free(text);
    cJSON_Delete(doc);
    g->polls++;
    return failed;
}

static void write_status(gateway *g, const char *path, const char *last)
{
    if (!path) {
        return;
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        return;
    }
    cJSON *upd = cJSON_CreateString(g->last_update);
    char *u = cJSON_PrintUnformatted(upd);
    fprintf(f,
            "{\"bus\":\"%s\",\"polls\":%llu,\"sent\":%llu,\"cloud\":\"%s\",\"last\":%s,"
            "\"lastSensorUpdate\":%s,\"sensorUpdate\":{\"running\":%s,\"unit\":%u,"
            "\"sent\":%u,\"total\":%u}}\n",
            g->bus ? "open" : "closed", (unsigned long long)g->polls, (unsigned long long)g->sent,
            g->cloud_state, last, u ? u : "\"\"", g->job.running ? "true" : "false",
            g->job.unit, atomic_load(&g->job.sent), atomic_load(&g->job.total));
    cJSON_free(u);
    cJSON_Delete(upd);
    if (fclose(f) == 0) {
        (void)rename(tmp, path);
    }
}

static int load_map(gateway *g, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "keel-gateway: %s: %s\n", path, strerror(errno));
        return 3;
    }
    static char text[256 * 1024];
    size_t n = fread(text, 1, sizeof text, f);
    fclose(f);
    char msg[256];
    gateway_map_err e = gateway_map_parse(text, n, &g->map, msg, sizeof msg);
    if (e != GATEWAY_MAP_OK) {
        fprintf(stderr, "keel-gateway: %s: %s\n", path, msg);
        return 5;
    }
    return 0;
}

static int open_cloud(gateway *g, const char *path)
{
    cJSON *root = NULL;
    keel_config_error cerr;
    if (keel_config_load(path, &root, &cerr) != KEEL_CONFIG_OK) {
        fprintf(stderr, "keel-gateway: %s\n", cerr.msg);
        return 3;
    }
    const cJSON *section = cJSON_GetObjectItemCaseSensitive(root, "cloud");
    keel_cloud_config cfg;
    char err[512];
    if (!section || keel_cloud_config_from_json(section, &cfg, err, sizeof err) != KEEL_CLOUD_OK) {
        fprintf(stderr, "keel-gateway: %s: %s\n", path, section ? err : "no \"cloud\" section");
        cJSON_Delete(root);
        return 5;
    }
    keel_cloud_callbacks cb = {.on_state = cb_state, .on_method = cb_method};
    keel_cloud_err e = keel_cloud_open(&cfg, &cb, g, &g->cloud, err, sizeof err);
    cJSON_Delete(root);
    if (e != KEEL_CLOUD_OK) {
        fprintf(stderr, "keel-gateway: cloud: %s\n", err);
        return 1;
    }
    return 0;
}

/* --update-sensor UNIT:IMAGE: one push, its answer printed. */
static int update_once(gateway *g, const char *spec)
{
    char *end;
    errno = 0;
    long unit = strtol(spec, &end, 10);
    if (errno || end == spec || *end != ':' || !end[1] || unit < 1 || unit > 247) {
        fprintf(stderr, "keel-gateway: --update-sensor: \"%s\" is not UNIT:IMAGE\n", spec);
        return 2;
    }
    cJSON *req = cJSON_CreateObject();
    cJSON_AddNumberToObject(req, "unit", (double)unit);
    bool is_url = strncmp(end + 1, "http://", 7) == 0 || strncmp(end + 1, "https://", 8) == 0;
    cJSON_AddStringToObject(req, is_url ? "url" : "image", end + 1);
    char *text = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    if (!text) {
        return 1;
    }
    char body[512];
    int status = method(g, "updateSensorFirmware", text, strlen(text), body, sizeof body);
    cJSON_free(text);
    if (status == DEFERRED) {
        /* the job runs in its thread; wait for it, reporting progress on stderr */
        uint32_t said = UINT32_MAX;
        while (!gateway_push_reap(&g->job)) {
            uint32_t sent = atomic_load(&g->job.sent);
            if (sent / 8192 != said / 8192 || said == UINT32_MAX) {
                fprintf(stderr, "keel-gateway: %u of %u bytes\n", sent, atomic_load(&g->job.total));
                said = sent;
            }
            (void)poll(NULL, 0, 20);
        }
        status = g->job.status;
        snprintf(body, sizeof body, "%s", g->job.body);
    }
    printf("%d %s\n", status, body);
    return status == 200 ? 0 : status == 422 ? 4 : status == 501 || status == 400 ? 2 : 1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"cloud", required_argument, NULL, 'C'},
                                         {"status", required_argument, NULL, 's'},
                                         {"once", no_argument, NULL, '1'},
                                         {"sensor-key", required_argument, NULL, 'k'},
                                         {"rt-socket", required_argument, NULL, 'r'},
                                         {"update-sensor", required_argument, NULL, 'u'},
                                         {"ca", required_argument, NULL, 'A'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL, *cloud_cfg = NULL, *status = NULL, *sensor_key = NULL;
    const char *rt_socket = NULL, *update = NULL;
    bool once = false;
    static gateway g;
    g.job_reported = UINT32_MAX;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            config = optarg;
            break;
        case 'C':
            cloud_cfg = optarg;
            break;
        case 's':
            status = optarg;
            break;
        case '1':
            once = true;
            break;
        case 'k':
            sensor_key = optarg;
            break;
        case 'r':
            rt_socket = optarg;
            break;
        case 'u':
            update = optarg;
            break;
        case 'A':
            g.ca_file = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind != argc || !config || (once && update)) {
        fputs(usage, stderr);
        return 2;
    }
    g.rt_socket = rt_socket;
    bool one_job = once || update;
    snprintf(g.cloud_state, sizeof g.cloud_state, one_job ? "not used" : "connecting");
    int rc = load_map(&g, config);
    if (rc) {
        return rc;
    }
    if (sensor_key) {
        keel_image_error ie;
        if (keel_image_pubkey_load(sensor_key, &g.sensor_key, &ie) != KEEL_IMAGE_OK) {
            fprintf(stderr, "keel-gateway: --sensor-key: %s\n", ie.msg);
            return 5;
        }
        g.have_key = true;
    }
    bool under_keeld = getenv("KEEL_APP_FD") != NULL;
    if (g.map.bus == GATEWAY_BUS_RT_BRIDGE && !rt_socket && !under_keeld) {
        fprintf(stderr, "keel-gateway: bus \"rt_bridge\" outside keeld needs --rt-socket\n");
        return 2;
    }
    if (under_keeld) {
        keel_app_status st = keel_app_open(&g.app);
        if (st != KEEL_APP_OK) {
            fprintf(stderr, "keel-gateway: keeld: %s\n", keel_app_status_name(st));
            return 3;
        }
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    char json[8192];
    if (one_job) {
        if (update) {
            rc = update_once(&g, update);
        } else {
            rc = poll_all(&g, json, sizeof json) ? 1 : 0;
            puts(json);
        }
        gateway_bus_close(g.bus);
        keel_app_close(g.app);
        return rc;
    }
    if (!g.app || cloud_cfg) {
        rc = open_cloud(&g, cloud_cfg ? cloud_cfg : config);
        if (rc) {
            return rc;
        }
    } else {
        snprintf(g.cloud_state, sizeof g.cloud_state, "through keeld");
    }
    say("gateway: up, %zu points every %u ms on %s%s", g.map.n_points, g.map.period_ms,
        g.map.bus == GATEWAY_BUS_RT_BRIDGE ? "the RT core's RS485 bridge to " : "", g.map.target);
    int64_t next = now_ms();
    while (!stop) {
        int64_t now = now_ms();
        if (now >= next) {
            size_t failed = poll_all(&g, json, sizeof json);
            bool sent = false;
            if (failed < g.map.n_points) {
                sent = g.cloud ? keel_cloud_send_telemetry(g.cloud, json, strlen(json), NULL,
                                                           NULL) == KEEL_CLOUD_OK
                               : keel_app_telemetry_send(g.app, json, strlen(json)) == KEEL_APP_OK;
            }
            g.sent += sent;
            write_status(&g, status, json);
            next += g.map.period_ms;
            if (next < now) {
                next = now + g.map.period_ms;
            }
            continue;
        }
        service_job(&g);
        int wait = (int)(next - now);
        if (g.job.running && wait > 100) {
            wait = 100; /* progress and the answer without waiting a whole period */
        }
        if (g.cloud) {
            (void)keel_cloud_step(g.cloud, wait);
        } else {
            /* method calls wait in keeld until taken: look every 100 ms */
            (void)poll(NULL, 0, wait < 100 ? wait : 100);
            keeld_methods(&g);
            (void)!keel_app_heartbeat(g.app); /* any call counts: a lost one is retried */
        }
    }
    say("gateway: stopping");
    if (g.job.running) {
        say("gateway: waiting for the sensor update to finish");
        while (!gateway_push_reap(&g.job)) {
            (void)poll(NULL, 0, 50);
        }
    }
    gateway_bus_close(g.bus);
    keel_cloud_close(g.cloud);
    keel_app_close(g.app);
    return 0;
}

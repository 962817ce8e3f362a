/* keel-gateway: the MODBUS sensor gateway, the second reference high-level app (seed 002).
 * Every period it reads each point of its poll map from the sensors on the field bus with
 * Keel's MODBUS master, scales the raw registers, and sends one JSON telemetry message with
 * every reading that succeeded (failures are counted per point and reported as "errors").
 * It answers the cloud method updateSensorFirmware {"unit": 2, "image": "/path/fw.kimg"}: the
 * image is verified against the keys given with --sensor-key and pushed with the update
 * module's sensor profile (sensor_update.c); without --sensor-key the answer is 501. The push
 * runs inside the method call (seconds for a small image on a fast bus; polling pauses).
 *
 * Standalone (the demo today): the cloud link runs in this process (--cloud). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "gateway_map.h"
#include "sensor_update.h"
#include "keel/cloud.h"
#include "keel/config.h"
#include "keel/modbus.h"

static const char usage[] =
    "usage: keel-gateway --config FILE [--cloud FILE] [--status FILE]\n"
    "\n"
    "The MODBUS sensor gateway: polls the sensors in the config's poll map and sends their\n"
    "readings as telemetry.\n"
    "\n"
    "  --config FILE   the poll map (bus, period_ms, points; see docs/quickstart.md)\n"
    "  --cloud FILE    device config with a \"cloud\" section (default: the --config file)\n"
    "  --status FILE   keep a JSON snapshot of the last readings here\n"
    "  --sensor-key F  trust this public key for sensor firmware (updateSensorFirmware)\n"
    "  --once          poll once, print the telemetry, exit (0 if every point answered)\n"
    "  -h, --help      this text\n"
    "\n"
    "Exit: 0 stopped, 1 a poll failed (--once), 2 usage, 3 i/o, 5 the config is invalid.\n";

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
    keel_modbus_client *bus;
    keel_cloud *cloud;
    char cloud_state[160];
    uint32_t errors[GATEWAY_MAX_POINTS];
    double values[GATEWAY_MAX_POINTS];
    bool have[GATEWAY_MAX_POINTS];
    uint64_t polls, sent;
    keel_image_pubkey sensor_key;
    bool have_key;
    char last_update[256];
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

static void cb_method(void *user, const char *name, const char *rid, const char *payload,
                      size_t len)
{
    gateway *g = user;
    int status = 404;
    char body[512] = "{\"error\":\"no such method\"}";
    if (strcmp(name, "updateSensorFirmware") == 0) {
        cJSON *req = cJSON_ParseWithLength(payload, len);
        const cJSON *unit = cJSON_GetObjectItemCaseSensitive(req, "unit");
        const cJSON *image = cJSON_GetObjectItemCaseSensitive(req, "image");
        if (!g->have_key) {
            status = 501;
            snprintf(body, sizeof body,
                     "{\"error\":\"no trusted sensor key (keel-gateway --sensor-key)\"}");
        } else if (!cJSON_IsNumber(unit) || unit->valuedouble < 1 || unit->valuedouble > 247 ||
                   !cJSON_IsString(image)) {
            status = 400;
            snprintf(body, sizeof body,
                     "{\"error\":\"expected unit (1..247) and image (a path on the gateway)\"}");
        } else if (!g->bus) {
            status = 503;
            snprintf(body, sizeof body, "{\"error\":\"the bus is not open\"}");
        } else {
            say("updateSensorFirmware: unit %d <- %s", (int)unit->valuedouble, image->valuestring);
            keel_image_keys keys = {.keys = &g->sensor_key, .count = 1};
            keel_modbus_client_set_timeout(g->bus, 1000000);
            status = gateway_sensor_update(g->bus, (uint8_t)unit->valuedouble, image->valuestring,
                                           &keys, body, sizeof body);
        }
        cJSON_Delete(req);
        snprintf(g->last_update, sizeof g->last_update, "%d %s", status, body);
    }
    say("method %s -> %d %s", name, status, body);
    if (g->cloud && keel_cloud_method_answer(g->cloud, rid, status, body) != KEEL_CLOUD_OK) {
        say("method %s: answer not accepted", name);
    }
}

static keel_modbus_err open_bus(gateway *g)
{
    const gateway_map *m = &g->map;
    if (m->bus == GATEWAY_BUS_RTU) {
        keel_modbus_serial_opts o = {.line = {.baud = m->baud,
                                              .data_bits = 8,
                                              .parity = m->parity == 'N' ? KEEL_MODBUS_PARITY_NONE
                                                        : m->parity == 'O'
                                                            ? KEEL_MODBUS_PARITY_ODD
                                                            : KEEL_MODBUS_PARITY_EVEN,
                                              .stop_bits = m->stop_bits},
                                     .rs485 = m->rs485};
        return keel_modbus_client_serial(m->target, &o, &g->bus);
    }
    char host[128];
    snprintf(host, sizeof host, "%s", m->target);
    char *colon = strrchr(host, ':');
    const char *port = "502";
    if (colon) {
        *colon = '\0';
        port = colon + 1;
    }
    return keel_modbus_client_tcp(host, port, m->bus == GATEWAY_BUS_RTU_OVER_TCP, &g->bus);
}

/* Polls every point; returns how many failed. Writes the telemetry document into json. */
static size_t poll_all(gateway *g, char *json, size_t cap)
{
    if (!g->bus && open_bus(g) != KEEL_MODBUS_OK) {
        snprintf(json, cap, "{}");
        return g->map.n_points;
    }
    keel_modbus_client_set_timeout(g->bus, 500000);
    cJSON *doc = cJSON_CreateObject();
    size_t failed = 0;
    uint32_t errors = 0;
    for (size_t i = 0; i < g->map.n_points; i++) {
        const gateway_point *p = &g->map.points[i];
        uint16_t raw;
        keel_modbus_err e =
            keel_modbus_read_registers(g->bus, p->unit, p->function, p->address, 1, &raw);
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
            if (e == KEEL_MODBUS_ERR_CLOSED || e == KEEL_MODBUS_ERR_IO) {
                keel_modbus_client_close(g->bus); /* reopen at the next poll */
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
            "\"lastSensorUpdate\":%s}\n",
            g->bus ? "open" : "closed", (unsigned long long)g->polls, (unsigned long long)g->sent,
            g->cloud_state, last, u ? u : "\"\"");
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

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"cloud", required_argument, NULL, 'C'},
                                         {"status", required_argument, NULL, 's'},
                                         {"once", no_argument, NULL, '1'},
                                         {"sensor-key", required_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL, *cloud_cfg = NULL, *status = NULL, *sensor_key = NULL;
    bool once = false;
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
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind != argc || !config) {
        fputs(usage, stderr);
        return 2;
    }
    static gateway g;
    snprintf(g.cloud_state, sizeof g.cloud_state, once ? "not used" : "connecting");
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
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    char json[8192];
    if (once) {
        size_t failed = poll_all(&g, json, sizeof json);
        puts(json);
        keel_modbus_client_close(g.bus);
        return failed ? 1 : 0;
    }
    rc = open_cloud(&g, cloud_cfg ? cloud_cfg : config);
    if (rc) {
        return rc;
    }
    say("gateway: up, %zu points every %u ms on %s", g.map.n_points, g.map.period_ms, g.map.target);
    int64_t next = now_ms();
    while (!stop) {
        int64_t now = now_ms();
        if (now >= next) {
            size_t failed = poll_all(&g, json, sizeof json);
            if (failed < g.map.n_points && keel_cloud_send_telemetry(g.cloud, json, strlen(json),
                                                                     NULL, NULL) == KEEL_CLOUD_OK) {
                g.sent++;
            }
            write_status(&g, status, json);
            next += g.map.period_ms;
            if (next < now) {
                next = now + g.map.period_ms;
            }
            continue;
        }
        (void)keel_cloud_step(g.cloud, (int)(next - now));
    }
    say("gateway: stopping");
    keel_modbus_client_close(g.bus);
    keel_cloud_close(g.cloud);
    return 0;
}

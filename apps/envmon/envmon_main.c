/* keel-envmon: the environment monitor, the reference high-level app (seed 000).
 *
 * Every period it asks the RT firmware for the latest sample over their intercore channel
 * (ENV_GET), runs the thermostat, drives the HVAC through the RT core (HVAC_SET) when the mode
 * changes, sends the sample as JSON telemetry and reports hvacMode; it adopts the desired
 * targetTemperature and acknowledges it the IoT Plug and Play way.
 *
 * Two ways to reach the world, chosen at start:
 *  - under keeld ($KEEL_APP_FD set): the channel from keel_app_channel_open(), telemetry and
 *    properties through libkeel (keeld owns the network);
 *  - standalone (the demo today, see docs/quickstart.md "Gaps"): the channel end from keel-sim's
 *    socket (--rt-socket) and the cloud link in this process (--cloud, a device config).
 * Either way the app prints one line per event on stdout and, with --status, keeps a JSON
 * snapshot for the demo's live view.
 *
 * Under keeld the app confirms its health (keel_app_confirm_health) once it is doing its job:
 * the RT core answered and keeld took a telemetry message. A new version deployed with
 * `keel cloud deploy` runs on trial until then, and keeld reverts it if that never happens.
 *
 * ENVMON_BROKEN_BUILD (the keel-envmon-broken target) compiles in a defect, a null pointer
 * written through as soon as the first sample arrives, so the demo has a release that crashes
 * on trial and is reverted (demo/ctl.sh deploy broken). It is never part of a normal build. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "envmon_logic.h"
#include "keel/app.h"
#include "keel/cloud.h"
#include "keel/config.h"
#include "keel/icc.h"

#define RT_PARTNER_ID "9c1b7e22-5f4a-4d83-b0e6-2a7c3d9f8e10"

static const char usage[] =
    "usage: keel-envmon [--rt-socket PATH --cloud CONFIG] [options]\n"
    "\n"
    "The environment monitor: reads the room through the real-time core, keeps it at the\n"
    "desired targetTemperature with the HVAC, and reports to the cloud.\n"
    "\n"
    "  --rt-socket PATH   get the channel to the RT core from keel-sim's socket\n"
    "                     (default under keeld: keel_app_channel_open)\n"
    "  --cloud CONFIG     device config with a \"cloud\" section: run the cloud link here\n"
    "                     (default under keeld: telemetry and properties through keeld)\n"
    "  --period-ms N      how often to sample and decide (default 2000)\n"
    "  --band C           thermostat hysteresis half-width, degrees (default 0.25)\n"
    "  --status FILE      keep a JSON snapshot of the app's state here\n"
    "  -h, --help         this text\n"
    "\n"
    "Exit: 0 on SIGTERM/SIGINT, 1 the RT core or the cloud failed for good, 2 usage,\n"
    "3 i/o (socket, config file), 5 the config is invalid.\n";

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

typedef struct envmon {
    envmon_logic logic;
    keel_app *app;     /* under keeld */
    keel_cloud *cloud; /* standalone */
    keel_icc *chan;
    const char *rt_socket;
    const char *status_path;
    bool cloud_up;
    char cloud_why[160];
    envmon_env last;
    hvac_mode applied;
    bool rt_ok;
    char last_ack[512];
    char pending_ack[512]; /* an ack the uplink did not take yet (link still opening) */
    uint64_t telemetry_sent, acks_sent;
    int64_t desired_version_seen; /* keeld mode: to notice a new desired document */
    const char *cloud_cfg;
    int64_t down_since;    /* when the link went down, 0 while up */
    bool health_confirmed; /* keeld mode: said once, after the first good period */
} envmon;

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

/* ---- the uplink: keeld or the in-process cloud link ---- */

static bool up_telemetry(envmon *m, const char *json, size_t len)
{
    if (m->cloud) {
        return keel_cloud_send_telemetry(m->cloud, json, len, NULL, NULL) == KEEL_CLOUD_OK;
    }
    return m->app && keel_app_telemetry_send(m->app, json, len) == KEEL_APP_OK;
}

static bool up_report(envmon *m, const char *json, size_t len)
{
    if (m->cloud) {
        return keel_cloud_report(m->cloud, json, NULL) == KEEL_CLOUD_OK;
    }
    return m->app && keel_app_properties_report(m->app, json, len) == KEEL_APP_OK;
}

static void handle_desired(envmon *m, const char *json, size_t len, int64_t version)
{
    char ack[512];
    int r = envmon_logic_desired(&m->logic, json, len, version, ack, sizeof ack);
    if (r < 0) {
        say("desired refused: not a JSON object (version %lld)", (long long)version);
        return;
    }
    if (r == 0) {
        return;
    }
    /* During keel_cloud_open the cached document is handed over before the link exists: the
     * ack then waits in pending_ack for the next period. */
    bool ok = (m->cloud || m->app) && up_report(m, ack, strlen(ack));
    m->acks_sent += ok;
    snprintf(m->last_ack, sizeof m->last_ack, "%s", ack);
    snprintf(m->pending_ack, sizeof m->pending_ack, "%s", ok ? "" : ack);
    say("desired v%lld: %s%s", (long long)version, ack, ok ? "" : " (report deferred)");
}

static void cb_state(void *user, bool connected, const char *why)
{
    envmon *m = user;
    m->cloud_up = connected;
    m->down_since = connected ? 0 : now_ms();
    snprintf(m->cloud_why, sizeof m->cloud_why, "%s", connected ? "connected" : why);
    say("cloud %s", connected ? "connected" : why);
}

static void cb_desired(void *user, const char *json, int64_t version)
{
    handle_desired(user, json, strlen(json), version);
}

static void cb_log(void *user, const char *line)
{
    (void)user;
    say("cloud: %s", line);
}

/* keeld mode: there is no desired callback, so the document is read each period and handled
 * when its $version moves. */
static void poll_desired_keeld(envmon *m)
{
    static char buf[KEEL_APP_MAX_PAYLOAD + 1];
    size_t len = 0;
    if (keel_app_properties_desired(m->app, buf, sizeof buf - 1, &len) != KEEL_APP_OK) {
        return;
    }
    buf[len] = '\0';
    cJSON *doc = cJSON_ParseWithLength(buf, len);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "$version");
    int64_t version = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
    cJSON_Delete(doc);
    if (version != m->desired_version_seen) {
        m->desired_version_seen = version;
        handle_desired(m, buf, len, version);
    }
}

/* ---- the channel to the RT core ---- */

static keel_app_status open_failed; /* the last channel_open failure, said once */

static keel_icc_err connect_rt(envmon *m)
{
    keel_icc_end end;
    if (m->app && !m->rt_socket) {
        int fd = -1;
        keel_app_status st = keel_app_channel_open(m->app, RT_PARTNER_ID, &fd);
        if (st != KEEL_APP_OK) {
            /* BUSY: the RT loader is not running (yet, or restarting); said once per outage */
            if (st != open_failed) {
                say("rt: channel_open: %s", keel_app_status_name(st));
            }
            open_failed = st;
            return KEEL_ICC_ERR_IO;
        }
        open_failed = KEEL_APP_OK;
        keel_icc_err rc = keel_icc_end_recv(fd, &end);
        close(fd);
        if (rc != KEEL_ICC_OK) {
            return rc;
        }
    } else {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        if (strlen(m->rt_socket) >= sizeof a.sun_path) {
            return KEEL_ICC_ERR_ARG;
        }
        strcpy(a.sun_path, m->rt_socket);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
            if (fd >= 0) {
                close(fd);
            }
            return KEEL_ICC_ERR_IO;
        }
        keel_icc_err rc = keel_icc_end_recv(fd, &end);
        close(fd);
        if (rc != KEEL_ICC_OK) {
            return rc;
        }
    }
    keel_icc_err rc = keel_icc_open(&end, NULL, &m->chan);
    if (rc != KEEL_ICC_OK) {
        keel_icc_end_close(&end);
        return rc;
    }
    /* Replies a previous instance of this app asked for and never read are stale: drop them. */
    keel_icc_msg msg;
    uint8_t junk[KEEL_ICC_MIN_MSG];
    while (keel_icc_recv(m->chan, &msg, junk, sizeof junk, 0) == KEEL_ICC_OK) {
    }
    return KEEL_ICC_OK;
}

static keel_icc_err rt_request(envmon *m, uint16_t type, const void *req, size_t len, uint16_t want,
                               uint8_t *out, size_t cap, size_t *got)
{
    keel_icc_msg resp;
    keel_icc_err rc = keel_icc_request(m->chan, type, req, len, &resp, out, cap, 1000);
    if (rc == KEEL_ICC_OK && resp.type != want) {
        rc = KEEL_ICC_ERR_CORRUPT;
    }
    *got = resp.len;
    return rc;
}

static void rt_down(envmon *m, const char *what, keel_icc_err rc)
{
    if (m->rt_ok) {
        say("rt: %s: %s", what, keel_icc_err_name(rc));
    }
    m->rt_ok = false;
    if (rc == KEEL_ICC_ERR_PEER_GONE || rc == KEEL_ICC_ERR_CORRUPT) {
        keel_icc_close(m->chan); /* reconnect at the next period */
        m->chan = NULL;
    }
}

/* Under keeld: the RT core answered and keeld took telemetry, so this version works; a
 * version on trial stops being one (outside a trial keeld just notes it). */
static void confirm_health(envmon *m)
{
    if (!m->app || m->health_confirmed) {
        return;
    }
    keel_app_status st = keel_app_confirm_health(m->app);
    if (st == KEEL_APP_OK) {
        m->health_confirmed = true;
        say("health confirmed to keeld");
    } else {
        say("confirm_health: %s", keel_app_status_name(st)); /* tried again next period */
    }
}

#ifdef ENVMON_BROKEN_BUILD
/* The demo's broken release: a lookup that was meant to find the sensor's calibration and
 * writes through a null pointer instead. */
__attribute__((noinline)) static void broken_build_defect(const envmon_env *e)
{
    /* pointer and target volatile: no optimiser may see the null or drop the store */
    volatile int32_t *volatile calibration = NULL;
    *calibration = e->temp_mc; /* cppcheck-suppress nullPointer ; the defect, on purpose */
}
#endif

/* One period: sample, decide, actuate, report. */
static void period(envmon *m)
{
    if (m->pending_ack[0] && up_report(m, m->pending_ack, strlen(m->pending_ack))) {
        m->acks_sent++;
        m->pending_ack[0] = '\0';
    }
    if (!m->chan && connect_rt(m) != KEEL_ICC_OK) {
        m->rt_ok = false;
        return;
    }
    uint8_t buf[256];
    size_t n = 0;
    keel_icc_err rc =
        rt_request(m, ENVMON_MSG_ENV_GET, NULL, 0, ENVMON_MSG_ENV_DATA, buf, sizeof buf, &n);
    envmon_env e;
    envmon_proto_err pe = ENVMON_PROTO_OK;
    if (rc != KEEL_ICC_OK || (pe = envmon_env_decode(buf, n, &e)) != ENVMON_PROTO_OK) {
        if (rc == KEEL_ICC_OK) {
            say("rt: bad ENV_DATA: %s", envmon_proto_err_name(pe));
        }
        rt_down(m, "ENV_GET", rc);
        return;
    }
    if (!m->rt_ok) {
        say("rt: connected (sample %u)", e.seq);
    }
#ifdef ENVMON_BROKEN_BUILD
    broken_build_defect(&e);
#endif
    m->rt_ok = true;
    m->last = e;
    m->applied = (hvac_mode)e.hvac;
    hvac_mode want = envmon_logic_sample(&m->logic, &e);
    if (want != m->applied) {
        uint8_t req[ENVMON_HVAC_SET_BYTES];
        envmon_hvac_set_encode((uint8_t)want, req);
        envmon_hvac_ack ack;
        rc = rt_request(m, ENVMON_MSG_HVAC_SET, req, sizeof req, ENVMON_MSG_HVAC_ACK, buf,
                        sizeof buf, &n);
        if (rc != KEEL_ICC_OK || envmon_hvac_ack_decode(buf, n, &ack) != ENVMON_PROTO_OK) {
            rt_down(m, "HVAC_SET", rc);
            return;
        }
        say("hvac %s -> %s at %.2f C%s", hvac_mode_name(m->applied),
            hvac_mode_name((hvac_mode)ack.hvac), e.temp_mc / 1000.0,
            ack.status ? " (refused)" : "");
        m->applied = (hvac_mode)ack.hvac;
    }
    char json[512];
    int len = envmon_logic_telemetry(&m->logic, &e, m->applied, json, sizeof json);
    if (len > 0 && up_telemetry(m, json, (size_t)len)) {
        m->telemetry_sent++;
        confirm_health(m);
    }
    len = envmon_logic_mode_report(&m->logic, m->applied, json, sizeof json);
    if (len > 0 && !up_report(m, json, (size_t)len)) {
        m->logic.mode_reported = false; /* try again next period */
    }
}

static void write_status(envmon *m)
{
    if (!m->status_path) {
        return;
    }
    keel_cloud_stats st = {0};
    if (m->cloud) {
        keel_cloud_get_stats(m->cloud, &st);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "rt", m->rt_ok ? "connected" : "unreachable");
    cJSON_AddNumberToObject(o, "temperature", m->last.temp_mc / 1000.0);
    cJSON_AddNumberToObject(o, "humidity", m->last.humidity_cp / 100.0);
    cJSON_AddNumberToObject(o, "pressure", m->last.pressure_pa / 100.0);
    cJSON_AddNumberToObject(o, "sample", m->last.seq);
    if (m->logic.ctl.has_setpoint) {
        cJSON_AddNumberToObject(o, "targetTemperature", m->logic.ctl.setpoint_c);
    } else {
        cJSON_AddNullToObject(o, "targetTemperature");
    }
    cJSON_AddStringToObject(o, "hvacMode", hvac_mode_name(m->applied));
    cJSON_AddStringToObject(o, "cloud", m->app && !m->cloud ? "via keeld" : m->cloud_why);
    cJSON_AddNumberToObject(o, "telemetrySent", (double)m->telemetry_sent);
    cJSON_AddNumberToObject(o, "queued", (double)st.queued);
    cJSON_AddNumberToObject(o, "acked", (double)st.acked);
    cJSON_AddStringToObject(o, "lastAck", m->last_ack);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", m->status_path);
    FILE *f = fopen(tmp, "w");
    if (f && text) {
        fprintf(f, "%s\n", text);
    }
    if (f && fclose(f) == 0) {
        (void)rename(tmp, m->status_path);
    }
    cJSON_free(text);
}

static int open_cloud(envmon *m, const char *path)
{
    cJSON *root = NULL;
    keel_config_error cerr;
    if (keel_config_load(path, &root, &cerr) != KEEL_CONFIG_OK) {
        fprintf(stderr, "keel-envmon: %s\n", cerr.msg);
        return 3;
    }
    const cJSON *section = cJSON_GetObjectItemCaseSensitive(root, "cloud");
    keel_cloud_config cfg;
    char err[512];
    if (keel_cloud_config_from_json(section ? section : root, &cfg, err, sizeof err) !=
        KEEL_CLOUD_OK) {
        fprintf(stderr, "keel-envmon: %s: %s\n", path, err);
        cJSON_Delete(root);
        return 5;
    }
    keel_cloud_callbacks cb = {.on_state = cb_state, .on_desired = cb_desired, .on_log = cb_log};
    keel_cloud_err e = keel_cloud_open(&cfg, &cb, m, &m->cloud, err, sizeof err);
    cJSON_Delete(root); /* the link copied what it keeps */
    if (e != KEEL_CLOUD_OK) {
        fprintf(stderr, "keel-envmon: cloud: %s\n", err);
        return e == KEEL_CLOUD_ERR_DISK_FULL ? 3 : 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"rt-socket", required_argument, NULL, 'r'},
                                         {"cloud", required_argument, NULL, 'c'},
                                         {"period-ms", required_argument, NULL, 'p'},
                                         {"band", required_argument, NULL, 'b'},
                                         {"status", required_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    static envmon m;
    const char *cloud_cfg = NULL;
    long period_ms = 2000;
    double band = 0.25;
    char *end;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'r':
            m.rt_socket = optarg;
            break;
        case 'c':
            cloud_cfg = optarg;
            break;
        case 's':
            m.status_path = optarg;
            break;
        case 'p':
            period_ms = strtol(optarg, &end, 10);
            if (*end || period_ms < 10 || period_ms > 3600000) {
                fprintf(stderr, "keel-envmon: --period-ms: 10 to 3600000\n");
                return 2;
            }
            break;
        case 'b':
            band = strtod(optarg, &end);
            if (*end || !(band > 0.0 && band <= 5.0)) {
                fprintf(stderr, "keel-envmon: --band: a number of degrees, 0 to 5\n");
                return 2;
            }
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    bool under_keeld = getenv("KEEL_APP_FD") != NULL;
    if (optind != argc || (!under_keeld && (!m.rt_socket || !cloud_cfg))) {
        fputs(usage, stderr);
        return 2;
    }
    envmon_logic_init(&m.logic, band);
    snprintf(m.cloud_why, sizeof m.cloud_why, "connecting");
    m.desired_version_seen = -1;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    if (under_keeld) {
        keel_app_status st = keel_app_open(&m.app);
        if (st != KEEL_APP_OK) {
            fprintf(stderr, "keel-envmon: keeld: %s\n", keel_app_status_name(st));
            return 3;
        }
    }
    m.cloud_cfg = cloud_cfg;
    if (cloud_cfg) {
        int rc = open_cloud(&m, cloud_cfg);
        if (rc) {
            return rc;
        }
    }
    say("envmon: up (%s, %s)", m.rt_socket ? "channel from keel-sim" : "channel from keeld",
        m.cloud ? "cloud link in process" : "cloud through keeld");
    int64_t next = now_ms();
    while (!stop) {
        int64_t now = now_ms();
        if (now >= next) {
            if (m.app && !m.cloud) {
                poll_desired_keeld(&m);
            }
            period(&m);
            write_status(&m);
            /* Workaround: after a broker outage the link could stay down with the broker back
             * (seen with "localhost" resolving to ::1 while the broker listens on IPv4 only;
             * reported to the cloud module). The outbox is on disk, so closing and reopening
             * the link loses nothing. */
            if (m.cloud_cfg && m.down_since && now_ms() - m.down_since > 10000) {
                say("cloud: down for 10 s, reopening the link");
                if (m.cloud) {
                    keel_cloud_close(m.cloud);
                    m.cloud = NULL;
                }
                m.down_since = now_ms();
                if (open_cloud(&m, m.cloud_cfg) != 0) {
                    say("cloud: reopen failed; retrying in 10 s");
                }
            }
            next += period_ms;
            if (next < now) {
                next = now + period_ms; /* fell behind: skip, do not burst */
            }
            continue;
        }
        int wait = (int)(next - now);
        if (m.cloud) {
            (void)keel_cloud_step(m.cloud, wait);
        } else {
            if (m.app) {
                keel_app_status hb = keel_app_heartbeat(m.app);
                (void)hb; /* a lost keeld shows up at the next real call */
            }
            (void)poll(NULL, 0, wait);
        }
    }
    say("envmon: stopping");
    write_status(&m);
    if (m.chan) {
        keel_icc_close(m.chan);
    }
    if (m.cloud) {
        keel_cloud_close(m.cloud);
    }
    if (m.app) {
        keel_app_close(m.app);
    }
    return 0;
}

/* keel-gateway on the RT core's RS485 line driver (seed 002's architecture), end to end with
 * real processes: keel-sim runs the RT firmware (environment service + RS485 bridge) beside
 * the bit-exact bus with the room sensor (unit 1) and the supply-air sensor (unit 2, behind
 * its verifying bootloader); keel-gateway builds and checks every MODBUS frame and sends them
 * as ADUs over the bridge channel. The gateway's readings must match the world's room, a
 * 60 KB signed firmware push through the line driver must leave the sensor running it, and a
 * forged image must be refused before a record is sent; an image behind a URL (a real nginx)
 * is fetched and pushed the same way.
 *
 * Then keel-sim under keeld's hand-over ($KEEL_RT_CHANNEL_FD, both apps' ends on one
 * SEQPACKET socket, as src/supervisor/broker.c sends them): each end must reach the service
 * its partner speaks to, whatever the order. keel-sim runs outside keeld's sandbox here (this
 * tree's binaries carry sanitizer runtimes, which the sandbox does not allow).
 * argv: keel-sim, keel-gateway, keel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "envmon_proto.h"
#include "fixture.h"
#include "gateway_bus.h"
#include "keel/icc.h"
#include "keel/manifest.h"
#include "nginx_site.h"

#define SENSOR_COMP "5d2c8e41-0b7a-4f3e-9c16-7a8b9c0d1e2f"
#define RT_ID "9c1b7e22-5f4a-4d83-b0e6-2a7c3d9f8e10"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *sim_exe, *gw_exe, *keel_exe;
static const char *dir;
static char path_buf[8][700];

static const char *at(int slot, const char *name)
{
    snprintf(path_buf[slot], sizeof path_buf[slot], "%s/%s", dir, name);
    return path_buf[slot];
}

/* Runs a command to completion; returns its exit code (-1 if it did not exit). */
static int run(const char *name, char *const argv[], const char *log)
{
    kf_proc p;
    if (kf_spawn(&p, name, argv, log) != 0) {
        return -1;
    }
    int st = kf_wait_exit(&p, 60000);
    if (st == -1) {
        kf_stop(&p, 100);
        return -1;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        kf_dump_log(&p, 20);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void sign(const char *version, const char *key, const char *out)
{
    char bin[760];
    snprintf(bin, sizeof bin, "%s.bin", out);
    FILE *f = fopen(bin, "wb");
    assert_non_null(f);
    fprintf(f, "KEEL-SENSOR-FW supply-air %s\n", version);
    /* 60 KB of firmware: what a small sensor MCU's image weighs */
    for (int i = 0; i < 60000; i++) {
        fputc((i * 7919) & 0xff, f);
    }
    fclose(f);
    char *argv[] = {(char *)keel_exe, "image",       "sign",      "--key",
                    (char *)key,      "--component", SENSOR_COMP, "--version",
                    (char *)version,  "--counter",   "1",         bin,
                    (char *)out,      NULL};
    assert_int_equal(run("keel-sign", argv, at(7, "keel.log")), 0);
}

static int setup(void **state)
{
    (void)state;
    dir = kf_tmpdir("gateway-bridge");
    char out[700];
    snprintf(out, sizeof out, "%s/sensor", dir);
    char *k1[] = {(char *)keel_exe, "image", "keygen", "--out", out, NULL};
    assert_int_equal(run("keel-keygen", k1, at(7, "keel.log")), 0);
    snprintf(out, sizeof out, "%s/rogue", dir);
    char *k2[] = {(char *)keel_exe, "image", "keygen", "--out", out, NULL};
    assert_int_equal(run("keel-keygen", k2, at(7, "keel.log")), 0);
    sign("1.0.0", at(0, "sensor.sec"), at(1, "fw-1.0.0.kimg"));
    sign("1.1.0", at(0, "sensor.sec"), at(1, "fw-1.1.0.kimg"));
    sign("9.9.9", at(0, "rogue.sec"), at(1, "fw-forged.kimg"));
    FILE *f = fopen(at(0, "gateway.json"), "w");
    assert_non_null(f);
    fprintf(f,
            "{\"bus\": {\"rt_bridge\": \"%s\"}, \"period_ms\": 500, \"points\": [\n"
            " {\"name\": \"roomTemperature\", \"unit\": 1, \"function\": 4, \"address\": 0,"
            "  \"scale\": 0.01, \"signed\": true},\n"
            " {\"name\": \"roomHumidity\", \"unit\": 1, \"function\": 4, \"address\": 1,"
            "  \"scale\": 0.01},\n"
            " {\"name\": \"roomPressure\", \"unit\": 1, \"function\": 4, \"address\": 2,"
            "  \"scale\": 0.1},\n"
            " {\"name\": \"supplyAirTemperature\", \"unit\": 2, \"function\": 4,"
            "  \"address\": 0, \"scale\": 0.01, \"signed\": true}]}\n",
            RT_ID);
    fclose(f);
    char st[700];
    snprintf(st, sizeof st, "%s/state", dir);
    assert_int_equal(mkdir(st, 0700), 0);
    return 0;
}

static cJSON *load_json(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        return NULL;
    }
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    return cJSON_Parse(text);
}

static double num(const cJSON *o, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b) {
        x = cJSON_GetObjectItemCaseSensitive(x, b);
    }
    assert_true(cJSON_IsNumber(x));
    return x->valuedouble;
}

static const char *str(const cJSON *o, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b) {
        x = cJSON_GetObjectItemCaseSensitive(x, b);
    }
    assert_true(cJSON_IsString(x));
    return x->valuestring;
}

/* The gateway's one-shot job; its stdout (the telemetry or the method's answer) in out. */
static int gateway(char *extra1, char *extra2, char *out, size_t cap)
{
    const char *log = at(5, "gateway.out");
    unlink(log);
    char *argv[] = {(char *)gw_exe,
                    "--config",
                    (char *)at(2, "gateway.json"),
                    "--rt-socket",
                    (char *)at(3, "bridge.sock"),
                    "--sensor-key",
                    (char *)at(4, "sensor.pub"),
                    extra1,
                    extra2,
                    NULL};
    int rc = run("keel-gateway", argv, log);
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
    return rc;
}

/* The last line of the gateway's output that starts with c. */
static const char *line_starting(const char *text, char c)
{
    const char *found = NULL;
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (*p == c) {
            found = p;
        }
    }
    return found;
}

static void test_gateway_polls_and_updates_through_the_rt_line_driver(void **state)
{
    (void)state;
    char *argv[] = {(char *)sim_exe,
                    "--bridge-socket",
                    (char *)at(3, "bridge.sock"),
                    "--gateway-manifest",
                    NULL,
                    "--rt-manifest",
                    NULL,
                    "--state",
                    NULL,
                    "--status",
                    (char *)at(6, "world.json"),
                    "--speed",
                    "20",
                    "--temp",
                    "21",
                    "--sensor-key",
                    (char *)at(4, "sensor.pub"),
                    "--sensor-image",
                    (char *)at(1, "fw-1.0.0.kimg"),
                    "--sensor-component",
                    SENSOR_COMP,
                    NULL};
    char gm[700], rm[700], st[700];
    snprintf(gm, sizeof gm, "%s/apps/gateway/app_manifest.json", kf_source_dir());
    snprintf(rm, sizeof rm, "%s/firmware/apps/envmon/app_manifest.json", kf_source_dir());
    snprintf(st, sizeof st, "%s/state", dir);
    argv[4] = gm;
    argv[6] = rm;
    argv[8] = st;
    kf_proc sim;
    assert_int_equal(kf_spawn(&sim, "keel-sim", argv, at(0, "sim.log")), 0);
    assert_int_equal(kf_wait_file(&sim, at(3, "bridge.sock"), 10000), 0);
    assert_int_equal(kf_wait_file(&sim, at(6, "world.json"), 10000), 0);

    /* readings: what the sensors on the bus say is the world's room */
    static char out[16384];
    int rc = gateway("--once", NULL, out, sizeof out);
    if (rc != 0) {
        fprintf(stderr, "%s\n", out);
        kf_dump_log(&sim, 20);
    }
    assert_int_equal(rc, 0);
    const char *js = line_starting(out, '{');
    assert_non_null(js);
    cJSON *t = cJSON_Parse(js);
    assert_non_null(t);
    cJSON *w = load_json(at(6, "world.json"));
    assert_non_null(w);
    double room = num(w, "room", "temperature");
    /* the room drifts slowly and world.json is at most a few virtual seconds old */
    assert_true(fabs(num(t, "roomTemperature", NULL) - room) < 0.05);
    assert_true(fabs(num(t, "roomHumidity", NULL) - num(w, "room", "humidity")) < 0.2);
    assert_true(fabs(num(t, "roomPressure", NULL) - num(w, "room", "pressure")) < 0.3);
    assert_true(fabs(num(t, "supplyAirTemperature", NULL) - room) < 0.05); /* HVAC off */
    assert_int_equal((int)num(t, "errors", NULL), 0);
    cJSON_Delete(t);
    cJSON_Delete(w);

    /* a signed 60 KB image through the RT core's line driver: the sensor boots it */
    rc = gateway("--update-sensor", "2:", out, sizeof out);
    assert_int_equal(rc, 2); /* no image named: usage */
    char spec[800];
    snprintf(spec, sizeof spec, "2:%s", at(1, "fw-1.1.0.kimg"));
    rc = gateway("--update-sensor", spec, out, sizeof out);
    if (rc != 0) {
        fprintf(stderr, "%s\n", out);
    }
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "200 {\"unit\":2,\"version\":\"1.1.0\""));
    /* the world saw it on the wire: hundreds of frames, no collision, sensor on 1.1.0 (the
     * status file is rewritten 4 times a second: wait for one written after the push) */
    bool seen = false;
    int64_t deadline = now_ms() + 10000;
    while (!seen && now_ms() < deadline) {
        w = load_json(at(6, "world.json"));
        seen = w && strcmp(str(w, "modbus", "sensorFirmware"), "1.1.0") == 0 &&
               num(w, "bridge", "sent") > 200;
        if (seen) {
            assert_int_equal((int)num(w, "rs485", "collisions"), 0);
            assert_true(num(w, "rs485", "supplyReplies") > 200);
        }
        cJSON_Delete(w);
        if (!seen) {
            struct timespec ts = {0, 50000000}; /* poll the condition every 50 ms */
            nanosleep(&ts, NULL);
        }
    }
    assert_true(seen);

    /* from a URL (nginx): fetched, verified and pushed the same way */
    kf_proc web;
    uint16_t web_port = 0;
    char site[700];
    snprintf(site, sizeof site, "%s/site", dir);
    assert_int_equal(mkdir(site, 0700), 0);
    sign("1.2.0", at(0, "sensor.sec"), at(1, "site/fw-1.2.0.kimg"));
    assert_int_equal(nginx_site_start(&web, dir, site, &web_port), 0);
    snprintf(spec, sizeof spec, "2:http://127.0.0.1:%u/fw-1.2.0.kimg", web_port);
    rc = gateway("--update-sensor", spec, out, sizeof out);
    if (rc != 0) {
        fprintf(stderr, "%s\n", out);
    }
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "200 {\"unit\":2,\"version\":\"1.2.0\""));
    /* a URL that is not there: 502 with the HTTP status, nothing pushed */
    snprintf(spec, sizeof spec, "2:http://127.0.0.1:%u/missing.kimg", web_port);
    rc = gateway("--update-sensor", spec, out, sizeof out);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "502 {\"unit\":2,\"error\":\"HTTP 404\"}"));
    kf_stop(&web, 1000);

    /* a forged image: refused before a record is sent, the sensor keeps 1.2.0 */
    snprintf(spec, sizeof spec, "2:%s", at(1, "fw-forged.kimg"));
    rc = gateway("--update-sensor", spec, out, sizeof out);
    assert_int_equal(rc, 4);
    assert_non_null(strstr(out, "422 {\"unit\":2,\"version\":\"1.2.0\""));
    assert_non_null(strstr(out, "not trusted"));

    assert_true(kf_running(&sim));
    kf_stop(&sim, 2000);
}

/* keeld's part: both apps' ends on one SEQPACKET socket; keel-sim must route each by its
 * partner's component id. */
static void test_keeld_hand_over_routes_each_end_by_partner(void **state)
{
    (void)state;
    char p[3][700];
    snprintf(p[0], sizeof p[0], "%s/apps/envmon/app_manifest.json", kf_source_dir());
    snprintf(p[1], sizeof p[1], "%s/apps/gateway/app_manifest.json", kf_source_dir());
    snprintf(p[2], sizeof p[2], "%s/firmware/apps/envmon/app_manifest.json", kf_source_dir());
    keel_manifest env_m, gw_m, rt_m;
    keel_manifest_error why;
    assert_int_equal(keel_manifest_load(p[0], &env_m, &why), KEEL_MANIFEST_OK);
    assert_int_equal(keel_manifest_load(p[1], &gw_m, &why), KEEL_MANIFEST_OK);
    assert_int_equal(keel_manifest_load(p[2], &rt_m, &why), KEEL_MANIFEST_OK);
    keel_icc_end env_hl, env_rt, gw_hl, gw_rt;
    assert_int_equal(keel_icc_pair(&env_m, &rt_m, NULL, &env_hl, &env_rt, &why), KEEL_ICC_OK);
    assert_int_equal(keel_icc_pair(&gw_m, &rt_m, NULL, &gw_hl, &gw_rt, &why), KEEL_ICC_OK);
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp), 0);
    /* the gateway's first: order must not matter */
    assert_int_equal(keel_icc_end_send(sp[0], &gw_rt), KEEL_ICC_OK);
    assert_int_equal(keel_icc_end_send(sp[0], &env_rt), KEEL_ICC_OK);
    keel_icc_end_close(&gw_rt);
    keel_icc_end_close(&env_rt);
    close(sp[0]);
    char fdtxt[16];
    snprintf(fdtxt, sizeof fdtxt, "%d", sp[1]);
    assert_int_equal(setenv("KEEL_RT_CHANNEL_FD", fdtxt, 1), 0);
    char *argv[] = {(char *)sim_exe, "--speed", "20", "--temp", "20", "--noise", "0", NULL};
    kf_proc sim;
    assert_int_equal(kf_spawn(&sim, "keel-sim", argv, at(0, "sim-keeld.log")), 0);
    unsetenv("KEEL_RT_CHANNEL_FD");
    close(sp[1]);
    assert_int_equal(kf_wait_log(&sim, "world up", 10000), 0);
    assert_int_equal(kf_wait_log(&sim, "channel end from keeld for the RS485 bridge", 0), 0);

    /* the gateway's end reaches the bridge: a MODBUS read through the line driver */
    keel_icc *gc;
    assert_int_equal(keel_icc_open(&gw_hl, NULL, &gc), KEEL_ICC_OK);
    gateway_bus *b = gateway_bus_bridge(gc, NULL);
    assert_non_null(b);
    uint16_t regs[3];
    assert_int_equal(gateway_bus_read_registers(b, 1, 4, 0, 3, regs), KEEL_MODBUS_OK);
    assert_true(abs((int16_t)regs[0] - 2000) < 20); /* 20 C, drifting slowly */
    assert_true(regs[2] > 9000 && regs[2] < 11000); /* hPa x 10 */
    /* an exception comes back through the master's checks: unit 1 has 3 input registers */
    assert_int_equal(gateway_bus_read_registers(b, 1, 4, 2, 2, regs), KEEL_MODBUS_ERR_EXCEPTION);
    assert_int_equal(gateway_bus_last_exception(b), KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
    /* no unit 9 on the bus */
    gateway_bus_set_timeout(b, 50000);
    assert_int_equal(gateway_bus_read_registers(b, 9, 4, 0, 1, regs), KEEL_MODBUS_ERR_TIMEOUT);
    assert_int_equal(gateway_bus_get_stats(b)->timeouts, 1);

    /* the envmon end reaches the environment service */
    keel_icc *ec;
    assert_int_equal(keel_icc_open(&env_hl, NULL, &ec), KEEL_ICC_OK);
    uint8_t buf[128];
    keel_icc_msg resp;
    assert_int_equal(
        keel_icc_request(ec, ENVMON_MSG_ENV_GET, NULL, 0, &resp, buf, sizeof buf, 5000),
        KEEL_ICC_OK);
    assert_int_equal(resp.type, ENVMON_MSG_ENV_DATA);

    /* the loader's death reaches the gateway as a closed bus (it reopens through keeld) */
    assert_int_equal(kf_signal(&sim, SIGKILL), 0);
    (void)kf_wait_exit(&sim, 5000);
    assert_int_equal(gateway_bus_read_registers(b, 1, 4, 0, 1, regs), KEEL_MODBUS_ERR_CLOSED);
    gateway_bus_close(b);
    keel_icc_close(ec);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        return 2;
    }
    sim_exe = argv[1];
    gw_exe = argv[2];
    keel_exe = argv[3];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gateway_polls_and_updates_through_the_rt_line_driver),
        cmocka_unit_test(test_keeld_hand_over_routes_each_end_by_partner),
    };
    int rc = cmocka_run_group_tests(tests, setup, NULL);
    kf_cleanup();
    return rc;
}

/* The app side of the RT firmware tests (test_supervisor_rtfw.c): talks to the echo firmware
 * (firmware/apps/icc_echo) on the RT core keeld runs, sim port or QEMU, through the channel
 * keeld pairs.
 *   rtclient PARTNER_UUID ACTION
 * Opens the channel (keel_app_channel_open, waiting while keeld says BUSY), sends an echo
 * request every 100 ms; after three echoes it sends ACTION once ("stall": the firmware's
 * serving thread blocks for ever; "fault": it executes an undefined instruction; "none").
 * When the RT core goes away (keeld restarts it) it re-opens and logs the first echo after.
 *   rtclient PARTNER_UUID env
 * Talks to the environment monitor's RT firmware instead: ENV_GET every 100 ms, the decoded
 * sample logged for the first three answers that carry one (seq > 0). */
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "keel/app.h"
#include "envmon_proto.h"
#include "keel/icc.h"

enum { T_DATA = 1, T_REPLY = 3, T_STALL = 4, T_FAULT = 5 };

static keel_app *g_app;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0 && keel_app_log(g_app, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1) !=
                     KEEL_APP_OK) {
        return; /* nobody to tell */
    }
}

static keel_icc *open_channel(const char *partner)
{
    for (;;) {
        int fd = -1;
        keel_app_status st = keel_app_channel_open(g_app, partner, &fd);
        if (st == KEEL_APP_OK) {
            keel_icc_end end;
            keel_icc *c = NULL;
            keel_icc_err e = keel_icc_end_recv(fd, &end);
            close(fd);
            if (e == KEEL_ICC_OK) {
                e = keel_icc_open(&end, NULL, &c);
            }
            say("rtclient: open -> %s", keel_icc_err_name(e));
            if (c) {
                return c;
            }
        } else if (st != KEEL_APP_ERR_BUSY) {
            say("rtclient: channel_open -> %s", keel_app_status_name(st));
            return NULL;
        }
        if (keel_app_heartbeat(g_app) != KEEL_APP_OK) {
            return NULL;
        }
        poll(NULL, 0, 50);
    }
}

static int env_loop(keel_icc *c)
{
    for (unsigned answers = 0; c;) {
        uint8_t buf[64];
        keel_icc_msg m;
        keel_icc_err e =
            keel_icc_request(c, ENVMON_MSG_ENV_GET, NULL, 0, &m, buf, sizeof buf, 1000);
        if (e == KEEL_ICC_OK && answers < 3) {
            envmon_env env;
            envmon_proto_err pe = m.type == ENVMON_MSG_ENV_DATA
                                      ? envmon_env_decode(buf, m.len, &env)
                                      : ENVMON_PROTO_ERR_LENGTH;
            if (pe == ENVMON_PROTO_OK && env.seq == 0) {
                continue; /* asked before the first sample: ask again */
            }
            answers++;
            if (pe == ENVMON_PROTO_OK) {
                say("rtclient: env seq=%u temp_mc=%d humidity_cp=%u sensor_ok=%u", env.seq,
                    (int)env.temp_mc, env.humidity_cp, env.sensor_ok);
            } else {
                say("rtclient: env answer bad: %s", envmon_proto_err_name(pe));
            }
        } else if (e != KEEL_ICC_OK && e != KEEL_ICC_ERR_TIMEOUT) {
            say("rtclient: env request -> %s", keel_icc_err_name(e));
            return 1;
        }
        if (keel_app_heartbeat(g_app) != KEEL_APP_OK) {
            return 0;
        }
        poll(NULL, 0, 100);
    }
    return 1;
}

int main(int argc, char **argv)
{
    if (keel_app_open(&g_app) != KEEL_APP_OK || argc != 3) {
        return 1;
    }
    const char *action = argv[2];
    keel_icc *c = open_channel(argv[1]);
    if (strcmp(action, "env") == 0) {
        return env_loop(c);
    }
    unsigned echoes = 0, opens = 1;
    bool acted = strcmp(action, "none") == 0, after_reopen = false;
    for (unsigned i = 1; c; i++) {
        char req[32], buf[64];
        keel_icc_msg m;
        int n = snprintf(req, sizeof req, "echo %u", i);
        keel_icc_err e = keel_icc_request(c, T_DATA, req, (size_t)n, &m, buf, sizeof buf, 500);
        if (e == KEEL_ICC_OK) {
            bool same = m.type == T_REPLY && m.len == (uint32_t)n && memcmp(buf, req, m.len) == 0;
            if (++echoes <= 3 || after_reopen) {
                say("rtclient: echo %s%s (open %u)", same ? "ok" : "WRONG",
                    after_reopen ? " after reopen" : "", opens);
                after_reopen = false;
            }
            if (echoes == 3 && !acted) {
                acted = true;
                uint16_t t = strcmp(action, "stall") == 0 ? T_STALL : T_FAULT;
                e = keel_icc_send(c, t, NULL, 0, 1000);
                say("rtclient: sent %s -> %s", action, keel_icc_err_name(e));
            }
        } else if (e == KEEL_ICC_ERR_PEER_GONE) {
            say("rtclient: peer gone; re-opening");
            keel_icc_close(c);
            c = open_channel(argv[1]);
            opens++;
            after_reopen = true;
        }
        if (keel_app_heartbeat(g_app) != KEEL_APP_OK) {
            return 0;
        }
        poll(NULL, 0, 100);
    }
    return 1;
}

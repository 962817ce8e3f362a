/* Two apps talking over an intercore channel keeld paired: "chat ping PARTNER_UUID" sends
 * three requests and logs the replies, "chat pong PARTNER_UUID" answers them. Both get their
 * channel end from keel_app_channel_open() (a socket carrying the end), then use keel_icc.
 * With an RT component: "chat rtpong" is the RT loader (kind "rt"), taking its end from
 * $KEEL_RT_CHANNEL_FD as keel-sim does; "chat pingloop PARTNER_UUID" pings three times, then
 * keeps pinging and, when the loader goes away, re-opens the channel until it answers again. */
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keel/app.h"
#include "keel/icc.h"

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
        return;
    }
}

/* The RT side: every end keeld sent (normally one), answering on the first. */
static int rtpong(void)
{
    const char *env = getenv("KEEL_RT_CHANNEL_FD");
    if (!env) {
        say("chat: no KEEL_RT_CHANNEL_FD");
        return 1;
    }
    keel_icc_end end;
    keel_icc *c;
    keel_icc_err e = keel_icc_end_recv(atoi(env), &end);
    if (e == KEEL_ICC_OK) {
        e = keel_icc_open(&end, NULL, &c);
    }
    say("chat: rt end -> %s", keel_icc_err_name(e));
    if (e != KEEL_ICC_OK) {
        return 1;
    }
    for (unsigned served = 0;;) {
        char buf[64];
        keel_icc_msg msg;
        e = keel_icc_recv(c, &msg, buf, sizeof buf - 1, 200);
        if (e == KEEL_ICC_OK) {
            buf[msg.len < sizeof buf ? msg.len : sizeof buf - 1] = '\0';
            char rep[80];
            int n = snprintf(rep, sizeof rep, "rt pong to %s", buf);
            if (keel_icc_reply(c, &msg, 2, rep, (size_t)n, 1000) == KEEL_ICC_OK && ++served <= 3) {
                say("chat: rt served %u", served);
            }
        } else if (keel_app_heartbeat(g_app) != KEEL_APP_OK) {
            return 0;
        }
    }
}

/* Opens the channel to partner, waiting while keeld answers BUSY (the RT loader is not up). */
static keel_icc *open_retrying(const char *partner)
{
    for (int tries = 0; tries < 200; tries++) {
        int fd = -1;
        keel_app_status st = keel_app_channel_open(g_app, partner, &fd);
        if (tries == 0 || st != KEEL_APP_ERR_BUSY) {
            say("chat: channel_open -> %s", keel_app_status_name(st));
        }
        if (st == KEEL_APP_OK) {
            keel_icc_end end;
            keel_icc *c = NULL;
            keel_icc_err e = keel_icc_end_recv(fd, &end);
            close(fd);
            if (e == KEEL_ICC_OK) {
                e = keel_icc_open(&end, NULL, &c);
            }
            say("chat: icc open -> %s", keel_icc_err_name(e));
            return c;
        }
        if (st != KEEL_APP_ERR_BUSY) {
            return NULL;
        }
        poll(NULL, 0, 50);
    }
    return NULL;
}

static int pingloop(const char *partner)
{
    keel_icc *c = open_retrying(partner);
    bool reopened = false;
    for (int i = 1; c; i++) {
        char req[32], buf[80];
        keel_icc_msg msg;
        int n = snprintf(req, sizeof req, "ping %d", i);
        keel_icc_err e = keel_icc_request(c, 1, req, (size_t)n, &msg, buf, sizeof buf - 1, 1000);
        if (e == KEEL_ICC_OK) {
            buf[msg.len < sizeof buf ? msg.len : sizeof buf - 1] = '\0';
            if (i <= 3) {
                say("chat: reply \"%s\"", buf);
            }
            if (i == 3) {
                say("chat: done");
            }
            if (reopened) {
                say("chat: reply after reopen \"%s\"", buf);
                reopened = false;
            }
        } else if (e == KEEL_ICC_ERR_PEER_GONE) {
            say("chat: peer gone; re-opening");
            keel_icc_close(c);
            c = open_retrying(partner);
            reopened = true;
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
    if (keel_app_open(&g_app) != KEEL_APP_OK) {
        return 1;
    }
    if (argc == 2 && strcmp(argv[1], "rtpong") == 0) {
        return rtpong();
    }
    if (argc != 3) {
        return 1;
    }
    if (strcmp(argv[1], "pingloop") == 0) {
        return pingloop(argv[2]);
    }
    int fd = -1;
    keel_app_status st = keel_app_channel_open(g_app, argv[2], &fd);
    say("chat: channel_open -> %s", keel_app_status_name(st));
    if (st != KEEL_APP_OK) {
        for (;;) {
            if (keel_app_heartbeat(g_app) != KEEL_APP_OK) {
                return 0;
            }
            poll(NULL, 0, 100);
        }
    }
    keel_icc_end end;
    keel_icc *c;
    keel_icc_err e = keel_icc_end_recv(fd, &end);
    if (e == KEEL_ICC_OK) {
        e = keel_icc_open(&end, NULL, &c);
    }
    say("chat: icc open -> %s", keel_icc_err_name(e));
    if (e != KEEL_ICC_OK) {
        return 1;
    }
    char buf[64];
    keel_icc_msg msg;
    if (strcmp(argv[1], "ping") == 0) {
        for (int i = 1; i <= 3; i++) {
            char req[32];
            int n = snprintf(req, sizeof req, "ping %d", i);
            e = keel_icc_request(c, 1, req, (size_t)n, &msg, buf, sizeof buf - 1, 10000);
            if (e != KEEL_ICC_OK) {
                say("chat: request %d -> %s", i, keel_icc_err_name(e));
                return 1;
            }
            buf[msg.len < sizeof buf ? msg.len : sizeof buf - 1] = '\0';
            say("chat: reply \"%s\"", buf);
        }
        say("chat: done");
    } else {
        for (int served = 0; served < 3;) {
            e = keel_icc_recv(c, &msg, buf, sizeof buf - 1, 10000);
            if (e == KEEL_ICC_OK) {
                buf[msg.len < sizeof buf ? msg.len : sizeof buf - 1] = '\0';
                char rep[64];
                int n = snprintf(rep, sizeof rep, "pong to %s", buf);
                if (keel_icc_reply(c, &msg, 2, rep, (size_t)n, 10000) == KEEL_ICC_OK) {
                    served++;
                }
            } else if (keel_app_heartbeat(g_app) != KEEL_APP_OK) {
                return 1;
            }
        }
        say("chat: served 3");
    }
    for (;;) { /* stay up: the test stops us */
        if (keel_app_heartbeat(g_app) != KEEL_APP_OK) {
            return 0;
        }
        poll(NULL, 0, 100);
    }
}

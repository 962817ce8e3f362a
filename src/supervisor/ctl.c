/* keeld's control socket server (protocol in ctl.h). Requests are short and answered at once,
 * on keeld's one thread: a client that does not send its line within a second is dropped, so
 * a stuck operator cannot stall the apps. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "supervisor.h"

int sv_ctl_listen(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return -1;
    }
    (void)unlink(path);
    mode_t old = umask(0077);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc < 0 || listen(fd, 16) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int fd, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) {
        ssize_t ignored = write(fd, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
        (void)ignored;
    }
}

static sv_app *need_app(sv_daemon *d, int fd, const char *name)
{
    sv_app *a = name ? sv_app_find(d, name) : NULL;
    if (!a) {
        say(fd, "ERR notfound no app named '%s'\n", name ? name : "");
    }
    return a;
}

static int number(const char *s, int dflt)
{
    if (!s) {
        return dflt;
    }
    char *end;
    long v = strtol(s, &end, 10);
    return *end || v < 1 || v > 100000 ? dflt : (int)v;
}

static void dispatch(sv_daemon *d, int fd, char **argv, int argc)
{
    const char *verb = argv[0], *arg = argc > 1 ? argv[1] : NULL;
    char msg[512];
    int64_t now = sv_now_ms();
    if (strcmp(verb, "list") == 0) {
        say(fd, "OK\n");
        for (int i = 0; i < d->napps; i++) {
            const sv_app *a = &d->apps[i];
            sv_trial_view v;
            char trial[24] = "-";
            sv_slots_describe(d, a, &v);
            if (v.on_trial) {
                snprintf(trial, sizeof trial, "%u/%u", v.trial_used, v.trial_allowed);
            }
            /* name version state pid restarts crashes uptime_ms ready slot trial left_ms
             * confirmed reverted_from */
            say(fd, "%s %s %s %d %u %u %lld %d %c %s %lld %s %s\n", a->m.name, a->m.version,
                sv_state_name(a->state), (int)a->pid, a->restarts, a->crashes,
                a->state == SV_RUNNING ? (long long)(now - a->started_ms) : 0LL,
                a->state == SV_RUNNING && a->ready, v.slot, trial, (long long)v.left_ms,
                v.confirmed ? "yes" : "no", v.reverted_from[0] ? v.reverted_from : "-");
        }
    } else if (strcmp(verb, "status") == 0 && arg) {
        const sv_app *a = need_app(d, fd, arg);
        if (a) {
            sv_trial_view v;
            char dep[1200];
            sv_slots_describe(d, a, &v);
            sv_deploy_describe(a, dep, sizeof dep);
            say(fd, "OK\nname %s\nversion %s\nstate %s\nslot %c\ntrial %s\n"
                "trial_starts %u/%u\ntrial_left_ms %lld\nconfirmed %s\nreverted_from %s\n",
                a->m.name, a->m.version, sv_state_name(a->state), v.slot,
                v.on_trial ? "yes" : "no", v.trial_used, v.trial_allowed, (long long)v.left_ms,
                v.confirmed ? "yes" : "no", v.reverted_from[0] ? v.reverted_from : "-");
            say(fd, "deployment %s\n", dep);
        }
    } else if (strcmp(verb, "status") == 0) {
        char caps[1024];
        sv_sandbox_describe(&d->caps, caps, sizeof caps);
        say(fd, "OK\npid %d\napps %d\n", (int)getpid(), d->napps);
        ssize_t ignored = write(fd, caps, strlen(caps));
        (void)ignored;
    } else if (strcmp(verb, "start") == 0 || strcmp(verb, "restart") == 0) {
        sv_app *a = need_app(d, fd, arg);
        if (!a) {
            return;
        }
        if (strcmp(verb, "restart") == 0 && a->state == SV_RUNNING) {
            say(fd, "ERR state %s is running: stop it first\n", a->m.name);
            return;
        }
        a->backoff_ms = d->cfg.backoff_initial_ms;
        sv_err e = sv_app_start(d, a, msg, sizeof msg);
        if (e == SV_OK) {
            say(fd, "OK\nstarted %s pid %d\n", a->m.name, (int)a->pid);
        } else {
            say(fd, "ERR %s %s\n", e == SV_ERR_STATE ? "state" : "fail", msg);
        }
    } else if (strcmp(verb, "stop") == 0) {
        sv_app *a = need_app(d, fd, arg);
        if (!a) {
            return;
        }
        sv_app_stop(d, a, "operator");
        say(fd, "OK\n%s %s\n", a->m.name, sv_state_name(a->state));
    } else if (strcmp(verb, "crashes") == 0) {
        if (!need_app(d, fd, arg)) {
            return;
        }
        say(fd, "OK\n");
        (void)sv_crash_list(d, arg, number(argc > 2 ? argv[2] : NULL, 1), fd);
    } else if (strcmp(verb, "logs") == 0) {
        if (!need_app(d, fd, arg)) {
            return;
        }
        say(fd, "OK\n");
        (void)sv_applog_tail(d, arg, number(argc > 2 ? argv[2] : NULL, 20), fd);
    } else if (strcmp(verb, "install") == 0) {
        if (!arg || arg[0] != '/') {
            say(fd, "ERR usage install takes an absolute package directory\n");
            return;
        }
        sv_err e = sv_app_install(d, arg, msg, sizeof msg);
        if (e == SV_OK) {
            say(fd, "OK\n%s\n", msg);
        } else {
            say(fd, "ERR %s %s\n",
                e == SV_ERR_CONFIG ? "verify" : e == SV_ERR_STATE ? "state" : "io", msg);
        }
    } else if (strcmp(verb, "notify") == 0) {
        sv_app *a = need_app(d, fd, arg);
        if (!a) {
            return;
        }
        if (argc != 4) {
            say(fd, "ERR usage notify NAME TYPE ARG\n");
            return;
        }
        unsigned long type = strtoul(argv[2], NULL, 10);
        /* "now": keeld's CLOCK_MONOTONIC in ns, so the app can time the delivery */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        unsigned long long v = strcmp(argv[3], "now") == 0
                                   ? (unsigned long long)ts.tv_sec * 1000000000ull +
                                         (unsigned long long)ts.tv_nsec
                                   : strtoull(argv[3], NULL, 10);
        if (type == 0 || type >= KEEL_APP_NOTIFY_TYPE_COUNT) {
            say(fd, "ERR usage TYPE is 1..%d\n", KEEL_APP_NOTIFY_TYPE_COUNT - 1);
            return;
        }
        if (sv_notify(d, a, (uint16_t)type, v)) {
            say(fd, "OK\nqueued seq %u\n", a->notify_seq);
        } else {
            say(fd, "ERR fail not delivered (no ring registered, ring full or forged)\n");
        }
    } else {
        say(fd, "ERR usage unknown verb '%s'\n", verb);
    }
}

void sv_ctl_serve(sv_daemon *d, int fd)
{
    char line[PATH_MAX + 128];
    size_t n = 0;
    while (n < sizeof line - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 1000) != 1) {
            return;
        }
        ssize_t r = read(fd, line + n, sizeof line - 1 - n);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) {
                continue;
            }
            return;
        }
        n += (size_t)r;
        if (memchr(line, '\n', n)) {
            break;
        }
    }
    line[n] = '\0';
    char *nl = strchr(line, '\n');
    if (!nl) {
        say(fd, "ERR usage request line too long or not terminated\n");
        return;
    }
    *nl = '\0';
    char *argv[8];
    int argc = 0;
    for (char *save, *t = strtok_r(line, " ", &save); t && argc < 8;
         t = strtok_r(NULL, " ", &save)) {
        argv[argc++] = t;
    }
    if (argc == 0) {
        say(fd, "ERR usage empty request\n");
        return;
    }
    dispatch(d, fd, argv, argc);
}

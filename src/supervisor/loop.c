/* keeld's event loop: one epoll set with the signalfd (SIGCHLD, SIGTERM, SIGINT), the control
 * socket, and per app its SDK socket and its output pipe. Timers are deadlines (sv_apps_*):
 * epoll_wait sleeps until the nearest one. Each event's data holds (kind << 32 | app index). */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "supervisor.h"

int64_t sv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool sv_fmt(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < cap;
}

void sv_logf(const char *fmt, ...)
{
    char buf[512];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(buf, sizeof buf, "%02d:%02d:%02d.%03ld keeld: ", tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 2) {
        n = (int)sizeof buf - 2;
    }
    buf[n++] = '\n';
    ssize_t ignored = write(2, buf, (size_t)n);
    (void)ignored;
}

int sv_loop_watch(sv_daemon *d, int fd, uint32_t kind, uint32_t index)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = ((uint64_t)kind << 32) | index};
    return epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev);
}

void sv_loop_unwatch(sv_daemon *d, int fd)
{
    (void)epoll_ctl(d->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static void reap(sv_daemon *d)
{
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid <= 0) {
            return;
        }
        /* keeld is a child subreaper: orphans of an app land here too, and are just reaped */
        for (int i = 0; i < d->napps; i++) {
            if (d->apps[i].pid == pid) {
                sv_app_reaped(d, &d->apps[i], st);
                break;
            }
        }
    }
}

static void on_signal(sv_daemon *d)
{
    struct signalfd_siginfo si;
    while (read(d->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGCHLD) {
            reap(d);
        } else {
            sv_logf("signal %d: stopping apps and exiting", (int)si.ssi_signo);
            d->quit = true;
        }
    }
}

static void on_output(sv_daemon *d, sv_app *a)
{
    char buf[4096];
    ssize_t n = read(a->out, buf, sizeof buf);
    if (n > 0) {
        sv_applog_output(d, a, buf, (size_t)n);
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        /* the app closed its output: stop watching, the pipe goes at reap */
        sv_loop_unwatch(d, a->out);
    }
}

int sv_loop_run(sv_daemon *d)
{
    int64_t quit_deadline = 0;
    for (;;) {
        int64_t now = sv_now_ms();
        if (d->quit) {
            bool any = false;
            if (quit_deadline == 0) {
                quit_deadline = now + d->cfg.stop_grace_ms + 1000;
                for (int i = 0; i < d->napps; i++) {
                    sv_app_stop(d, &d->apps[i], "keeld exiting");
                }
            }
            for (int i = 0; i < d->napps; i++) {
                any |= d->apps[i].pid > 0;
            }
            if (!any || now > quit_deadline) {
                return 0;
            }
        }
        sv_apps_tick(d, now);
        int64_t next = sv_apps_next_deadline(d);
        if (d->quit && quit_deadline < next) {
            next = quit_deadline;
        }
        int timeout = next == INT64_MAX ? -1 : next <= now ? 0 : (int)(next - now);
        if (d->cloud && (timeout < 0 || timeout > d->cloud_next_ms)) {
            /* the link's own timer (reconnect, keepalive), and at most 100 ms in case its
             * socket changed under epoll */
            timeout = d->cloud_next_ms < 0 ? 0 : d->cloud_next_ms > 100 ? 100 : d->cloud_next_ms;
        }
        struct epoll_event evs[16];
        int n = epoll_wait(d->epfd, evs, 16, timeout);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            sv_logf("epoll_wait: %s", strerror(errno));
            return 1;
        }
        sv_cloud_service(d);
        for (int i = 0; i < n; i++) {
            uint32_t kind = (uint32_t)(evs[i].data.u64 >> 32);
            uint32_t idx = (uint32_t)evs[i].data.u64;
            if (kind == SV_EV_CLOUD) {
                continue; /* serviced below, once per turn */
            }
            if (kind == SV_EV_SIGNAL) {
                on_signal(d);
            } else if (kind == SV_EV_CTL) {
                int c = accept4(d->ctlfd, NULL, NULL, SOCK_CLOEXEC);
                if (c >= 0) {
                    sv_ctl_serve(d, c);
                    close(c);
                }
            } else if (idx < (uint32_t)d->napps) {
                sv_app *a = &d->apps[idx];
                if (kind == SV_EV_SOCK && a->sock >= 0) {
                    /* a closed socket means the app is exiting: SIGCHLD follows */
                    if (!sv_broker_handle(d, a) || (evs[i].events & (EPOLLHUP | EPOLLERR))) {
                        sv_loop_unwatch(d, a->sock);
                    }
                } else if (kind == SV_EV_OUT && a->out >= 0) {
                    on_output(d, a);
                }
            }
        }
    }
}

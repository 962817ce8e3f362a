/* App lifecycle in keeld: adding packages from the store, starting an app in its sandbox,
 * stopping it, and what happens when it ends: a crash report, then a restart after an
 * exponential backoff (reset once the app has stayed up stable_ms). Heartbeats: an app whose
 * manifest sets heartbeat_ms and stays silent longer gets SIGABRT, which libkeel's handler
 * turns into a report with the stack where it hung, then SIGKILL if it is still there. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "package.h"
#include "supervisor.h"

#define SV_HUNG_GRACE_MS 2000  /* SIGABRT to SIGKILL: time for libkeel's handler to report */
#define SV_START_GRACE_MS 5000 /* a heartbeat is due once the app said HELLO or sent any record
                                * (an RT loader's beat), or after this */

const char *sv_state_name(sv_state s)
{
    static const char *const names[SV_STATE_COUNT] = {
        [SV_STOPPED] = "stopped", [SV_RUNNING] = "running", [SV_STOPPING] = "stopping",
        [SV_BACKOFF] = "backoff", [SV_FAILED] = "failed",
    };
    return (unsigned)s < SV_STATE_COUNT ? names[s] : "unknown";
}

sv_app *sv_app_find(sv_daemon *d, const char *name)
{
    for (int i = 0; i < d->napps; i++) {
        if (strcmp(d->apps[i].m.name, name) == 0) {
            return &d->apps[i];
        }
    }
    return NULL;
}

static void keeld_line(const sv_daemon *d, sv_app *a, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void keeld_line(const sv_daemon *d, sv_app *a, const char *fmt, ...)
{
    char buf[SV_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    sv_applog_line(d, a, "keeld", buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    sv_logf("%s: %s", a->m.name, buf);
}

sv_err sv_app_add(sv_daemon *d, const char *pkg_dir, sv_app **out, char *msg, size_t msglen)
{
    sv_manifest m;
    sv_err e = sv_manifest_load(pkg_dir, &m, msg, msglen);
    if (e) {
        return e;
    }
    sv_app *a = sv_app_find(d, m.name);
    if (!a) {
        if (d->napps >= SV_MAX_APPS) {
            snprintf(msg, msglen, "%s: at most %d apps", m.name, SV_MAX_APPS);
            return SV_ERR_FULL;
        }
        a = &d->apps[d->napps];
        memset(a, 0, sizeof *a);
        a->uid = d->cfg.base_uid + (uid_t)d->napps;
        a->sock = a->out = a->wake_fd = -1;
        a->backoff_ms = d->cfg.backoff_initial_ms;
        d->napps++;
    } else if (a->state == SV_RUNNING || a->state == SV_STOPPING) {
        snprintf(msg, msglen, "%s is running: stop it first", m.name);
        return SV_ERR_STATE;
    }
    a->m = m;
    snprintf(a->pkg_dir, sizeof a->pkg_dir, "%s", pkg_dir);
    if (!sv_fmt(a->data_dir, sizeof a->data_dir, "%s/data/%s", d->cfg.state_dir, m.name) ||
        !sv_fmt(a->run_dir, sizeof a->run_dir, "%s/run/%s", d->cfg.state_dir, m.name)) {
        snprintf(msg, msglen, "%s: state directory path too long", m.name);
        return SV_ERR_CONFIG;
    }
    if ((mkdir(a->data_dir, 0700) < 0 && errno != EEXIST) ||
        (mkdir(a->run_dir, 0755) < 0 && errno != EEXIST)) {
        snprintf(msg, msglen, "%s: cannot create %s: %s", m.name, a->data_dir, strerror(errno));
        return SV_ERR_IO;
    }
    if (d->caps.root && (chown(a->data_dir, a->uid, a->uid) < 0 || chmod(a->data_dir, 0700) < 0)) {
        snprintf(msg, msglen, "%s: cannot give %s to uid %u: %s", m.name, a->data_dir,
                 (unsigned)a->uid, strerror(errno));
        return SV_ERR_IO;
    }
    if (out) {
        *out = a;
    }
    return SV_OK;
}

sv_err sv_apps_scan(sv_daemon *d)
{
    DIR *dp = opendir(d->cfg.store_dir);
    if (!dp) {
        sv_logf("store %s: %s", d->cfg.store_dir, strerror(errno));
        return SV_ERR_IO;
    }
    struct dirent *e;
    char names[SV_MAX_APPS][256];
    int n = 0;
    while ((e = readdir(dp)) && n < SV_MAX_APPS) {
        if (e->d_name[0] == '.' || strchr(e->d_name, '.')) {
            continue; /* ".", "..", and staging copies "<name>.new", "<name>.prev" */
        }
        snprintf(names[n++], sizeof names[0], "%s", e->d_name);
    }
    closedir(dp);
    /* sorted, so an app keeps its uid across keeld restarts while the set does not change */
    qsort(names, (size_t)n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    for (int i = 0; i < n; i++) {
        char dir[PATH_MAX + 256], msg[256];
        (void)sv_fmt(dir, sizeof dir, "%s/%s", d->cfg.store_dir, names[i]);
        sv_app *a;
        if (sv_app_add(d, dir, &a, msg, sizeof msg) != SV_OK) {
            /* a package that does not load does not run; the others still do */
            sv_logf("package %s refused: %s", dir, msg);
            continue;
        }
        if (sv_slots_attach(d, a, msg, sizeof msg) != SV_OK) {
            sv_logf("%s: %s", names[i], msg);
        }
        sv_deploy_resume(d, a);
    }
    return SV_OK;
}

static void close_fd(sv_daemon *d, int *fd, bool watched)
{
    if (*fd >= 0) {
        if (watched) {
            sv_loop_unwatch(d, *fd);
        }
        close(*fd);
        *fd = -1;
    }
}

sv_err sv_app_start(sv_daemon *d, sv_app *a, char *msg, size_t msglen)
{
    if (a->state == SV_RUNNING || a->state == SV_STOPPING) {
        snprintf(msg, msglen, "%s is already %s", a->m.name, sv_state_name(a->state));
        return SV_ERR_STATE;
    }
    /* the update agent decides which version runs (and counts a trial start durably) */
    char why[320];
    if (a->slots) {
        if (sv_slots_boot(d, a, why, sizeof why) != SV_OK) {
            a->state = SV_FAILED;
            keeld_line(d, a, "start refused: %s", why);
            snprintf(msg, msglen, "%s: %s", a->m.name, why);
            return SV_ERR_CONFIG;
        }
        if (a->reverted_from[0]) {
            keeld_line(d, a, "trial of %s failed (%s): reverted to %s", a->reverted_from,
                       a->revert_why, a->m.version);
            a->reverted_from[0] = '\0';
        }
    }
    /* verified at every start, not only at install: what runs is what was signed */
    if (sv_package_verify_dir(d, a->m.name, a->pkg_dir, &a->sealed, &a->counter, why,
                              sizeof why) != SV_OK) {
        a->state = SV_FAILED;
        keeld_line(d, a, "start %s", why);
        snprintf(msg, msglen, "%s: %s", a->m.name, why);
        return SV_ERR_CONFIG;
    }
    if (!a->sealed) {
        keeld_line(d, a, "package not verified: placed in the store by hand (no signed image)");
    } else if (!a->trial) {
        /* a version that runs outside a trial is the known-good one: nothing older may come
         * back (a trial raises it when the new version confirms its health) */
        sv_package_floor_raise(d, a->m.id, a->counter);
    }
    if (!a->swept) {
        /* leftovers of a previous keeld would count against NPROC; after a reap the uid was
         * swept already */
        sv_sandbox_kill_uid(d, a);
        a->swept = true;
    }
    sv_cgroup_remove(a);
    sv_cgroup_create(d, a);
    int sp[2], op[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
        snprintf(msg, msglen, "socketpair: %s", strerror(errno));
        return SV_ERR_IO;
    }
    if (pipe2(op, O_CLOEXEC) < 0) {
        snprintf(msg, msglen, "pipe: %s", strerror(errno));
        close(sp[0]);
        close(sp[1]);
        return SV_ERR_IO;
    }
    /* an RT loader also gets a socket carrying its channel ends (SEQPACKET: one end a record) */
    int cp[2] = {-1, -1};
    if (a->m.realtime && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, cp) < 0) {
        snprintf(msg, msglen, "socketpair: %s", strerror(errno));
        close(sp[0]);
        close(sp[1]);
        close(op[0]);
        close(op[1]);
        return SV_ERR_IO;
    }
    pid_t pid = sv_sandbox_spawn(d, a, sp[1], op[1], cp[1], msg, msglen);
    close(sp[1]);
    close(op[1]);
    if (cp[1] >= 0) {
        close(cp[1]);
    }
    if (pid >= 0 && cp[0] >= 0) {
        /* a few records of a few dozen bytes: fits the socket buffer, never blocks; the
         * loader reads them until the end of the stream */
        int n = sv_channels_rt_start(d, a, cp[0]);
        keeld_line(d, a, "%d channel end%s handed to the RT loader", n, n == 1 ? "" : "s");
    }
    if (cp[0] >= 0) {
        close(cp[0]);
    }
    if (pid < 0) {
        close(sp[0]);
        close(op[0]);
        sv_cgroup_remove(a);
        a->state = SV_FAILED;
        keeld_line(d, a, "start failed: %s", msg);
        return SV_ERR_SANDBOX;
    }
    (void)fcntl(sp[0], F_SETFL, O_NONBLOCK);
    (void)fcntl(op[0], F_SETFL, O_NONBLOCK);
    a->pid = pid;
    a->sock = sp[0];
    a->out = op[0];
    int idx = (int)(a - d->apps);
    sv_loop_watch(d, a->sock, SV_EV_SOCK, (uint32_t)idx);
    sv_loop_watch(d, a->out, SV_EV_OUT, (uint32_t)idx);
    a->state = SV_RUNNING;
    a->started_ms = a->beat_ms = sv_now_ms();
    if (!a->slots) {
        a->trial_deadline_ms = a->started_ms + d->cfg.trial_ms; /* unsigned: per start */
    }
    a->hung = a->confirmed = a->have_crash = a->forged = a->ready = a->beaten = false;
    a->stop_reason = NULL;
    a->ring_cap = 0;
    a->partial_len = 0;
    keeld_line(d, a, "started %s %s as pid %d uid %u%s", a->m.name, a->m.version, (int)pid,
               (unsigned)a->uid, a->trial ? " (on trial)" : "");
    return SV_OK;
}

void sv_app_stop(sv_daemon *d, sv_app *a, const char *reason)
{
    if (a->state == SV_BACKOFF || a->state == SV_FAILED) {
        a->state = SV_STOPPED;
        return;
    }
    if (a->state != SV_RUNNING) {
        return;
    }
    (void)sv_notify(d, a, KEEL_APP_NOTIFY_STOP_REQUESTED, 0);
    kill(a->pid, SIGTERM);
    a->state = SV_STOPPING;
    a->stop_reason = reason;
    a->deadline_ms = sv_now_ms() + d->cfg.stop_grace_ms;
}

/* What is still queued from a dead app: its crash record may arrive after SIGCHLD. */
static void drain(sv_daemon *d, sv_app *a)
{
    struct pollfd p = {.fd = a->sock, .events = POLLIN};
    for (int i = 0; i < 64 && a->sock >= 0 && poll(&p, 1, 0) == 1 && (p.revents & POLLIN); i++) {
        if (!sv_broker_handle(d, a)) {
            break;
        }
    }
    char buf[4096];
    ssize_t n;
    while (a->out >= 0 && (n = read(a->out, buf, sizeof buf)) > 0) {
        sv_applog_output(d, a, buf, (size_t)n);
    }
    if (a->partial_len) {
        sv_applog_line(d, a, "out", a->partial, a->partial_len);
        a->partial_len = 0;
    }
}

static void rm_tree(const char *dir);

/* A failed trial. With update slots the agent records the revert durably and the next start
 * (at once) unpacks and runs the confirmed version. An unsigned development package has no
 * slots: the previous version goes back from <name>.prev, and the failed one is kept as
 * <name>.failed for its crash reports' symbols. */
static void revert(sv_daemon *d, sv_app *a, const char *why)
{
    if (a->slots) {
        sv_slots_revert(d, a, why);
        a->revert = false;
        a->backoff_ms = d->cfg.backoff_initial_ms;
        a->deadline_ms = sv_now_ms();
        a->state = SV_BACKOFF; /* sv_app_start logs the revert once the old version is back */
        return;
    }
    char dst[PATH_MAX + 64], prev[PATH_MAX + 64], failed[PATH_MAX + 64], msg[256];
    char bad[32];
    snprintf(bad, sizeof bad, "%s", a->m.version);
    (void)sv_fmt(dst, sizeof dst, "%s/%s", d->cfg.store_dir, a->m.name);
    (void)sv_fmt(prev, sizeof prev, "%s.prev", dst);
    (void)sv_fmt(failed, sizeof failed, "%s.failed", dst);
    a->trial = a->revert = false;
    a->state = SV_STOPPED; /* the process is gone */
    rm_tree(failed);
    if (rename(dst, failed) < 0 || rename(prev, dst) < 0) {
        keeld_line(d, a, "REVERT FAILED after %s: %s", why, strerror(errno));
        a->state = SV_FAILED;
        return;
    }
    char kept[PATH_MAX + 96];
    (void)sv_fmt(kept, sizeof kept, "%s/%s", dst, SV_PKG_IMAGE);
    sv_package_seal_mark(d, a->m.name, access(kept, F_OK) == 0);
    if (sv_app_add(d, dst, NULL, msg, sizeof msg) != SV_OK) {
        keeld_line(d, a, "REVERT FAILED after %s: %s", why, msg);
        a->state = SV_FAILED;
        return;
    }
    keeld_line(d, a, "trial of %s failed (%s): reverted to %s", bad, why, a->m.version);
    snprintf(a->reverted_from, sizeof a->reverted_from, "%s", bad); /* for keel app list */
    a->backoff_ms = d->cfg.backoff_initial_ms;
    a->deadline_ms = sv_now_ms();
    a->state = SV_BACKOFF; /* starts at the next tick */
}

void sv_app_reaped(sv_daemon *d, sv_app *a, int wstatus)
{
    int64_t now = sv_now_ms();
    drain(d, a);
    sv_sandbox_kill_uid(d, a);
    a->swept = true;
    bool oom = sv_cgroup_oom(a);
    sv_cgroup_remove(a);
    close_fd(d, &a->sock, true);
    close_fd(d, &a->out, true);
    close_fd(d, &a->wake_fd, false);
    a->pid = 0;
    a->ring_cap = 0;
    if (a->m.realtime) {
        sv_channels_rt_gone(d, a);
    }
    sv_cloud_app_gone(d, a);

    bool clean = WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;
    if (a->revert) {
        revert(d, a, "no health confirmation in time");
        return;
    }
    if (a->state == SV_STOPPING && !a->hung) {
        /* asked to stop: ending by SIGTERM, SIGKILL (grace passed) or exit is expected */
        bool expected = clean || (WIFSIGNALED(wstatus) && (WTERMSIG(wstatus) == SIGTERM ||
                                                           WTERMSIG(wstatus) == SIGKILL));
        if (!expected || a->have_crash) {
            uint32_t seq = sv_crash_write(d, a, wstatus, "crashed while stopping");
            keeld_line(d, a, "crash report %u", seq);
        }
        keeld_line(d, a, "stopped (%s)", a->stop_reason ? a->stop_reason : "requested");
        a->state = SV_STOPPED;
        sv_deploy_pending(d, a);
        return;
    }
    if (clean && !a->hung && !a->have_crash) {
        keeld_line(d, a, "exited with status 0");
        if (a->m.restart != SV_RESTART_ALWAYS) {
            a->state = SV_STOPPED;
            return;
        }
    } else {
        char reason[160];
        if (a->hung) {
            snprintf(reason, sizeof reason, "heartbeat missed: no call for over %u ms",
                     a->m.heartbeat_ms);
        } else if (oom) {
            snprintf(reason, sizeof reason, "memory limit reached (%llu MiB)",
                     (unsigned long long)(a->m.memory_bytes >> 20));
        } else if (WIFSIGNALED(wstatus)) {
            snprintf(reason, sizeof reason, "crashed");
        } else {
            snprintf(reason, sizeof reason, "exited with status %d", WEXITSTATUS(wstatus));
        }
        a->crashes++;
        uint32_t seq = sv_crash_write(d, a, wstatus, reason);
        keeld_line(d, a, "%s; crash report %u", reason, seq);
        sv_cloud_crash(d, a, seq, wstatus, reason);
        bool used_up = a->slots ? sv_slots_trial_used_up(a) || a->m.restart == SV_RESTART_NEVER
                                : ++a->trial_crashes >= d->cfg.trial_crashes;
        if (a->trial && (a->revert || used_up)) {
            char why[64];
            snprintf(why, sizeof why, "%s", a->revert ? "no health confirmation in time"
                                                      : "crashed during its trial");
            revert(d, a, why);
            return;
        }
        if (a->m.restart == SV_RESTART_NEVER) {
            a->state = SV_FAILED;
            return;
        }
    }
    if (now - a->started_ms >= d->cfg.stable_ms) {
        a->backoff_ms = d->cfg.backoff_initial_ms;
    }
    a->deadline_ms = now + a->backoff_ms;
    keeld_line(d, a, "restarting in %u ms", a->backoff_ms);
    uint64_t next = a->backoff_ms ? (uint64_t)a->backoff_ms * 2 : 1;
    a->backoff_ms = next > d->cfg.backoff_max_ms ? d->cfg.backoff_max_ms : (uint32_t)next;
    a->state = SV_BACKOFF;
}

/* An RT component (kind "rt") on trial counts as healthy once it has run for half the trial
 * window since its last start, beating all along when its manifest asks for a heartbeat (a
 * missed beat makes it "hung" and restarts it, which starts the clock again). */
static bool rt_stable(const sv_daemon *d, const sv_app *a, int64_t now)
{
    return a->m.realtime && a->trial && !a->confirmed && !a->revert && !a->hung &&
           (a->beaten || !a->m.heartbeat_ms) && now - a->started_ms >= d->cfg.trial_ms / 2;
}

void sv_apps_tick(sv_daemon *d, int64_t now)
{
    if (d->deploying) {
        d->deploying = sv_deploy_poll(d);
    }
    for (int i = 0; i < d->napps; i++) {
        sv_app *a = &d->apps[i];
        switch (a->state) {
        case SV_BACKOFF:
            if (now >= a->deadline_ms) {
                char msg[256];
                a->restarts++;
                if (sv_app_start(d, a, msg, sizeof msg) != SV_OK) {
                    sv_logf("%s: restart failed: %s", a->m.name, msg);
                }
            }
            break;
        case SV_RUNNING:
            if (a->hung) {
                if (now >= a->deadline_ms) {
                    kill(a->pid, SIGKILL);
                    a->deadline_ms = INT64_MAX;
                }
            } else if (rt_stable(d, a, now)) {
                /* an RT loader has no SDK to confirm with: steady beating is its health */
                keeld_line(d, a, "RT component beat steadily for %u ms on trial",
                           d->cfg.trial_ms / 2);
                sv_app_confirmed(d, a);
            } else if (a->trial && !a->confirmed && !a->revert && now > a->trial_deadline_ms) {
                keeld_line(d, a, "trial: no health confirmation within %u ms", d->cfg.trial_ms);
                a->revert = true;
                sv_app_stop(d, a, "trial failed");
            } else if (a->m.heartbeat_ms && now - a->beat_ms > (int64_t)a->m.heartbeat_ms &&
                       (a->ready || a->beaten || now - a->started_ms > SV_START_GRACE_MS)) {
                keeld_line(d, a, "heartbeat missed (%lld ms silent): SIGABRT",
                           (long long)(now - a->beat_ms));
                a->hung = true;
                kill(a->pid, SIGABRT); /* libkeel reports where it was stuck */
                a->deadline_ms = now + SV_HUNG_GRACE_MS;
            }
            break;
        case SV_STOPPING:
            if (now >= a->deadline_ms) {
                kill(a->pid, SIGKILL);
                a->deadline_ms = INT64_MAX;
            }
            break;
        default:
            break;
        }
    }
}

int64_t sv_apps_next_deadline(const sv_daemon *d)
{
    int64_t next = INT64_MAX;
    for (int i = 0; i < d->napps; i++) {
        const sv_app *a = &d->apps[i];
        int64_t t = INT64_MAX;
        if (a->state == SV_BACKOFF || a->state == SV_STOPPING ||
            (a->state == SV_RUNNING && a->hung)) {
            t = a->deadline_ms;
        } else if (a->state == SV_RUNNING && a->m.heartbeat_ms) {
            t = a->beat_ms + a->m.heartbeat_ms + 1;
            if (!a->ready && !a->beaten && t < a->started_ms + SV_START_GRACE_MS + 1) {
                t = a->started_ms + SV_START_GRACE_MS + 1; /* loading under load is not a hang */
            }
        }
        if (a->state == SV_RUNNING && a->trial && !a->confirmed && !a->revert) {
            int64_t tt = a->trial_deadline_ms + 1;
            if (a->m.realtime) {
                int64_t st = a->started_ms + d->cfg.trial_ms / 2;
                tt = st < tt ? st : tt;
            }
            t = tt < t ? tt : t;
        }
        if (t < next) {
            next = t;
        }
    }
    if (d->deploying) {
        int64_t t = sv_now_ms() + SV_DEPLOY_POLL_MS; /* a deployment thread's progress */
        next = t < next ? t : next;
    }
    return next;
}

/* ---- install: copy a package directory into the store ---- */

static const char *g_copy_src;
static const char *g_copy_dst;
static int copy_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    char dst[PATH_MAX * 2];
    snprintf(dst, sizeof dst, "%s%s", g_copy_dst, path + strlen(g_copy_src));
    if (flag == FTW_D) {
        return mkdir(dst, 0755) < 0 && errno != EEXIST ? -1 : 0;
    }
    if (flag != FTW_F || !S_ISREG(st->st_mode)) {
        return 0; /* links, devices and the like are not part of a package */
    }
    int in = open(path, O_RDONLY | O_CLOEXEC);
    /* world-readable, executable if it was: the app's own uid must be able to run it */
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                   (st->st_mode & 0111) ? 0755 : 0644);
    int rc = in < 0 || out < 0 ? -1 : 0;
    char buf[65536];
    ssize_t n;
    while (rc == 0 && (n = read(in, buf, sizeof buf)) > 0) {
        if (write(out, buf, (size_t)n) != n) {
            rc = -1;
        }
    }
    if (rc == 0 && fsync(out) < 0) {
        rc = -1;
    }
    if (in >= 0) {
        close(in);
    }
    if (out >= 0) {
        close(out);
    }
    return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_tree(const char *dir)
{
    (void)nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void sv_rm_tree(const char *dir) { rm_tree(dir); }

void sv_app_confirmed(sv_daemon *d, sv_app *a)
{
    a->confirmed = true;
    if (!a->trial) {
        return;
    }
    a->trial = false;
    sv_slots_confirm(d, a);
    sv_applog_line(d, a, "keeld", "trial passed: health confirmed", 30);
    if (a->sealed) {
        sv_package_floor_raise(d, a->m.id, a->counter);
    }
    sv_logf("%s: version %s confirmed healthy; trial over", a->m.name, a->m.version);
}

sv_err sv_app_install(sv_daemon *d, const char *src, char *msg, size_t msglen)
{
    char stage[PATH_MAX + 16];
    snprintf(stage, sizeof stage, "%s/.stage", d->cfg.store_dir);
    rm_tree(stage);
    if (mkdir(stage, 0755) < 0) {
        snprintf(msg, msglen, "%s: %s", stage, strerror(errno));
        return SV_ERR_IO;
    }
    struct stat st;
    if (stat(src, &st) < 0) {
        snprintf(msg, msglen, "%s: %s", src, strerror(errno));
        return SV_ERR_IO;
    }
    sv_err e;
    if (S_ISREG(st.st_mode)) {
        /* a signed package image: verified, then unpacked */
        e = sv_package_open_image(d, src, stage, msg, msglen);
    } else if (!d->cfg.allow_unsigned) {
        snprintf(msg, msglen, "%s: unsigned package directory refused: install a signed package "
                 "(keel app pack), or set \"allow_unsigned\" in a development device config", src);
        e = SV_ERR_CONFIG;
    } else {
        g_copy_src = src;
        g_copy_dst = stage;
        e = nftw(src, copy_entry, 16, FTW_PHYS) == 0 ? SV_OK : SV_ERR_IO;
        if (e) {
            snprintf(msg, msglen, "copying %s: %s", src, strerror(errno));
        }
    }
    sv_manifest m;
    if (e == SV_OK) {
        e = sv_manifest_load(stage, &m, msg, msglen);
    }
    if (e) {
        rm_tree(stage);
        return e;
    }
    sv_app *old = sv_app_find(d, m.name);
    if (old && (old->state == SV_RUNNING || old->state == SV_STOPPING)) {
        rm_tree(stage);
        snprintf(msg, msglen, "%s is running: keel app stop %s, then install", m.name, m.name);
        return SV_ERR_STATE;
    }
    if (!old && d->napps >= SV_MAX_APPS) {
        /* refused before anything is made for it: no update slots (on disk or in memory), no
         * store directory */
        rm_tree(stage);
        snprintf(msg, msglen, "%s: at most %d apps", m.name, SV_MAX_APPS);
        return SV_ERR_FULL;
    }
    char dst[PATH_MAX + 64], prev[PATH_MAX + 64];
    (void)sv_fmt(dst, sizeof dst, "%s/%s", d->cfg.store_dir, m.name);
    (void)sv_fmt(prev, sizeof prev, "%s.prev", dst);
    bool signed_image = S_ISREG(st.st_mode), trial = false;
    struct sv_slots *slots = old ? old->slots : NULL;
    if (signed_image) {
        /* into the update agent's slots: a first install provisions them, an update is staged
         * in the inactive slot, verified, and armed for a trial */
        uint8_t *img = NULL, *prev_img = NULL;
        size_t len = 0, prev_len = 0;
        char kept[PATH_MAX + 96];
        keel_image_error ie;
        (void)sv_fmt(kept, sizeof kept, "%s/%s", stage, SV_PKG_IMAGE);
        e = keel_image_read_file(kept, SV_PKG_MAX_BYTES + 4096, &img, &len, &ie) == KEEL_IMAGE_OK
                ? SV_OK
                : SV_ERR_IO;
        (void)sv_fmt(kept, sizeof kept, "%s/%s", dst, SV_PKG_IMAGE);
        if (!e && !slots && keel_image_read_file(kept, SV_PKG_MAX_BYTES + 4096, &prev_img,
                                                 &prev_len, &ie) == KEEL_IMAGE_OK) {
            /* a signed version installed before keeld kept slots: it becomes the confirmed
             * one, and this install its update */
            bool t;
            e = sv_slots_install(d, m.name, prev_img, prev_len, &slots, &t, msg, msglen);
            free(prev_img);
        }
        if (!e) {
            e = sv_slots_install(d, m.name, img, len, &slots, &trial, msg, msglen);
        }
        free(img);
        if (e) {
            rm_tree(stage);
            if (!(old && old->slots)) {
                /* slots made by this install go again: a package without slots before stays
                 * as it was, and no later start picks a version out of them */
                struct sv_app tmp = {.slots = slots};
                sv_slots_close(&tmp);
                char sd[PATH_MAX];
                if (sv_fmt(sd, sizeof sd, "%s/slots/%s", d->cfg.state_dir, m.name)) {
                    rm_tree(sd);
                }
            }
            return e;
        }
        /* the store gets the new version now (the agent agrees: it runs at the next start) */
        rm_tree(prev);
        if (renameat2(AT_FDCWD, stage, AT_FDCWD, dst, RENAME_EXCHANGE) == 0) {
            rm_tree(stage);
        } else if ((access(dst, F_OK) == 0 && rename(dst, prev) < 0) || rename(stage, dst) < 0) {
            snprintf(msg, msglen, "%s: %s", dst, strerror(errno));
            if (!(old && old->slots == slots)) {
                struct sv_app tmp = {.slots = slots};
                sv_slots_close(&tmp);
            }
            return SV_ERR_IO;
        }
        rm_tree(prev);
    } else {
        /* the previous version stays as <name>.prev: what a failed trial reverts to */
        rm_tree(prev);
        if (access(dst, F_OK) == 0 && rename(dst, prev) < 0) {
            snprintf(msg, msglen, "%s: %s", dst, strerror(errno));
            return SV_ERR_IO;
        }
        if (rename(stage, dst) < 0) {
            snprintf(msg, msglen, "%s: %s", dst, strerror(errno));
            return SV_ERR_IO;
        }
        trial = access(prev, F_OK) == 0;
        if (old && old->slots) {
            sv_slots_close(old); /* an unsigned version replaces the slots' */
        }
        if (slots) {
            char sd[PATH_MAX];
            if (sv_fmt(sd, sizeof sd, "%s/slots/%s", d->cfg.state_dir, m.name)) {
                rm_tree(sd);
            }
            slots = NULL;
        }
    }
    sv_package_seal_mark(d, m.name, signed_image);
    sv_app *a;
    e = sv_app_add(d, dst, &a, msg, msglen);
    if (e) {
        if (slots && !(old && old->slots == slots)) {
            /* slots made by this install belong to no app: freed, not leaked */
            struct sv_app tmp = {.slots = slots};
            sv_slots_close(&tmp);
        }
        return e;
    }
    a->slots = slots;
    a->backoff_ms = d->cfg.backoff_initial_ms;
    a->trial = trial; /* an update: on trial until it confirms health */
    a->trial_crashes = 0;
    a->revert = false;
    a->reverted_from[0] = '\0';
    snprintf(msg, msglen, "installed %s %s%s%s", m.name, m.version, trial ? ", on trial" : "",
             signed_image ? " (signature verified)" : " (unsigned, development)");
    return SV_OK;
}

/* The app sandbox, built from Linux primitives in the child between fork and exec.
 *
 * In order: own session, parent-death signal, join the app's cgroups, new network / mount /
 * IPC / UTS namespaces, a private root (a small tmpfs holding only /usr read-only for the C
 * library, the package read-only at /app, the app's data directory at /data, a private /tmp
 * and /dev/{null,zero,urandom}), pivot_root into it, rlimits (process count, address space,
 * files, no core dumps), drop to the app's own uid and gid with no supplementary groups,
 * no_new_privs, the seccomp filter, exec. Each step that fails writes its name and errno to a
 * close-on-exec pipe, so keeld reports "sandbox: pivot_root: Operation not permitted" instead of
 * a silent exit. Steps whose kernel feature the probe found missing are skipped, and keeld said
 * so at start-up (sv_sandbox_describe).
 *
 * The child runs only async-signal-safe calls plus seccomp_load (keeld is single-threaded, so
 * the allocator is in a sane state after fork).
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <grp.h>
#include <sched.h>
#include <unistd.h>

#include "supervisor.h"

/* Runs fn in a child and reports whether it exited 0: probing a namespace in keeld itself
 * would move keeld into it. */
static bool probe_child(int (*fn)(void))
{
    pid_t pid = fork();
    if (pid < 0) {
        return false;
    }
    if (pid == 0) {
        _exit(fn() == 0 ? 0 : 1);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static int try_netns(void) { return unshare(CLONE_NEWNET); }
static int try_mntns(void) { return unshare(CLONE_NEWNS); }
static int try_ipcns(void) { return unshare(CLONE_NEWIPC); }
static int try_utsns(void) { return unshare(CLONE_NEWUTS); }
static int try_seccomp(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) {
        return -1;
    }
    int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 0);
    if (rc == 0) {
        rc = seccomp_load(ctx);
    }
    seccomp_release(ctx);
    return rc;
}

void sv_sandbox_probe(sv_caps *caps)
{
    memset(caps, 0, sizeof *caps);
    caps->root = geteuid() == 0;
    caps->netns = probe_child(try_netns);
    caps->mntns = caps->root && probe_child(try_mntns);
    caps->ipcns = probe_child(try_ipcns);
    caps->utsns = probe_child(try_utsns);
    caps->seccomp = probe_child(try_seccomp);
    sv_cgroup_probe(caps);
}

void sv_sandbox_describe(const sv_caps *c, char *out, size_t outlen)
{
    snprintf(out, outlen,
             "network namespace (no network): %s\n"
             "private filesystem view (mount namespace + pivot_root): %s\n"
             "IPC and UTS namespaces: %s\n"
             "own uid/gid per app: %s\n"
             "seccomp filter + no_new_privs: %s\n"
             "rlimits (processes, address space, files): on\n"
             "cgroup hierarchy: %s\n"
             "cgroup process limit: %s\n"
             "cgroup memory limit: %s\n"
             "cgroup CPU quota: %s\n",
             c->netns ? "on" : "OFF (unshare(CLONE_NEWNET) refused)",
             c->mntns ? "on" : "OFF (needs root and mount namespaces)",
             c->ipcns && c->utsns ? "on" : "OFF",
             c->root ? "on" : "OFF (keeld is not root: apps run as keeld's uid)",
             c->seccomp ? "on" : "OFF (seccomp unavailable)",
             !c->root   ? "none (needs root)"
             : c->cg_v2 ? "v2 (unified, /sys/fs/cgroup)"
             : c->cg_pids || c->cg_memory || c->cg_cpu ? "v1 (one hierarchy per controller)"
                                                        : "none found under /sys/fs/cgroup",
             c->cg_pids ? "on" : "OFF (no pids controller; RLIMIT_NPROC still applies)",
             c->cg_memory ? "on" : "OFF (no memory controller; RLIMIT_AS still applies)",
             c->cg_cpu ? "on" : "OFF (no cpu controller)");
}

/* The seccomp filter itself is built in seccomp.c (sv_seccomp_build). */

/* ---- the child ---- */

static int g_errfd = -1;

/* Reports the failed step to keeld and exits. Only async-signal-safe calls. */
static void __attribute__((noreturn)) child_fail(const char *step)
{
    int e = errno;
    char buf[160];
    int n = snprintf(buf, sizeof buf, "%s: %s", step, strerror(e));
    if (n > 0 && g_errfd >= 0) {
        ssize_t ignored = write(g_errfd, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf);
        (void)ignored;
    }
    _exit(127);
}

static void write_file(const char *path, const char *text, const char *step)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, text, strlen(text)) < 0) {
        child_fail(step);
    }
    close(fd);
}

static void join_cgroups(const sv_app *a)
{
    char pid[24], path[PATH_MAX + 16];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    const char *dirs[] = {a->cg.pids, a->cg.memory, a->cg.cpu};
    for (size_t i = 0; i < 3; i++) {
        if (dirs[i][0] == '\0') {
            continue;
        }
        /* pids and cpu may share a directory on cgroup v2: joining twice is harmless */
        snprintf(path, sizeof path, "%s/cgroup.procs", dirs[i]);
        write_file(path, pid, "cgroup: join");
    }
}

static void bind(const char *src, const char *dst, unsigned long flags, const char *step)
{
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0) {
        child_fail(step);
    }
    /* Bind mounts take their flags only on a remount. */
    if (mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | flags, NULL) < 0) {
        child_fail(step);
    }
}

static void touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        child_fail("private root: create mount point");
    }
    close(fd);
}

/* A tmpfs root with only what the app may see, then pivot_root into it. */
static void private_root(const sv_app *a)
{
    char p[PATH_MAX + 32];
    const char *r = a->run_dir;
    /* Inside a chroot "/" is not a mount point (EINVAL): its propagation cannot be changed and
     * pivot_root is impossible. The mounts below stay in this namespace as long as the
     * enclosing mount is private, and the chroot fallback at the end still hides the host's
     * files; seccomp denies chroot to the app, so it cannot climb out. */
    bool rooted_in_chroot = false;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        if (errno != EINVAL) {
            child_fail("mount: make / private");
        }
        rooted_in_chroot = true;
    }
    if (mount("keel-app", r, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755") < 0) {
        child_fail("private root: tmpfs");
    }
    static const char *const dirs[] = {"usr", "app", "data", "dev", "tmp", ".old"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", r, dirs[i]);
        if (mkdir(p, 0755) < 0) {
            child_fail("private root: mkdir");
        }
    }
    /* merged-/usr systems: /lib, /lib64, /bin are links into /usr */
    static const char *const links[][2] = {
        {"usr/lib", "lib"}, {"usr/lib64", "lib64"}, {"usr/bin", "bin"}, {"usr/sbin", "sbin"}};
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", r, links[i][1]);
        if (symlink(links[i][0], p) < 0) {
            child_fail("private root: symlink");
        }
    }
    snprintf(p, sizeof p, "%s/usr", r);
    bind("/usr", p, MS_RDONLY | MS_NOSUID | MS_NODEV, "private root: bind /usr");
    snprintf(p, sizeof p, "%s/app", r);
    bind(a->pkg_dir, p, MS_RDONLY | MS_NOSUID | MS_NODEV, "private root: bind the package");
    snprintf(p, sizeof p, "%s/data", r);
    bind(a->data_dir, p, MS_NOSUID | MS_NODEV | MS_NOEXEC, "private root: bind the data dir");
    snprintf(p, sizeof p, "%s/tmp", r);
    if (mount("keel-tmp", p, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4m,mode=1777") <
        0) {
        child_fail("private root: /tmp");
    }
    static const char *const devs[] = {"null", "zero", "urandom"};
    for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++) {
        char src[32];
        snprintf(src, sizeof src, "/dev/%s", devs[i]);
        snprintf(p, sizeof p, "%s/dev/%s", r, devs[i]);
        touch(p);
        bind(src, p, MS_NOSUID | MS_NOEXEC, "private root: bind a device");
    }
    if (chdir(r) < 0) {
        child_fail("private root: chdir");
    }
    if (rooted_in_chroot) {
        if (rmdir(".old") < 0 || chroot(".") < 0 || chdir("/") < 0) {
            child_fail("private root: chroot");
        }
    } else {
        if (syscall(SYS_pivot_root, ".", ".old") < 0) {
            child_fail("pivot_root");
        }
        if (umount2("/.old", MNT_DETACH) < 0) {
            child_fail("pivot_root: detach the old root");
        }
        if (rmdir("/.old") < 0 || chdir("/") < 0) {
            child_fail("pivot_root: clean up");
        }
    }
    /* The root itself read-only: the app writes only to /data and /tmp. */
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0) {
        child_fail("private root: read-only");
    }
}

static void set_limit(int res, rlim_t v, const char *step)
{
    struct rlimit rl = {v, v};
    if (setrlimit(res, &rl) < 0) {
        child_fail(step);
    }
}

static void __attribute__((noreturn))
child(const sv_daemon *d, const sv_app *a, int sock, int out, int chan)
{
    const sv_caps *c = &d->caps;
    if (setsid() < 0) {
        child_fail("setsid");
    }
    /* the channel socket goes out of the way of the dup2s below, then to fd 5 */
    if (chan >= 0 && (chan = fcntl(chan, F_DUPFD_CLOEXEC, 64)) < 0) {
        child_fail("set up fds");
    }
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
        child_fail("prctl(PDEATHSIG)");
    }
    /* fds: 0 /dev/null, 1+2 the log pipe, 3 the SDK socket, 5 an RT loader's channel socket,
     * nothing else (4 is the error pipe, closed by exec) */
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0 ||
        dup2(sock, 3) < 0) {
        child_fail("set up fds");
    }
    int keep_err = g_errfd;
    if (keep_err != 4) {
        if (dup3(keep_err, 4, O_CLOEXEC) < 0) {
            child_fail("set up fds");
        }
        g_errfd = 4;
    }
    if (chan >= 0 && dup2(chan, 5) < 0) {
        child_fail("set up fds");
    }
    if (syscall(SYS_close_range, chan >= 0 ? 6u : 5u, ~0u, 0u) < 0) {
        child_fail("close_range");
    }
    if (chan >= 0 && fcntl(5, F_SETFD, 0) < 0) {
        child_fail("set up fds");
    }
    if (fcntl(3, F_SETFD, 0) < 0) {
        child_fail("set up fds");
    }
    join_cgroups(a);
    int ns = (c->netns ? CLONE_NEWNET : 0) | (c->mntns ? CLONE_NEWNS : 0) |
             (c->ipcns ? CLONE_NEWIPC : 0) | (c->utsns ? CLONE_NEWUTS : 0);
    if (ns && unshare(ns) < 0) {
        child_fail("unshare(namespaces)");
    }
    char exe[PATH_MAX + 160];
    if (c->mntns) {
        private_root(a);
        snprintf(exe, sizeof exe, "/app/%s", a->m.exec);
        if (chdir("/data") < 0) {
            child_fail("chdir /data");
        }
    } else {
        snprintf(exe, sizeof exe, "%s/%s", a->pkg_dir, a->m.exec);
        if (chdir(a->data_dir) < 0) {
            child_fail("chdir data dir");
        }
    }
    if (c->utsns) {
        if (sethostname(a->m.name, strlen(a->m.name)) < 0) {
            child_fail("sethostname");
        }
    }
    set_limit(RLIMIT_CORE, 0, "setrlimit(CORE)");
    set_limit(RLIMIT_NOFILE, a->m.max_files, "setrlimit(NOFILE)");
    if (c->root) {
        /* NPROC counts every process of the real uid: the app's uid is its own, so this is
         * exactly the app's process budget. Set before the uid switch, checked at fork. */
        set_limit(RLIMIT_NPROC, a->m.max_procs, "setrlimit(NPROC)");
        if (setgroups(0, NULL) < 0) {
            child_fail("setgroups");
        }
        if (setresgid(a->uid, a->uid, a->uid) < 0) {
            child_fail("setresgid");
        }
        if (setresuid(a->uid, a->uid, a->uid) < 0) {
            child_fail("setresuid");
        }
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        child_fail("prctl(NO_NEW_PRIVS)");
    }
    if (c->seccomp && d->seccomp) {
        int rc = seccomp_load((scmp_filter_ctx)d->seccomp);
        if (rc < 0) {
            errno = -rc;
            child_fail("seccomp_load");
        }
    }
    /* Last, after everything that allocates (seccomp_load; keeld's own sanitizer runtime in
     * test builds): + room for the C library's mappings. */
    set_limit(RLIMIT_AS, (rlim_t)a->m.memory_bytes + (rlim_t)(64u << 20), "setrlimit(AS)");
    char *argv[SV_MAX_ARGS + 2];
    argv[0] = (char *)a->m.name;
    for (int i = 0; i < a->m.nargs; i++) {
        argv[1 + i] = (char *)a->m.args[i];
    }
    argv[1 + a->m.nargs] = NULL;
    char env_name[SV_NAME_MAX + 16];
    snprintf(env_name, sizeof env_name, "KEEL_APP_NAME=%s", a->m.name);
    char *envp[] = {"KEEL_APP_FD=3", env_name, "PATH=/usr/bin:/bin", "HOME=/data",
                    "TMPDIR=/tmp", chan >= 0 ? "KEEL_RT_CHANNEL_FD=5" : NULL, NULL};
    execve(exe, argv, envp);
    child_fail("execve");
}

pid_t sv_sandbox_spawn(const sv_daemon *d, sv_app *a, int child_sock, int child_out,
                       int child_chan, char *msg, size_t msglen)
{
    int ep[2];
    if (pipe2(ep, O_CLOEXEC) < 0) {
        snprintf(msg, msglen, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(msg, msglen, "fork: %s", strerror(errno));
        close(ep[0]);
        close(ep[1]);
        return -1;
    }
    if (pid == 0) {
        close(ep[0]);
        g_errfd = ep[1];
        child(d, a, child_sock, child_out, child_chan);
    }
    close(ep[1]);
    /* EOF: exec succeeded (the pipe was close-on-exec); bytes: a step failed. */
    char buf[160];
    ssize_t n;
    do {
        n = read(ep[0], buf, sizeof buf - 1);
    } while (n < 0 && errno == EINTR);
    close(ep[0]);
    if (n > 0) {
        buf[n] = '\0';
        snprintf(msg, msglen, "sandbox: %s", buf);
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        return -1;
    }
    return pid;
}

void sv_sandbox_kill_uid(const sv_daemon *d, const sv_app *a)
{
    if (!d->caps.root) {
        return; /* apps share keeld's uid: only their process group can be killed */
    }
    /* kill(-1) from a process running as the app's uid reaches exactly that uid's processes:
     * every child a fork bomb left, whatever session or group it moved to. */
    pid_t pid = fork();
    if (pid == 0) {
        if (setresuid(a->uid, a->uid, a->uid) < 0) {
            _exit(1);
        }
        kill(-1, SIGKILL);
        _exit(0);
    }
    if (pid > 0) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
    }
}

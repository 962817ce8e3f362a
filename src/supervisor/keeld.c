/* keeld: Keel's supervisor. Reads the device config, loads every package in the store, says
 * which sandbox protections this kernel allows, starts the apps, and serves the control socket
 * until SIGTERM. See docs/apps.md (writing apps) and docs/security.md (what the sandbox does). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <seccomp.h>

#include "keel/cloud.h"
#include "supervisor.h"

static const char usage[] =
    "usage: keeld [--config FILE] [--state DIR] [--no-start]\n"
    "\n"
    "Keel's supervisor: runs the apps installed in the store, each in its own sandbox,\n"
    "restarts them when they crash and keeps their crash reports.\n"
    "\n"
    "  --config FILE   device config (JSON, see docs/config.md); default: none\n"
    "  --state DIR     state directory (default /var/lib/keel; the config's state_dir wins)\n"
    "  --no-start      load the apps but start none (keel app start NAME)\n"
    "  -h, --help      this text\n"
    "\n"
    "Exit: 0 after SIGTERM/SIGINT, 1 on a runtime failure, 2 usage, 3 a directory or socket\n"
    "cannot be used, 5 the config is invalid.\n";

static int mkdirs(const sv_config *c)
{
    static const char *const subs[] = {"", "/crashes", "/logs", "/data", "/run", "/outbox",
                                       "/props", "/deploy"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        char p[PATH_MAX + 16];
        snprintf(p, sizeof p, "%s%s", c->state_dir, subs[i]);
        if (mkdir(p, 0755) < 0 && errno != EEXIST) {
            fprintf(stderr, "keeld: %s: %s\n", p, strerror(errno));
            return -1;
        }
    }
    if (mkdir(c->store_dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "keeld: %s: %s\n", c->store_dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* Apps run as uids base_uid .. base_uid + SV_MAX_APPS - 1, and keeld kills whatever runs under
 * an app's uid before starting it (a previous keeld's leftovers). A second keeld on the same
 * machine with an overlapping range would kill the first one's apps at random, so each keeld
 * holds a write lock on its range's bytes of one machine-wide file; overlapping ranges
 * conflict exactly. The lock goes with the process (kill -9 included). */
static int lock_uid_range(uid_t base)
{
    const char *dirs[] = {"/run/keel", "/tmp"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char path[64];
        snprintf(path, sizeof path, "%s/keeld-uids.lock", dirs[i]);
        (void)mkdir(dirs[i], 0755);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            continue;
        }
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = (off_t)base,
                           .l_len = SV_MAX_APPS};
        if (fcntl(fd, F_SETLK, &fl) == 0) {
            return fd; /* held for keeld's life */
        }
        int err = errno;
        struct flock who = fl;
        if ((err == EACCES || err == EAGAIN) && fcntl(fd, F_GETLK, &who) == 0 &&
            who.l_type != F_UNLCK) {
            fprintf(stderr,
                    "keeld: app uids %u..%u overlap those of another keeld (pid %d, uids from "
                    "%lld): give this one another base_uid in its config\n",
                    (unsigned)base, (unsigned)base + SV_MAX_APPS - 1, (int)who.l_pid,
                    (long long)who.l_start);
        } else {
            fprintf(stderr, "keeld: cannot lock %s: %s\n", path, strerror(err));
        }
        close(fd);
        return -1;
    }
    fprintf(stderr, "keeld: no directory for the uid lock (/run/keel, /tmp)\n");
    return -1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"state", required_argument, NULL, 's'},
                                         {"no-start", no_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL, *state = "/var/lib/keel";
    bool start = true;
    int o;
    while ((o = getopt_long(argc, argv, "c:s:nh", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            config = optarg;
            break;
        case 's':
            state = optarg;
            break;
        case 'n':
            start = false;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fputs(usage, stderr);
        return 2;
    }
    static sv_daemon d;
    char msg[512];
    if (sv_config_defaults(&d.cfg, state) != SV_OK) {
        fprintf(stderr, "keeld: --state path too long\n");
        return 2;
    }
    if (config && sv_config_load(&d.cfg, config, msg, sizeof msg) != SV_OK) {
        fprintf(stderr, "keeld: %s\n", msg);
        return 5;
    }
    for (int i = 0; i < d.cfg.ntrusted; i++) {
        keel_image_error kerr;
        if (keel_image_pubkey_load(d.cfg.trusted_keys[i], &d.keys[d.nkeys], &kerr) !=
            KEEL_IMAGE_OK) {
            fprintf(stderr, "keeld: trusted key: %s\n", kerr.msg);
            return 5;
        }
        d.nkeys++;
    }
    if (mkdirs(&d.cfg) < 0) {
        return 3;
    }
    /* before the control socket: a refused keeld must not take over another's socket path */
    if (geteuid() == 0 && lock_uid_range(d.cfg.base_uid) < 0) {
        return 5;
    }
    snprintf(d.cg_instance, sizeof d.cg_instance, "keel-%d", (int)getpid());

    /* Orphans of apps are re-parented to keeld, not to init: nothing an app starts escapes. */
    (void)prctl(PR_SET_CHILD_SUBREAPER, 1);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    d.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    d.epfd = epoll_create1(EPOLL_CLOEXEC);
    d.ctlfd = sv_ctl_listen(d.cfg.socket_path);
    if (d.sigfd < 0 || d.epfd < 0 || d.ctlfd < 0) {
        fprintf(stderr, "keeld: control socket %s: %s\n", d.cfg.socket_path, strerror(errno));
        return 3;
    }
    sv_loop_watch(&d, d.sigfd, SV_EV_SIGNAL, 0);
    sv_loop_watch(&d, d.ctlfd, SV_EV_CTL, 0);

    sv_sandbox_probe(&d.caps);
    if (d.caps.seccomp) {
        d.seccomp = sv_seccomp_build();
        if (!d.seccomp) {
            d.caps.seccomp = false;
        }
    }
    char caps[1024];
    sv_sandbox_describe(&d.caps, caps, sizeof caps);
    for (char *save, *line = strtok_r(caps, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        sv_logf("sandbox: %s", line);
    }

    if (sv_cloud_open(&d) < 0) {
        sv_logf("cloud: link not started; telemetry goes to %s/outbox", d.cfg.state_dir);
    }
    sv_cloud_service(&d);
    sv_apps_scan(&d);
    if (start) {
        for (int i = 0; i < d.napps; i++) {
            if (sv_app_start(&d, &d.apps[i], msg, sizeof msg) != SV_OK) {
                sv_logf("%s: %s", d.apps[i].m.name, msg);
            }
        }
    }
    sv_logf("packages: %zu trusted key(s)%s", d.nkeys,
            d.cfg.allow_unsigned ? "; UNSIGNED package directories accepted (development)" : "");
    sv_logf("ready: %d apps, control socket %s", d.napps, d.cfg.socket_path);
    int rc = sv_loop_run(&d);
    sv_deploy_shutdown(&d);
    (void)unlink(d.cfg.socket_path);
    if (d.cloud) {
        keel_cloud_close(d.cloud);
    }
    if (d.seccomp) {
        seccomp_release((scmp_filter_ctx)d.seccomp);
    }
    sv_logf("exit");
    return rc;
}

/* make bench-supervisor: what keeld costs, measured against the bare mechanism it builds on,
 * both in this run on this machine.
 *
 *  crash -> restarted and running   SIGSEGV to a sandboxed app until the new process has said
 *                                    HELLO (keel_app_open), vs fork+exec+wait of the same binary
 *                                    with no sandbox                             (goal < 100 ms)
 *    ... signed package, verified   the same for a package installed signed, which keeld
 *                                    verifies against its kept image at every start, vs the
 *                                    row above (a package placed in the store by hand)
 *  SDK call round trip              keel_app_heartbeat() through keeld, vs a SEQPACKET
 *                                    ping-pong between two bare processes
 *  notification delivery            keeld's timestamp to the app having taken the record, vs an
 *                                    eventfd wake-up between two bare processes
 *  keeld memory with ten apps       keeld's RSS with 10 running apps vs with none
 * Needs root (the sandbox); prints why and exits 0 otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keel/image.h"
#include "world.h"

#define CRASH_ROUNDS 20
#define RTT_CALLS 20000
#define NOTIFY_ROUNDS 200

static char out[256 * 1024];

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t median(int64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof v[0], cmp64);
    return v[n / 2];
}

/* The row of `name` in `list`: pid and ready flag. */
static bool app_row(sv_world *w, const char *name, int *pid, int *ready, char *state)
{
    if (sv_world_ctl(w, "list", out, sizeof out) != 0) {
        return false;
    }
    for (char *save, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char n[64], v[32];
        unsigned r, c;
        long long up;
        if (sscanf(l, "%63s %31s %15s %d %u %u %lld %d", n, v, state, pid, &r, &c, &up, ready) ==
                8 &&
            strcmp(n, name) == 0) {
            return true;
        }
    }
    return false;
}

static int wait_ready(sv_world *w, const char *name, int not_pid, int timeout_ms)
{
    int64_t end = now_ns() + (int64_t)timeout_ms * 1000000;
    int pid, ready;
    char state[16];
    while (now_ns() < end) {
        if (app_row(w, name, &pid, &ready, state) && pid > 0 && pid != not_pid && ready &&
            strcmp(state, "running") == 0) {
            return pid;
        }
        /* polling keeld's state as fast as the control socket answers */
    }
    return -1;
}

static int64_t bare_spawn_ns(const char *exe)
{
    int64_t t0 = now_ns();
    pid_t p = fork();
    if (p == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        execl(exe, exe, (char *)NULL); /* no KEEL_APP_FD: keel_app_open fails, it exits 1 */
        _exit(127);
    }
    int st;
    waitpid(p, &st, 0);
    return now_ns() - t0;
}

static int64_t bare_pingpong_ns(int rounds)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0) {
        return -1;
    }
    pid_t p = fork();
    if (p == 0) {
        char b[16];
        for (int i = 0; i < rounds; i++) {
            if (recv(sv[1], b, sizeof b, 0) <= 0 || send(sv[1], b, sizeof b, 0) <= 0) {
                _exit(1);
            }
        }
        _exit(0);
    }
    char b[16] = {0};
    int64_t t0 = now_ns();
    for (int i = 0; i < rounds; i++) {
        if (send(sv[0], b, sizeof b, 0) <= 0 || recv(sv[0], b, sizeof b, 0) <= 0) {
            break;
        }
    }
    int64_t dt = now_ns() - t0;
    waitpid(p, NULL, 0);
    close(sv[0]);
    close(sv[1]);
    return dt / rounds;
}

static int64_t bare_eventfd_ns(int rounds)
{
    int efd = eventfd(0, 0), back = eventfd(0, 0);
    int pfd[2], rfd[2];
    if (efd < 0 || back < 0 || pipe(pfd) < 0 || pipe(rfd) < 0) {
        return -1;
    }
    pid_t p = fork();
    if (p == 0) {
        int64_t total = 0;
        for (int i = 0; i < rounds; i++) {
            uint64_t v;
            struct pollfd q = {.fd = efd, .events = POLLIN};
            poll(&q, 1, -1);
            if (read(efd, &v, sizeof v) != 8) {
                _exit(1);
            }
            int64_t ts;
            if (read(pfd[0], &ts, sizeof ts) != 8) {
                _exit(1);
            }
            total += now_ns() - ts;
            uint64_t one = 1;
            if (write(back, &one, 8) != 8) {
                _exit(1);
            }
        }
        if (write(rfd[1], &total, 8) != 8) {
            _exit(1);
        }
        _exit(0);
    }
    for (int i = 0; i < rounds; i++) {
        int64_t ts = now_ns();
        uint64_t one = 1, v;
        if (write(pfd[1], &ts, 8) != 8 || write(efd, &one, 8) != 8 || read(back, &v, 8) != 8) {
            break;
        }
    }
    int64_t total = 0;
    if (read(rfd[0], &total, 8) != 8) {
        total = -1;
    }
    waitpid(p, NULL, 0);
    return total / rounds;
}

static long rss_kib(int pid)
{
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/%d/status", pid);
    FILE *f = fopen(p, "r");
    long kib = -1;
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmRSS: %ld", &kib) == 1) {
            break;
        }
    }
    if (f) {
        fclose(f);
    }
    return kib;
}

/* Last value of "key=NUMBER" in the app's log. */
static long long last_value(sv_world *w, const char *app, const char *key)
{
    char req[128];
    snprintf(req, sizeof req, "logs %s 400", app);
    if (sv_world_ctl(w, req, out, sizeof out) != 0) {
        return -1;
    }
    long long v = -1;
    for (const char *p = out; (p = strstr(p, key)); p += strlen(key)) {
        v = atoll(p + strlen(key));
    }
    return v;
}

/* SIGSEGV to the app, until its next process said HELLO; n rounds with a bare spawn each. */
static int crash_rounds(sv_world *w, const char *name, const char *exe, int64_t *crash,
                        int64_t *bare)
{
    char req[128], want[128];
    int pid = wait_ready(w, name, 0, 10000);
    int n = 0;
    for (int i = 0; i < CRASH_ROUNDS && pid > 0; i++) {
        int64_t t0 = now_ns();
        kill(pid, SIGSEGV);
        int np = wait_ready(w, name, pid, 5000);
        crash[n] = now_ns() - t0;
        bare[n] = bare_spawn_ns(exe);
        n++;
        pid = np;
        /* keep backoff at its first step: the app must stay up stable_ms, so wait it out in
         * the control socket rather than measure a growing backoff */
        snprintf(req, sizeof req, "stop %s", name);
        sv_world_ctl(w, req, out, sizeof out);
        snprintf(want, sizeof want, "%s 1.0.0 stopped", name);
        sv_world_wait(w, "list", want, 5000);
        snprintf(req, sizeof req, "start %s", name);
        sv_world_ctl(w, req, out, sizeof out);
        pid = wait_ready(w, name, 0, 5000);
    }
    return n;
}

int main(void)
{
    if (geteuid() != 0) {
        printf("bench-supervisor: needs root (namespaces, app uids, cgroups); not run\n");
        return 0;
    }
    if (!getenv("KEEL_BUILD_DIR")) {
        setenv("KEEL_BUILD_DIR", KEEL_BENCH_BUILD_DIR, 1);
    }
    sv_world w;
    /* a key for the signed-package row; the world's root is made by sv_world_init, so the key
     * goes in a directory of its own */
    const char *keys = kf_tmpdir("bench-sv-keys");
    char pp[400], sp[400], extra[1000];
    keel_image_pubkey pub;
    keel_image_seckey sec;
    keel_image_error kerr;
    snprintf(pp, sizeof pp, "%s/bench.pub", keys ? keys : "/nonexistent");
    snprintf(sp, sizeof sp, "%s/bench.sec", keys ? keys : "/nonexistent");
    snprintf(extra, sizeof extra,
             "\"backoff_initial_ms\": 10, \"allow_unsigned\": true, \"trusted_keys\": [\"%s\"]", pp);
    if (!keys || keel_image_keygen(&pub, &sec) != KEEL_IMAGE_OK ||
        keel_image_key_save(pp, sp, &pub, &sec, &kerr) != KEEL_IMAGE_OK ||
        sv_world_init(&w, "bench-sv", extra) < 0) {
        fprintf(stderr, "bench-supervisor: cannot set up the state directory\n");
        return 1;
    }
    char rtt[64];
    snprintf(rtt, sizeof rtt, "\"args\": [\"rtt\", \"%d\"]", RTT_CALLS);
    if (sv_world_package(sv_world_store(&w), "app00", "sv_sample", "") < 0) {
        return 1;
    }
    /* keeld alone first: the memory baseline */
    if (sv_world_start(&w) < 0 || wait_ready(&w, "app00", 0, 10000) < 0) {
        fprintf(stderr, "bench-supervisor: keeld or the app did not come up\n");
        kf_dump_log(&w.keeld, 30);
        return 1;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("keeld %s, this machine: %ld cores online\n\n", kf_build_dir(),
           sysconf(_SC_NPROCESSORS_ONLN));

    /* crash -> running */
    int64_t crash[CRASH_ROUNDS], bare[CRASH_ROUNDS];
    char exe[512];
    snprintf(exe, sizeof exe, "%s/tests/integration/supervisor/apps/sv_sample", kf_build_dir());
    int n = crash_rounds(&w, "app00", exe, crash, bare);
    if (n == 0) {
        fprintf(stderr, "bench-supervisor: the app never came back\n");
        return 1;
    }
    int64_t crash_med = median(crash, n), bare_med = median(bare, n);

    /* the same with a signed package, verified against its kept image at every start */
    int64_t scrash[CRASH_ROUNDS], sbare[CRASH_ROUNDS];
    char cmd[3000];
    snprintf(cmd, sizeof cmd,
             "%s/bin/keel app pack --key %s %s/signed00 %s/signed00.kpkg >/dev/null",
             kf_build_dir(), sp, w.root, w.root);
    if (sv_world_package(w.root, "signed00", "sv_sample", "") < 0 || system(cmd) != 0) {
        fprintf(stderr, "bench-supervisor: cannot sign the package\n");
        return 1;
    }
    snprintf(cmd, sizeof cmd, "install %s/signed00.kpkg", w.root);
    sv_world_ctl(&w, cmd, out, sizeof out);
    sv_world_ctl(&w, "start signed00", out, sizeof out);
    int ns = crash_rounds(&w, "signed00", exe, scrash, sbare);
    sv_world_ctl(&w, "stop signed00", out, sizeof out);
    sv_world_wait(&w, "list", "signed00 1.0.0 stopped", 5000);
    int64_t scrash_med = ns ? median(scrash, ns) : -1;

    /* notification delivery */
    int64_t lat[NOTIFY_ROUNDS];
    int nl = 0;
    for (int i = 0; i < NOTIFY_ROUNDS; i++) {
        unsigned seq = 0;
        /* right after a (re)start the app may not have registered its ring yet: retry */
        for (int tries = 0; tries < 200; tries++) {
            if (sv_world_ctl(&w, "notify app00 8 now", out, sizeof out) == 0 &&
                sscanf(out, "queued seq %u", &seq) == 1) {
                break;
            }
            seq = 0;
            poll(NULL, 0, 10);
        }
        if (seq == 0) {
            break;
        }
        char needle[64];
        snprintf(needle, sizeof needle, "seq=%u ", seq);
        if (!sv_world_wait(&w, "logs app00 3", needle, 2000)) {
            break;
        }
        long long v = last_value(&w, "app00", "latency_ns=");
        if (v > 0) {
            lat[nl++] = v;
        }
    }
    int64_t lat_med = nl ? median(lat, nl) : -1;
    int64_t efd_ns = bare_eventfd_ns(NOTIFY_ROUNDS);

    /* memory: keeld with one app, then with ten */
    long rss1 = rss_kib(w.keeld.pid);
    for (int i = 1; i < 10; i++) {
        char name[16], req[600];
        snprintf(name, sizeof name, "app%02d", i);
        /* app01 times RTT_CALLS SDK round trips when it starts */
        if (sv_world_package(w.root, name, "sv_sample", i == 1 ? rtt : "") < 0) {
            return 1;
        }
        snprintf(req, sizeof req, "install %s/%s", w.root, name);
        sv_world_ctl(&w, req, out, sizeof out);
        snprintf(req, sizeof req, "start %s", name);
        sv_world_ctl(&w, req, out, sizeof out);
        if (wait_ready(&w, name, 0, 10000) < 0) {
            fprintf(stderr, "bench-supervisor: %s did not start\n", name);
            return 1;
        }
    }
    long rss10 = rss_kib(w.keeld.pid);

    /* SDK round trip, timed inside app01 */
    if (!sv_world_wait(&w, "logs app01 20", "rtt_ns=", 30000)) {
        return 1;
    }
    long long rtt_ns = last_value(&w, "app01", "rtt_ns=");
    int64_t pp_ns = bare_pingpong_ns(RTT_CALLS);

    printf("%-36s %14s %14s %8s\n", "measure", "keeld", "baseline", "ratio");
    printf("%-36s %11.2f ms %11.2f ms %7.1fx   (baseline: fork+exec+exit, no sandbox; goal "
           "< 100 ms: %s)\n",
           "crash -> restarted and running", crash_med / 1e6, bare_med / 1e6,
           (double)crash_med / (double)bare_med, crash_med < 100000000 ? "met" : "NOT met");
    printf("%-36s %11.2f ms %11.2f ms %7.2fx   (baseline: the same, package placed by hand)\n",
           "  ... signed package, verified", scrash_med / 1e6, crash_med / 1e6,
           (double)scrash_med / (double)crash_med);
    printf("%-36s %11.2f us %11.2f us %7.1fx   (baseline: SEQPACKET ping-pong)\n",
           "SDK call round trip", rtt_ns / 1e3, pp_ns / 1e3, (double)rtt_ns / (double)pp_ns);
    printf("%-36s %11.2f us %11.2f us %7.1fx   (baseline: eventfd wake-up; %d samples)\n",
           "notification delivery", lat_med / 1e3, efd_ns / 1e3,
           (double)lat_med / (double)efd_ns, nl);
    printf("%-36s %11ld KiB %10ld KiB %7.2fx   (baseline: keeld with 1 app)\n",
           "keeld RSS with 10 apps", rss10, rss1, (double)rss10 / (double)rss1);
    printf("\nmedians of %d crashes; %d SDK calls; release build (gcc -O2)\n", n, RTT_CALLS);
    kf_stop(&w.keeld, 5000);
    return 0;
}

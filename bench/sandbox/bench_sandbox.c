/* make bench-sandbox: the price of keeld's seccomp allow list (src/supervisor/seccomp.c) on
 * the system calls an app makes, against the same calls with no filter, in this run.
 *
 * Each row runs N calls in a fresh child: the baseline child sets no_new_privs only, the
 * measured one also loads the filter every app gets (sv_seccomp_build). Children of the two
 * kinds alternate; each figure is the best round seen, in ns per call. The kernel (5.11+) caches "always allowed" per call number, so an allowed
 * call without argument checks should cost nothing extra; clone (checked for namespace flags)
 * runs the filter's program. Also printed: the filter's size in BPF instructions and the time
 * keeld takes to build it (once per keeld start).
 * No root needed: a filter can be loaded by any process with no_new_privs. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "supervisor.h"

#define N 200000
#define ROUNDS 7
#define FORKS 300
#define CHILDREN 4 /* children of each kind, alternating */

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

typedef enum { CALL_GETPPID, CALL_WRITE, CALL_CLOCK, CALL_SENDMSG, CALL_FORK, CALL_COUNT } call;
static const char *const names[CALL_COUNT] = {
    "getppid", "write 1 byte to /dev/null", "clock_gettime (syscall, no vDSO)",
    "sendmsg on a bad fd", "fork + exit + wait (clone with flag check)"};

static double run(call c, int devnull)
{
    double best = 1e18;
    for (int r = 0; r < ROUNDS; r++) {
        int n = c == CALL_FORK ? FORKS : N;
        double t = now_ns();
        for (int i = 0; i < n; i++) {
            switch (c) {
            case CALL_GETPPID:
                (void)syscall(SYS_getppid);
                break;
            case CALL_WRITE:
                if (write(devnull, "x", 1) != 1) {
                    _exit(3);
                }
                break;
            case CALL_CLOCK: {
                struct timespec ts;
                (void)syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
                break;
            }
            case CALL_SENDMSG:
                (void)syscall(SYS_sendmsg, -1, NULL, 0);
                break;
            default: {
                pid_t p = fork();
                if (p == 0) {
                    _exit(0);
                }
                int st;
                (void)waitpid(p, &st, 0);
                break;
            }
            }
        }
        double d = (now_ns() - t) / n;
        best = d < best ? d : best;
    }
    return best;
}

/* One child measures every call with or without the filter; results come back in a pipe. */
static int measure(bool filtered, double out[CALL_COUNT])
{
    int p[2];
    if (pipe(p) < 0) {
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
            _exit(1);
        }
        if (filtered) {
            scmp_filter_ctx ctx = sv_seccomp_build();
            if (!ctx || seccomp_load(ctx) < 0) {
                _exit(2);
            }
        }
        int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        double r[CALL_COUNT];
        for (int c = 0; c < CALL_COUNT; c++) {
            r[c] = run((call)c, devnull);
        }
        _exit(write(p[1], r, sizeof r) == (ssize_t)sizeof r ? 0 : 4);
    }
    close(p[1]);
    ssize_t n = read(p[0], out, sizeof(double) * CALL_COUNT);
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    return n == (ssize_t)(sizeof(double) * CALL_COUNT) && WIFEXITED(st) && WEXITSTATUS(st) == 0
               ? 0
               : -1;
}

int main(void)
{
    double t = now_ns();
    scmp_filter_ctx ctx = sv_seccomp_build();
    double build_us = (now_ns() - t) / 1e3;
    if (!ctx) {
        fprintf(stderr, "bench-sandbox: the filter could not be built\n");
        return 1;
    }
    /* the BPF program the kernel gets: exported to a memfd to count its instructions */
    int mfd = memfd_create("bpf", MFD_CLOEXEC);
    long insns = -1;
    if (mfd >= 0 && seccomp_export_bpf(ctx, mfd) == 0) {
        insns = (long)lseek(mfd, 0, SEEK_END) / 8; /* struct sock_filter is 8 bytes */
    }
    seccomp_release(ctx);
    /* the two kinds of child alternate, and each figure is the best seen: other load on the
     * machine only ever adds time, so the minimum is the fairest comparison */
    double base[CALL_COUNT], filt[CALL_COUNT];
    for (int c = 0; c < CALL_COUNT; c++) {
        base[c] = filt[c] = 1e18;
    }
    for (int k = 0; k < CHILDREN; k++) {
        double b[CALL_COUNT], f[CALL_COUNT];
        if (measure(false, b) < 0 || measure(true, f) < 0) {
            fprintf(stderr, "bench-sandbox: a measuring child failed\n");
            return 1;
        }
        for (int c = 0; c < CALL_COUNT; c++) {
            base[c] = b[c] < base[c] ? b[c] : base[c];
            filt[c] = f[c] < filt[c] ? f[c] : filt[c];
        }
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("keeld's seccomp allow list, this machine: %ld cores online\n\n", cores);
    printf("%-44s %12s %12s %8s\n", "per call", "allow list", "no filter", "ratio");
    for (int c = 0; c < CALL_COUNT; c++) {
        printf("%-44s %9.0f ns %9.0f ns %7.2fx\n", names[c], filt[c], base[c],
               filt[c] / base[c]);
    }
    printf("\nfilter: %ld BPF instructions, built in %.0f us (once per keeld start)\n", insns,
           build_us);
    printf("best of %d children x %d rounds of %d calls (%d forks) each, the two kinds "
           "alternating; both columns measured in this run\n",
           CHILDREN, ROUNDS, N, FORKS);
    return 0;
}

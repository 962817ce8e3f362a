/* Intercore channel benchmark: two processes, one channel, against a Unix domain socket pair
 * (SOCK_SEQPACKET, which keeps message boundaries like a channel) measured in the same run.
 *
 *   round trip: one process sends a message, the other echoes it; p50/p99 of N round trips;
 *   one way:    one process sends M messages as fast as it can, the other receives them all;
 *               messages/s and MB/s of payload.
 *
 * Two channel modes: "block" sleeps on the eventfd doorbell at once when there is nothing to
 * do; "spin" polls the ring for up to 50 us first (KEEL spin_ns), which avoids the kernel
 * round trip when the peer answers quickly. Each case runs in a fresh child process.
 *
 * Usage: bench_icc [--quick] [--help] */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_icc.h"
#include "keel/icc.h"
#include "keel/manifest.h"

enum { T_DATA = 1, T_QUIT = 2 };
enum kind { K_UNIX, K_BLOCK, K_SPIN };
static const char *const kind_name[] = {"unix socket", "icc block", "icc spin"};
#define SPIN_NS 50000u

static int rtt_n = 20000, oneway_n = 200000;

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

_Noreturn void bench_die(const char *what)
{
    fprintf(stderr, "bench_icc: %s\n", what);
    exit(1);
}

/* One endpoint of either transport. */
typedef struct ep {
    enum kind kind;
    int fd;
    keel_icc *c;
} ep;

static void ep_send(ep *e, uint16_t type, const void *buf, size_t n)
{
    if (e->kind == K_UNIX) {
        char tmp[1 + 65536];
        tmp[0] = (char)type;
        memcpy(tmp + 1, buf, n);
        if (write(e->fd, tmp, n + 1) != (ssize_t)(n + 1))
            bench_die("write");
        return;
    }
    if (keel_icc_send(e->c, type, buf, n, -1) != KEEL_ICC_OK)
        bench_die("icc send");
}

static uint16_t ep_recv(ep *e, void *buf, size_t cap)
{
    if (e->kind == K_UNIX) {
        char tmp[1 + 65536];
        ssize_t n = read(e->fd, tmp, cap + 1);
        if (n < 1)
            bench_die("read");
        memcpy(buf, tmp + 1, (size_t)n - 1);
        return (uint16_t)tmp[0];
    }
    keel_icc_msg m;
    keel_icc_err rc = keel_icc_recv(e->c, &m, buf, cap, -1);
    if (rc != KEEL_ICC_OK)
        bench_die(keel_icc_err_name(rc));
    return m.type;
}

static keel_manifest manifest(const char *id, const char *peer)
{
    char text[512];
    snprintf(text, sizeof text,
             "{\"schema\":1,\"id\":\"%s\",\"name\":\"bench\",\"version\":\"1.0.0\",\"kind\":"
             "\"app\",\"capabilities\":{\"intercore\":[\"%s\"]}}",
             id, peer);
    keel_manifest m;
    keel_manifest_error err;
    if (keel_manifest_parse("bench", text, strlen(text), &m, &err) != KEEL_MANIFEST_OK)
        bench_die(err.msg);
    return m;
}

/* Forks the peer: it runs `child` on its endpoint and exits. Returns the parent's endpoint. */
static pid_t start(enum kind kind, ep *mine, void (*child)(ep *, size_t, int), size_t size,
                   int count)
{
    ep theirs = {.kind = kind, .fd = -1};
    mine->kind = kind;
    keel_icc_end ea, eb;
    int sv[2];
    if (kind == K_UNIX) {
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
            bench_die("socketpair");
        int buf = 4 << 20;
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
        setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    } else {
        keel_manifest a = manifest("11111111-2222-3333-4444-555555555555",
                                   "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
        keel_manifest b = manifest("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
                                   "11111111-2222-3333-4444-555555555555");
        keel_icc_config cfg = {.ring_bytes = 256 * 1024, .max_msg = 1024};
        if (keel_icc_pair(&a, &b, &cfg, &ea, &eb, NULL) != KEEL_ICC_OK)
            bench_die("pair");
    }
    keel_icc_open_opts opts = {.spin_ns = kind == K_SPIN ? SPIN_NS : 0};
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork");
    if (pid == 0) {
        if (kind == K_UNIX) {
            close(sv[0]);
            theirs.fd = sv[1];
        } else {
            keel_icc_end_close(&ea);
            if (keel_icc_open(&eb, &opts, &theirs.c) != KEEL_ICC_OK)
                bench_die("open");
        }
        child(&theirs, size, count);
        _exit(0);
    }
    if (kind == K_UNIX) {
        close(sv[1]);
        mine->fd = sv[0];
    } else {
        keel_icc_end_close(&eb);
        if (keel_icc_open(&ea, &opts, &mine->c) != KEEL_ICC_OK)
            bench_die("open");
    }
    return pid;
}

static void finish(ep *e, pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        bench_die("peer failed");
    if (e->kind == K_UNIX) {
        close(e->fd);
    } else {
        keel_icc_close(e->c);
    }
}

static void echo_child(ep *e, size_t size, int count)
{
    (void)count;
    char buf[1024];
    for (;;) {
        uint16_t t = ep_recv(e, buf, sizeof buf);
        if (t == T_QUIT)
            return;
        ep_send(e, T_DATA, buf, size);
    }
}

static void sink_child(ep *e, size_t size, int count)
{
    char buf[1024];
    for (int i = 0; i < count; i++)
        ep_recv(e, buf, sizeof buf);
    ep_send(e, T_DATA, buf, size < 1 ? size : 1);
    (void)ep_recv(e, buf, sizeof buf); /* quit */
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

typedef bench_result result;

static result measure(enum kind kind, size_t size)
{
    result r;
    char buf[1024] = {0};
    ep e;
    pid_t pid = start(kind, &e, echo_child, size, 0);
    int64_t *t = malloc(sizeof *t * (size_t)rtt_n);
    for (int i = 0; i < 1000; i++) { /* warm-up */
        ep_send(&e, T_DATA, buf, size);
        ep_recv(&e, buf, sizeof buf);
    }
    for (int i = 0; i < rtt_n; i++) {
        int64_t t0 = bench_now_ns();
        ep_send(&e, T_DATA, buf, size);
        ep_recv(&e, buf, sizeof buf);
        t[i] = bench_now_ns() - t0;
    }
    ep_send(&e, T_QUIT, buf, 0);
    finish(&e, pid);
    qsort(t, (size_t)rtt_n, sizeof *t, cmp64);
    r.p50_us = (double)t[rtt_n / 2] / 1e3;
    r.p99_us = (double)t[(int)(rtt_n * 0.99)] / 1e3;
    free(t);

    pid = start(kind, &e, sink_child, size, oneway_n);
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < oneway_n; i++)
        ep_send(&e, T_DATA, buf, size);
    ep_recv(&e, buf, sizeof buf); /* the sink has them all */
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    ep_send(&e, T_QUIT, buf, 0);
    finish(&e, pid);
    r.msgs_s = oneway_n / secs;
    r.mb_s = r.msgs_s * (double)size / 1e6;
    return r;
}

void bench_rtt(keel_icc *c, size_t size, int n, bench_result *r)
{
    char buf[1024] = {0};
    keel_icc_msg m;
    int64_t *t = malloc(sizeof *t * (size_t)n);
    for (int i = -200; i < n; i++) { /* the first 200 warm up */
        int64_t t0 = bench_now_ns();
        if (keel_icc_send(c, T_DATA, buf, size, 10000) != KEEL_ICC_OK ||
            keel_icc_recv(c, &m, buf, sizeof buf, 10000) != KEEL_ICC_OK) {
            bench_die("rt round trip");
        }
        if (i >= 0)
            t[i] = bench_now_ns() - t0;
    }
    qsort(t, (size_t)n, sizeof *t, cmp64);
    r->p50_us = (double)t[n / 2] / 1e3;
    r->p99_us = (double)t[(int)(n * 0.99)] / 1e3;
    free(t);
}

void bench_echo_rate(keel_icc *c, size_t size, int n, bench_result *r)
{
    char buf[1024] = {0};
    keel_icc_msg m;
    int sent = 0, got = 0;
    int64_t t0 = bench_now_ns();
    while (got < n) {
        while (sent < n && sent - got < 256 &&
               keel_icc_send(c, T_DATA, buf, size, 0) == KEEL_ICC_OK) {
            sent++;
        }
        keel_icc_err rc = keel_icc_recv(c, &m, buf, sizeof buf, sent > got ? 10000 : 0);
        if (rc == KEEL_ICC_OK) {
            got++;
        } else if (rc != KEEL_ICC_ERR_WOULD_BLOCK) {
            bench_die("rt echo");
        }
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    r->msgs_s = n / secs;
    r->mb_s = r->msgs_s * (double)size / 1e6;
}

static void rt_rows(const char *name, bool (*start)(bench_rt *, uint32_t), double unix_p50)
{
    static const size_t sizes[] = {16, 256, 1024};
    for (int spin = 0; spin < 2; spin++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            bench_rt rt;
            if (!start(&rt, spin ? SPIN_NS : 0)) {
                printf("| %zu | %s | (not built or not installed) | | | | | |\n", sizes[s], name);
                return;
            }
            bench_result r;
            bench_rtt(rt.c, sizes[s], rtt_n / 4, &r);
            bench_echo_rate(rt.c, sizes[s], oneway_n / 4, &r);
            bench_rt_stop(&rt);
            printf("| %zu | %s %s | %.2f | %.2f | %.0f | %.1f | %.2fx | |\n", sizes[s], name,
                   spin ? "spin" : "block", r.p50_us, r.p99_us, r.msgs_s, r.mb_s,
                   unix_p50 / r.p50_us);
            fflush(stdout);
        }
    }
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            rtt_n = 2000;
            oneway_n = 20000;
        } else {
            printf("usage: bench_icc [--quick]\n"
                   "Round trip (p50/p99) and one-way throughput of intercore channels between two\n"
                   "processes, beside a Unix socket pair measured in the same run.\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    static const size_t sizes[] = {16, 64, 256, 1024};
    double unix16_p50 = 0;
    printf("intercore channel vs Unix socket pair, two processes, %d round trips and %d one-way "
           "messages per case\n\n",
           rtt_n, oneway_n);
    printf("| size | transport | rtt p50 us | rtt p99 us | msgs/s | MB/s | p50 vs unix | msgs/s vs "
           "unix |\n");
    printf("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        result base = measure(K_UNIX, sizes[s]);
        if (s == 0)
            unix16_p50 = base.p50_us;
        for (int k = K_UNIX; k <= K_SPIN; k++) {
            result r = k == K_UNIX ? base : measure((enum kind)k, sizes[s]);
            printf("| %zu | %s | %.2f | %.2f | %.0f | %.1f | %.2fx | %.2fx |\n", sizes[s],
                   kind_name[k], r.p50_us, r.p99_us, r.msgs_s, r.mb_s, base.p50_us / r.p50_us,
                   r.msgs_s / base.msgs_s);
            fflush(stdout);
        }
    }
    printf(
        "\nWith the real-time core: the connected core (this process) and firmware/apps/icc_echo;"
        "\nmsgs/s is echoed messages with up to 256 in flight; p50 compared with the 16-byte Unix"
        "\nsocket round trip above.\n\n");
    printf("| size | real-time core | rtt p50 us | rtt p99 us | echoes/s | MB/s each way | p50 vs "
           "unix | |\n");
    printf("| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |\n");
    rt_rows("RTOS sim (eventfd -> virtual irq)", bench_rt_sim_start, unix16_p50);
    rt_rows("QEMU mps2-an386 (UART doorbell)", bench_rt_qemu_start, unix16_p50);
    rt_rows("QEMU via keel-qemu (bridged, as keeld runs it)", bench_rt_qemu_loader_start,
            unix16_p50);
    printf("\n\"x\" columns: how many times faster than the Unix socket pair (higher is better).\n"
           "spin polls the ring for up to %u us before sleeping on the doorbell.\n",
           SPIN_NS / 1000);
    return 0;
}

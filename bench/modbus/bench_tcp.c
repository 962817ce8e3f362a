/* MODBUS TCP on loopback: Keel's client and server, libmodbus's client and server, and a bare
 * TCP ping-pong of the same request and reply sizes (the floor no MODBUS stack can beat: one
 * write and one read per request on each side). Servers run in child processes, one thread
 * each with poll/select over all connections; clients run one thread per connection, each
 * with one request in flight, and record every round trip. */
#include <errno.h>
#include <modbus.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "keel/modbus.h"

enum { IMPL_FLOOR, IMPL_LIBMODBUS, IMPL_KEEL, IMPL_COUNT };
static const char *const impl_name[] = {"TCP ping-pong (floor)", "libmodbus", "Keel"};

typedef struct workload {
    const char *name;
    uint8_t fc;
    size_t req_adu, rsp_adu; /* for the floor */
} workload;

static const workload workloads[] = {
    {"FC3 read 125", 3, 12, 259},
    {"FC16 write 123", 16, 259, 12},
    {"FC23 r125/w121", 23, 259, 259},
};

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static int connect_port(uint16_t port)
{
    for (int tries = 0; tries < 200; tries++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons(port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            return fd;
        }
        close(fd);
        struct timespec ts = {0, 10000000}; /* the child is still starting: retry */
        nanosleep(&ts, NULL);
    }
    return -1;
}

/* ---- servers (child processes) ---- */

static void floor_server(uint16_t port, size_t req, size_t rsp)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 64) < 0) {
        _exit(1);
    }
    struct pollfd p[65];
    size_t have[65] = {0};
    int n = 1;
    p[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
    uint8_t buf[4096], out[300] = {0};
    for (;;) {
        poll(p, (nfds_t)n, -1);
        if ((p[0].revents & POLLIN) && n < 65) {
            int fd = accept(lfd, NULL, NULL);
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            p[n] = (struct pollfd){.fd = fd, .events = POLLIN};
            have[n++] = 0;
        }
        for (int i = 1; i < n; i++) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP))) {
                continue;
            }
            ssize_t r = recv(p[i].fd, buf, sizeof buf, 0);
            if (r <= 0) {
                close(p[i].fd);
                p[i].fd = -1;
                continue;
            }
            have[i] += (size_t)r;
            while (have[i] >= req) {
                have[i] -= req;
                send(p[i].fd, out, rsp, MSG_NOSIGNAL);
            }
        }
    }
}

static void libmodbus_server(uint16_t port)
{
    modbus_t *ctx = modbus_new_tcp("127.0.0.1", port);
    modbus_mapping_t *mb = modbus_mapping_new(0, 0, 1000, 0);
    int lfd = modbus_tcp_listen(ctx, 64);
    if (lfd < 0) {
        _exit(1);
    }
    /* libmodbus's documented way to serve many connections: select() and modbus_set_socket. */
    fd_set all;
    FD_ZERO(&all);
    FD_SET(lfd, &all);
    int maxfd = lfd;
    uint8_t q[MODBUS_TCP_MAX_ADU_LENGTH];
    for (;;) {
        fd_set rd = all;
        if (select(maxfd + 1, &rd, NULL, NULL, NULL) < 0) {
            continue;
        }
        for (int fd = 0; fd <= maxfd; fd++) {
            if (!FD_ISSET(fd, &rd)) {
                continue;
            }
            if (fd == lfd) {
                int c = accept(lfd, NULL, NULL);
                if (c >= 0) {
                    FD_SET(c, &all);
                    maxfd = c > maxfd ? c : maxfd;
                }
                continue;
            }
            modbus_set_socket(ctx, fd);
            int n = modbus_receive(ctx, q);
            if (n > 0) {
                modbus_reply(ctx, q, n, mb);
            } else if (n < 0) {
                close(fd);
                FD_CLR(fd, &all);
            }
        }
    }
}

static void keel_ready(void *ctx, uint16_t port)
{
    (void)ctx;
    (void)port;
}

static void keel_server(uint16_t port)
{
    static uint16_t holding[1000];
    static keel_modbus_map map = {.holding_count = 1000, .holding = holding};
    keel_modbus_slave s;
    keel_modbus_slave_init(&s, 0, &keel_modbus_map_model, &map);
    char ps[16];
    snprintf(ps, sizeof ps, "%u", port);
    keel_modbus_server_opts o = {.bind = "127.0.0.1", .port = ps, .on_ready = keel_ready};
    static volatile int stop;
    keel_modbus_err e = keel_modbus_serve(&s, &o, &stop);
    _exit(e == KEEL_MODBUS_OK ? 0 : 1);
}

static pid_t start_server(int impl, const workload *w, uint16_t port)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (impl == IMPL_FLOOR) {
            floor_server(port, w->req_adu, w->rsp_adu);
        } else if (impl == IMPL_LIBMODBUS) {
            libmodbus_server(port);
        } else {
            keel_server(port);
        }
        _exit(0);
    }
    return pid;
}

/* ---- clients ---- */

typedef struct worker {
    int impl;
    const workload *w;
    uint16_t port;
    uint64_t stop_ns;
    uint32_t *lat_ns;
    size_t cap, n;
    int failed;
    pthread_t th;
} worker;

static void record(worker *k, uint64_t t0)
{
    if (k->n < k->cap) {
        k->lat_ns[k->n] = (uint32_t)(bench_now_ns() - t0);
    }
    k->n++;
}

static void *floor_client(worker *k)
{
    int fd = connect_port(k->port);
    uint8_t req[300] = {0}, rsp[300];
    while (fd >= 0 && bench_now_ns() < k->stop_ns) {
        uint64_t t0 = bench_now_ns();
        if (send(fd, req, k->w->req_adu, MSG_NOSIGNAL) != (ssize_t)k->w->req_adu) {
            k->failed = 1;
            break;
        }
        size_t got = 0;
        while (got < k->w->rsp_adu) {
            ssize_t r = recv(fd, rsp, k->w->rsp_adu - got, 0);
            if (r <= 0) {
                k->failed = 1;
                goto out;
            }
            got += (size_t)r;
        }
        record(k, t0);
    }
out:
    if (fd >= 0) {
        close(fd);
    }
    return NULL;
}

static void *libmodbus_client(worker *k)
{
    modbus_t *ctx = modbus_new_tcp("127.0.0.1", k->port);
    if (modbus_connect(ctx) < 0) {
        k->failed = 1;
        modbus_free(ctx);
        return NULL;
    }
    int one = 1;
    setsockopt(modbus_get_socket(ctx), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    uint16_t regs[125], vals[123] = {0};
    while (bench_now_ns() < k->stop_ns) {
        uint64_t t0 = bench_now_ns();
        int r = k->w->fc == 3    ? modbus_read_registers(ctx, 0, 125, regs)
                : k->w->fc == 16 ? modbus_write_registers(ctx, 0, 123, vals)
                                 : modbus_write_and_read_registers(ctx, 0, 121, vals, 0, 125, regs);
        if (r < 0) {
            k->failed = 1;
            break;
        }
        record(k, t0);
    }
    modbus_close(ctx);
    modbus_free(ctx);
    return NULL;
}

static void *keel_client(worker *k)
{
    char ps[16];
    snprintf(ps, sizeof ps, "%u", k->port);
    keel_modbus_client *c = NULL;
    for (int tries = 0; tries < 200 && keel_modbus_client_tcp("127.0.0.1", ps, false, &c);
         tries++) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    if (!c) {
        k->failed = 1;
        return NULL;
    }
    uint16_t regs[125], vals[123] = {0};
    while (bench_now_ns() < k->stop_ns) {
        uint64_t t0 = bench_now_ns();
        keel_modbus_err e =
            k->w->fc == 3    ? keel_modbus_read_registers(c, 1, 3, 0, 125, regs)
            : k->w->fc == 16 ? keel_modbus_write_registers(c, 1, 0, 123, vals)
                             : keel_modbus_read_write_registers(c, 1, 0, 125, regs, 0, 121, vals);
        if (e != KEEL_MODBUS_OK) {
            k->failed = 1;
            break;
        }
        record(k, t0);
    }
    keel_modbus_client_close(c);
    return NULL;
}

static void *run_worker(void *arg)
{
    worker *k = arg;
    return k->impl == IMPL_FLOOR       ? floor_client(k)
           : k->impl == IMPL_LIBMODBUS ? libmodbus_client(k)
                                       : keel_client(k);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct result {
    double rps, p50_us, p99_us;
    int failed;
} result;

static result measure(int impl, const workload *w, int conns)
{
    uint16_t port = free_port();
    pid_t pid = start_server(impl, w, port);
    int probe = connect_port(port); /* the clock starts once the server accepts */
    if (probe >= 0) {
        close(probe);
    }
    worker k[16];
    size_t cap = 4u << 20;
    uint32_t *lat = malloc(cap * sizeof *lat);
    uint64_t start = bench_now_ns();
    for (int i = 0; i < conns; i++) {
        k[i] = (worker){impl,
                        w,
                        port,
                        start + (uint64_t)(bench_seconds() * 1e9),
                        lat + i * (cap / 16),
                        cap / 16,
                        0,
                        0,
                        0};
        pthread_create(&k[i].th, NULL, run_worker, &k[i]);
    }
    uint64_t total = 0;
    size_t kept = 0;
    result r = {0};
    for (int i = 0; i < conns; i++) {
        pthread_join(k[i].th, NULL);
        total += k[i].n;
        r.failed |= k[i].failed;
        size_t m = k[i].n < k[i].cap ? k[i].n : k[i].cap;
        memmove(lat + kept, k[i].lat_ns, m * sizeof *lat);
        kept += m;
    }
    double secs = (double)(bench_now_ns() - start) / 1e9;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    qsort(lat, kept, sizeof *lat, cmp_u32);
    r.rps = (double)total / secs;
    if (kept) {
        r.p50_us = lat[kept / 2] / 1e3;
        r.p99_us = lat[kept * 99 / 100] / 1e3;
    }
    free(lat);
    return r;
}

void bench_tcp(void)
{
    signal(SIGPIPE, SIG_IGN);
    printf("## MODBUS TCP on loopback, one request in flight per connection (best of 3)\n\n");
    printf("| workload | conns | implementation | req/s | p50 us | p99 us | of floor | vs "
           "libmodbus |\n");
    printf("|---|---:|---|---:|---:|---:|---:|---:|\n");
    const int conn_counts[] = {1, 16};
    for (size_t wi = 0; wi < sizeof workloads / sizeof workloads[0]; wi++) {
        for (int ci = 0; ci < 2; ci++) {
            /* Three rounds, interleaved, and the best round of each: the machine is shared, and
             * the best round is the one least disturbed by others. */
            result res[IMPL_COUNT] = {{0}};
            for (int round = 0; round < 3; round++) {
                for (int impl = 0; impl < IMPL_COUNT; impl++) {
                    result r = measure(impl, &workloads[wi], conn_counts[ci]);
                    if (r.rps > res[impl].rps || round == 0) {
                        res[impl] = r;
                    }
                }
            }
            for (int impl = 0; impl < IMPL_COUNT; impl++) {
                printf("| %s | %d | %s | %.0f | %.1f | %.1f | %.0f%% | ", workloads[wi].name,
                       conn_counts[ci], impl_name[impl], res[impl].rps, res[impl].p50_us,
                       res[impl].p99_us, 100.0 * res[impl].rps / res[IMPL_FLOOR].rps);
                if (impl == IMPL_FLOOR) {
                    printf("|");
                } else {
                    printf("%.2fx |", res[impl].rps / res[IMPL_LIBMODBUS].rps);
                }
                printf("%s\n", res[impl].failed ? " (errors!)" : "");
            }
            fflush(stdout);
        }
    }
    printf("\n");
}

/* bench-app_curl: the cost of running libcurl over a tunnel keeld hands over, against libcurl
 * connecting by itself, in the same run against the same nginx (TLS, loopback).
 *
 * "handed over": a child process under keeld's answers to socket() (EACCES) and connect() (0)
 * asks its parent for a connection over a unix socket, the parent connects to nginx and sends
 * the fd back with SCM_RIGHTS (what keeld does for keel_app_cloud_open), and the child lends it
 * to curl with keel_app_curl_attach. "curl's own": the same child without the filter, curl
 * resolving and connecting itself, connection reuse off as with a tunnel. Each row: a full
 * https GET (TCP connect, TLS handshake with certificate check, request, body), median of N.
 * Rows for a 1 KiB and a 4 MiB body; the ratio is handed-over / curl's own.
 */
#include <errno.h>
#include <netinet/in.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keel/app_curl.h"
#include "nginx_site.h"

#define RUNS 41

static uint16_t port;
static char ca[600];

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static size_t sink(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    *(size_t *)arg += size * n;
    return size * n;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The parent's side of a hand-over: one connected socket per byte asked for. */
static void serve_fds(int ctl)
{
    char ask;
    while (read(ctl, &ask, 1) == 1) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons(port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
            return;
        }
        char cbuf[CMSG_SPACE(sizeof(int))] = {0};
        struct iovec iov = {.iov_base = "t", .iov_len = 1};
        struct msghdr m = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof fd);
        if (sendmsg(ctl, &m, 0) != 1) {
            close(fd);
            return;
        }
        close(fd);
    }
}

static int take_fd(int ctl)
{
    char b, cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = &b, .iov_len = 1};
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    if (write(ctl, "?", 1) != 1 || recvmsg(ctl, &m, 0) != 1) {
        return -1;
    }
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    int fd = -1;
    if (cm && cm->cmsg_type == SCM_RIGHTS) {
        memcpy(&fd, CMSG_DATA(cm), sizeof fd);
    }
    return fd;
}

static int keeld_like_filter(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    int rc = !ctx ? -1 : seccomp_rule_add(ctx, SCMP_ACT_ERRNO(0), SCMP_SYS(connect), 0);
    if (rc == 0) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 0);
    }
    if (rc == 0) {
        rc = seccomp_load(ctx);
    }
    seccomp_release(ctx);
    return rc;
}

/* Runs RUNS GETs of path in a child; writes the median in microseconds to *med. */
static int measure(bool handed, const char *path, size_t want, double *med)
{
    int ctl[2], res[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, ctl) != 0 || pipe(res) != 0) {
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(ctl[0]);
        close(res[0]);
        double t[RUNS];
        int ok = !handed || keeld_like_filter() == 0;
        char url[200];
        snprintf(url, sizeof url, "https://localhost:%u/%s", port, path);
        for (int i = 0; ok && i < RUNS; i++) {
            size_t got = 0;
            double t0 = now_us();
            CURL *c = curl_easy_init();
            keel_app_curl tun = {.fd = -1};
            if (handed) {
                ok = keel_app_curl_attach(&tun, c, url, take_fd(ctl[1])) == KEEL_APP_OK;
            } else {
                curl_easy_setopt(c, CURLOPT_URL, url);
                curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
            }
            curl_easy_setopt(c, CURLOPT_CAINFO, ca);
            curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
            curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
            curl_easy_setopt(c, CURLOPT_WRITEDATA, &got);
            ok = ok && curl_easy_perform(c) == CURLE_OK && got == want;
            curl_easy_cleanup(c);
            keel_app_curl_release(&tun);
            t[i] = now_us() - t0;
        }
        qsort(t, RUNS, sizeof t[0], cmp);
        double m = ok ? t[RUNS / 2] : -1;
        _exit(write(res[1], &m, sizeof m) == sizeof m ? 0 : 1);
    }
    close(ctl[1]);
    close(res[1]);
    serve_fds(ctl[0]);
    close(ctl[0]);
    ssize_t n = read(res[0], med, sizeof *med);
    close(res[0]);
    int st;
    waitpid(pid, &st, 0);
    return n == sizeof *med && *med > 0 ? 0 : -1;
}

static int write_file(const char *path, size_t n)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        fputc('a' + (int)(i % 26), f);
    }
    return fclose(f);
}

int main(void)
{
    const char *work = kf_tmpdir("bench_app_curl");
    char cmd[1500], site[600], p[700], cert[700], key[700], nw[700];
    snprintf(cmd, sizeof cmd, "%s/scripts/cloud-certs.sh %s/pki >/dev/null", kf_source_dir(), work);
    snprintf(site, sizeof site, "%s/site", work);
    snprintf(ca, sizeof ca, "%s/pki/ca.pem", work);
    snprintf(cert, sizeof cert, "%s/pki/server.pem", work);
    snprintf(key, sizeof key, "%s/pki/server.key", work);
    snprintf(nw, sizeof nw, "%s/nginx", work);
    mkdir(site, 0755);
    mkdir(nw, 0755);
    kf_proc nginx;
    int rc = system(cmd);
    snprintf(p, sizeof p, "%s/small", site);
    rc |= write_file(p, 1024);
    snprintf(p, sizeof p, "%s/big", site);
    rc |= write_file(p, 4u << 20);
    if (rc != 0 || nginx_site_start_tls(&nginx, nw, site, cert, key, &port) != 0) {
        fprintf(stderr, "bench-app_curl: cannot set up nginx\n");
        kf_cleanup();
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    printf("https GET, TLS nginx on loopback, median of %d, new connection each\n", RUNS);
    printf("%-10s %18s %18s %8s\n", "body", "curl's own (us)", "handed over (us)", "ratio");
    struct {
        const char *path, *name;
        size_t size;
    } rows[] = {{"small", "1 KiB", 1024}, {"big", "4 MiB", 4u << 20}};
    int fail = 0;
    for (size_t i = 0; i < 2; i++) {
        double own = 0, handed = 0;
        if (measure(false, rows[i].path, rows[i].size, &own) != 0 ||
            measure(true, rows[i].path, rows[i].size, &handed) != 0) {
            printf("%-10s failed\n", rows[i].name);
            fail = 1;
            continue;
        }
        printf("%-10s %18.0f %18.0f %7.2fx\n", rows[i].name, own, handed, handed / own);
    }
    kf_stop(&nginx, 2000);
    curl_global_cleanup();
    kf_cleanup();
    return fail;
}

/* Client of keeld's control socket (ctl.h), shared by the keel tool, tests and benchmarks. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

const char *keel_supervisor_ctl_default_path(void)
{
    const char *p = getenv("KEEL_SOCKET");
    return p && *p ? p : "/run/keel/keeld.sock";
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int keel_supervisor_ctl(const char *path, const char *request, char *out, size_t cap,
                        int timeout_ms)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path || cap == 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    size_t rl = strlen(request);
    if (write(fd, request, rl) != (ssize_t)rl || write(fd, "\n", 1) != 1) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    size_t n = 0;
    long long end = now_ms() + timeout_ms;
    for (;;) {
        long long left = end - now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) != 1) {
            close(fd);
            errno = ETIMEDOUT;
            return -1;
        }
        char tmp[4096];
        ssize_t r = read(fd, tmp, sizeof tmp);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        size_t take = (size_t)r < cap - 1 - n ? (size_t)r : cap - 1 - n;
        memcpy(out + n, tmp, take);
        n += take;
    }
    close(fd);
    out[n] = '\0';
    if (strncmp(out, "OK\n", 3) == 0) {
        memmove(out, out + 3, n - 3 + 1);
        return 0;
    }
    if (strncmp(out, "ERR ", 4) == 0) {
        return 1;
    }
    errno = EPROTO;
    return -1;
}

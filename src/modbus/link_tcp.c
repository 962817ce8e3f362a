/* The TCP backend: a connected stream socket, IPv4 or IPv6 (getaddrinfo decides), with
 * Nagle off so a request leaves in one segment at once. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "link.h"

uint64_t keel_modbus_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static keel_modbus_err tcp_send(keel_modbus_link *l, const uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t n = send(l->fd, buf, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno == EPIPE || errno == ECONNRESET ? KEEL_MODBUS_ERR_CLOSED
                                                         : KEEL_MODBUS_ERR_IO;
        }
        buf += n;
        len -= (size_t)n;
    }
    return KEEL_MODBUS_OK;
}

void keel_modbus_link_tcp_set_timeout(keel_modbus_link *l, uint32_t timeout_us)
{
    struct timeval tv = {(time_t)(timeout_us / 1000000u), (suseconds_t)(timeout_us % 1000000u)};
    if (setsockopt(l->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0) {
        l->rcvtimeo_ms = (int)((timeout_us + 999) / 1000);
    }
}

static keel_modbus_err tcp_recv(keel_modbus_link *l, uint8_t *buf, size_t cap, int timeout_ms,
                                size_t *got)
{
    *got = 0;
    if (l->rcvtimeo_ms > 0 && timeout_ms > 0 && timeout_ms >= l->rcvtimeo_ms / 2) {
        /* Most of the reply timeout is left: wait in recv() itself (one system call, not
         * two). It may wait up to the socket's timeout, a little past the master's deadline;
         * the master then reports the timeout. */
        ssize_t n = recv(l->fd, buf, cap, 0);
        if (n > 0) {
            *got = (size_t)n;
            return KEEL_MODBUS_OK;
        }
        if (n == 0) {
            return KEEL_MODBUS_ERR_CLOSED;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            return KEEL_MODBUS_ERR_TIMEOUT;
        }
        return errno == ECONNRESET ? KEEL_MODBUS_ERR_CLOSED : KEEL_MODBUS_ERR_IO;
    }
    struct pollfd p = {.fd = l->fd, .events = POLLIN};
    int r;
    do {
        r = poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        return KEEL_MODBUS_ERR_IO;
    }
    if (r == 0) {
        return KEEL_MODBUS_ERR_TIMEOUT;
    }
    ssize_t n = recv(l->fd, buf, cap, 0);
    if (n == 0) {
        return KEEL_MODBUS_ERR_CLOSED;
    }
    if (n < 0) {
        return errno == ECONNRESET ? KEEL_MODBUS_ERR_CLOSED : KEEL_MODBUS_ERR_IO;
    }
    *got = (size_t)n;
    return KEEL_MODBUS_OK;
}

static void tcp_flush(keel_modbus_link *l)
{
    uint8_t junk[256];
    while (recv(l->fd, junk, sizeof junk, MSG_DONTWAIT) > 0) {
    }
}

static void tcp_close(keel_modbus_link *l)
{
    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
}

static const keel_modbus_backend tcp_backend = {"tcp", tcp_send, tcp_recv, tcp_flush, tcp_close};

void keel_modbus_link_tcp_wrap(keel_modbus_link *l, int fd)
{
    memset(l, 0, sizeof *l);
    l->be = &tcp_backend;
    l->fd = fd;
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

keel_modbus_err keel_modbus_link_tcp_connect(keel_modbus_link *l, const char *host,
                                             const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        return KEEL_MODBUS_ERR_ARG;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        return KEEL_MODBUS_ERR_IO;
    }
    keel_modbus_link_tcp_wrap(l, fd);
    return KEEL_MODBUS_OK;
}

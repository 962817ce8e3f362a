/* The server: a slave answering over TCP (many connections, IPv4 and IPv6, MBAP or RTU
 * framing) or on a serial line. One thread, poll(2) over the listener and every connection;
 * a request is answered as soon as its last byte is in, and a connection that sends a frame
 * that cannot be resynchronised (a bad MBAP header, an RTU function code that cannot be sized)
 * is closed, since nothing after it in the stream can be trusted. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "link.h"

#define HOST_SERIAL_MIN_SILENCE_US 5000u

typedef struct conn {
    keel_modbus_link link;
    uint8_t rx[2 * KEEL_MODBUS_MAX_TCP_ADU];
    size_t rx_len;
} conn;

static int listen_on(const char *bind_addr, const char *port, uint16_t *bound)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    if (getaddrinfo(bind_addr, port, &hints, &res) != 0) {
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            continue;
        }
        int one = 1, zero = 0;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (a->ai_family == AF_INET6) {
            /* "::" serves IPv4 clients too, as IPv4-mapped addresses. */
            (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        }
        if (bind(fd, a->ai_addr, a->ai_addrlen) < 0 || listen(fd, 64) < 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
            *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                    : ((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    return fd;
}

/* Answers every complete request at the front of c->rx. False: close the connection. */
static bool serve_stream(keel_modbus_slave *s, conn *c, bool rtu)
{
    size_t at = 0;
    bool ok = true;
    while (at < c->rx_len) {
        uint8_t out[KEEL_MODBUS_MAX_TCP_ADU];
        size_t out_len = 0, used = 0;
        if (rtu) {
            size_t want = keel_modbus_rtu_frame_len(c->rx + at, c->rx_len - at, true);
            if (want == SIZE_MAX || want > KEEL_MODBUS_MAX_RTU_ADU) {
                s->counters.bus_messages++;
                s->counters.bus_comm_errors++;
                ok = false;
                break;
            }
            if (want == 0 || c->rx_len - at < want) {
                break;
            }
            used = want;
            if (keel_modbus_slave_rtu(s, c->rx + at, want, out, sizeof out, &out_len) !=
                KEEL_MODBUS_OK) {
                out_len = 0; /* a bad frame: counted by the slave, dropped */
            }
        } else {
            keel_modbus_err e = keel_modbus_slave_tcp(s, c->rx + at, c->rx_len - at, &used, out,
                                                      sizeof out, &out_len);
            if (e == KEEL_MODBUS_ERR_SHORT) {
                break;
            }
            if (e != KEEL_MODBUS_OK) {
                ok = false;
                break;
            }
        }
        at += used;
        if (out_len && c->link.be->send(&c->link, out, out_len) != KEEL_MODBUS_OK) {
            ok = false;
            break;
        }
    }
    memmove(c->rx, c->rx + at, c->rx_len - at);
    c->rx_len -= at;
    return ok;
}

static keel_modbus_err serve_tcp(keel_modbus_slave *s, const keel_modbus_server_opts *o,
                                 volatile const int *stop)
{
    uint16_t port = 0;
    const char *bind_addr = o->bind ? o->bind : "::";
    int lfd = listen_on(bind_addr, o->port ? o->port : "502", &port);
    if (lfd < 0 && !o->bind) {
        lfd = listen_on("0.0.0.0", o->port ? o->port : "502", &port); /* no IPv6 here */
    }
    if (lfd < 0) {
        return KEEL_MODBUS_ERR_IO;
    }
    unsigned max = o->max_connections ? o->max_connections : 64;
    conn *conns = calloc(max, sizeof *conns);
    struct pollfd *pfd = calloc(max + 1, sizeof *pfd);
    if (!conns || !pfd) {
        free(conns);
        free(pfd);
        close(lfd);
        return KEEL_MODBUS_ERR_NO_SPACE;
    }
    for (unsigned i = 0; i < max; i++) {
        conns[i].link.fd = -1;
    }
    if (o->on_ready) {
        o->on_ready(o->ctx, port);
    }
    keel_modbus_err result = KEEL_MODBUS_OK;
    /* pfd[1..n] and idx[] cover only the open connections: poll's cost grows with the
     * array, not with max_connections. */
    unsigned *idx = calloc(max + 1, sizeof *idx);
    while (idx && !*stop) {
        pfd[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
        nfds_t n = 1;
        for (unsigned i = 0; i < max; i++) {
            if (conns[i].link.fd >= 0) {
                idx[n] = i;
                pfd[n++] = (struct pollfd){.fd = conns[i].link.fd, .events = POLLIN};
            }
        }
        int r = poll(pfd, n, 100);
        if (r < 0 && errno != EINTR) {
            result = KEEL_MODBUS_ERR_IO;
            break;
        }
        if (r <= 0) {
            continue;
        }
        for (nfds_t k = 1; k < n; k++) {
            if (!(pfd[k].revents & (POLLIN | POLLHUP | POLLERR))) {
                continue;
            }
            conn *c = &conns[idx[k]];
            ssize_t got = recv(c->link.fd, c->rx + c->rx_len, sizeof c->rx - c->rx_len, 0);
            if (got <= 0) {
                c->link.be->close(&c->link);
                continue;
            }
            c->rx_len += (size_t)got;
            if (!serve_stream(s, c, o->rtu_over_tcp)) {
                c->link.be->close(&c->link);
            }
        }
        if (pfd[0].revents & POLLIN) {
            int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0) {
                unsigned i = 0;
                while (i < max && conns[i].link.fd >= 0) {
                    i++;
                }
                if (i == max) {
                    close(fd); /* full: refuse rather than starve the others */
                } else {
                    keel_modbus_link_tcp_wrap(&conns[i].link, fd);
                    conns[i].rx_len = 0;
                }
            }
        }
    }
    if (!idx) {
        result = KEEL_MODBUS_ERR_NO_SPACE;
    }
    free(idx);
    for (unsigned i = 0; i < max; i++) {
        if (conns[i].link.fd >= 0) {
            conns[i].link.be->close(&conns[i].link);
        }
    }
    free(conns);
    free(pfd);
    close(lfd);
    return result;
}

static keel_modbus_err serve_serial(keel_modbus_slave *s, const keel_modbus_server_opts *o,
                                    volatile const int *stop)
{
    keel_modbus_link link;
    keel_modbus_err e = keel_modbus_link_serial_open(&link, o->device, &o->serial);
    if (e != KEEL_MODBUS_OK) {
        return e;
    }
    keel_modbus_rtu_timing timing;
    if (keel_modbus_rtu_timing_for(&o->serial.line, &timing) != KEEL_MODBUS_OK) {
        link.be->close(&link);
        return KEEL_MODBUS_ERR_ARG;
    }
    uint32_t silence =
        timing.t35_us > HOST_SERIAL_MIN_SILENCE_US ? timing.t35_us : HOST_SERIAL_MIN_SILENCE_US;
    if (o->on_ready) {
        o->on_ready(o->ctx, 0);
    }
    uint8_t rx[2 * KEEL_MODBUS_MAX_RTU_ADU];
    size_t rx_len = 0;
    while (!*stop) {
        int wait_ms = rx_len ? (int)((silence + 999) / 1000) : 100;
        size_t got = 0;
        e = link.be->recv(&link, rx + rx_len, sizeof rx - rx_len, wait_ms, &got);
        if (e == KEEL_MODBUS_ERR_CLOSED) {
            /* A pty whose other side is not open yet (or closed): wait, do not spin. */
            struct pollfd none = {.fd = -1};
            (void)poll(&none, 0, 50);
            continue;
        }
        if (e != KEEL_MODBUS_OK && e != KEEL_MODBUS_ERR_TIMEOUT) {
            break;
        }
        rx_len += got;
        /* A frame ends by its length, or by silence (e == TIMEOUT with bytes pending), or
         * when the buffer is full of garbage. */
        size_t want = rx_len ? keel_modbus_rtu_frame_len(rx, rx_len, true) : 0;
        size_t take = 0;
        if (want && want != SIZE_MAX && rx_len >= want) {
            take = want;
        } else if (rx_len && (e == KEEL_MODBUS_ERR_TIMEOUT || rx_len == sizeof rx)) {
            take = rx_len;
        }
        if (!take) {
            continue;
        }
        uint8_t out[KEEL_MODBUS_MAX_RTU_ADU];
        size_t out_len = 0;
        if (keel_modbus_slave_rtu(s, rx, take, out, sizeof out, &out_len) != KEEL_MODBUS_OK) {
            out_len = 0; /* a bad frame: counted by the slave, dropped */
        }
        if (out_len) {
            (void)link.be->send(&link, out, out_len);
        }
        memmove(rx, rx + take, rx_len - take);
        rx_len -= take;
    }
    link.be->close(&link);
    return e == KEEL_MODBUS_ERR_TIMEOUT ? KEEL_MODBUS_OK : e;
}

keel_modbus_err keel_modbus_serve(keel_modbus_slave *slave, const keel_modbus_server_opts *opts,
                                  volatile const int *stop)
{
    if (!slave || !slave->model || !opts || !stop) {
        return KEEL_MODBUS_ERR_ARG;
    }
    return opts->device ? serve_serial(slave, opts, stop) : serve_tcp(slave, opts, stop);
}

/* The Linux side of an intercore channel: the region is a sealed memfd, each direction's
 * doorbell an eventfd, and a SOCK_SEQPACKET socketpair between the two ends carries nothing but
 * its hang-up, which is how a side learns that its peer died. An endpoint gives one epoll fd
 * for the caller's event loop.
 *
 * Waiting: a side first polls the ring for spin_ns (cheap when the peer answers within a few
 * microseconds), then announces its wait in the region (keel_icc_ring_arm_*) and sleeps in
 * poll() on its doorbell and the link. The peer rings only if the flag was set, so a busy
 * channel makes no system calls at all.
 *
 * An endpoint is used by one thread at a time (the rings are single-producer, single-consumer).
 *
 * Peer restart: the ring indices live in the region, which outlives both processes while the
 * supervisor holds the memfd. A side that re-opens the same end resumes exactly after the last
 * message it consumed (acknowledged) and after the last one it published; messages queued for
 * it while it was down are delivered once, in order. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keel/icc.h"
#include "icc_linux.h"

/* A message that arrived while keel_icc_request waited for its reply. */
typedef struct stash_item {
    struct stash_item *next;
    keel_icc_msg msg;
    uint8_t data[];
} stash_item;

struct keel_icc {
    keel_icc_ring r;
    void *map;
    size_t map_len;
    int mem, bell_in, bell_out, link, ep;
    uint32_t spin_ns;
    bool gone;
    bool uart;    /* doorbell is a byte stream (QEMU chardev): 1 byte rings, EOF = gone */
    bool own_map; /* the region was mapped by keel_icc_open (else the caller unmaps it) */
    uint32_t next_corr;
    stash_item *stash_head, *stash_tail;
    uint8_t *scratch; /* max_msg bytes, for messages set aside by request */
};

void keel_icc_close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
    }
    *fd = -1;
}

void keel_icc_end_clear(keel_icc_end *e)
{
    memset(e, 0, sizeof *e);
    e->mem = e->bell_in = e->bell_out = e->link = -1;
}

/* Attaches to a mapped region and sets up waiting on bell_in and link (which may be the same
 * fd). On failure nothing is closed or unmapped: the caller still owns everything. */
static keel_icc_err attach(keel_icc *c, keel_icc_side side, int bell_in, int link)
{
    keel_icc_err rc = keel_icc_ring_attach(&c->r, c->map, c->map_len, side);
    if (rc != KEEL_ICC_OK) {
        return rc;
    }
    c->scratch = malloc(c->r.max_msg);
    c->ep = epoll_create1(EPOLL_CLOEXEC);
    if (!c->scratch || c->ep < 0) {
        return KEEL_ICC_ERR_IO;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};
    ev.data.fd = bell_in;
    struct epoll_event lv = {.events = EPOLLIN | EPOLLRDHUP};
    lv.data.fd = link;
    if (epoll_ctl(c->ep, EPOLL_CTL_ADD, bell_in, &ev) != 0 ||
        (link != bell_in && epoll_ctl(c->ep, EPOLL_CTL_ADD, link, &lv) != 0)) {
        return KEEL_ICC_ERR_IO;
    }
    return KEEL_ICC_OK;
}

static void free_partial(keel_icc *c)
{
    if (c->ep >= 0)
        close(c->ep);
    free(c->scratch);
    if (c->own_map)
        munmap(c->map, c->map_len);
    free(c);
}

keel_icc_err keel_icc_open(keel_icc_end *e, const keel_icc_open_opts *opts, keel_icc **out)
{
    *out = NULL;
    if (!e || e->mem < 0 || e->bell_in < 0 || e->bell_out < 0 || e->link < 0) {
        return KEEL_ICC_ERR_ARG;
    }
    struct stat st;
    if (fstat(e->mem, &st) != 0) {
        return KEEL_ICC_ERR_IO;
    }
    int seals = fcntl(e->mem, F_GET_SEALS);
    if (seals < 0 || (seals & KEEL_ICC_REQUIRED_SEALS) != KEEL_ICC_REQUIRED_SEALS ||
        st.st_size <= 0 || (uint64_t)st.st_size > keel_icc_region_bytes(KEEL_ICC_MAX_RING)) {
        return KEEL_ICC_ERR_REGION;
    }
    keel_icc *c = calloc(1, sizeof *c);
    if (!c) {
        return KEEL_ICC_ERR_IO;
    }
    c->ep = -1;
    c->map_len = (size_t)st.st_size;
    c->map = mmap(NULL, c->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, e->mem, 0);
    if (c->map == MAP_FAILED) {
        free(c);
        return KEEL_ICC_ERR_IO;
    }
    c->own_map = true;
    keel_icc_err rc = attach(c, e->side, e->bell_in, e->link);
    /* The region's IDs must be the ones the supervisor stamped on this end. */
    if (rc == KEEL_ICC_OK &&
        (memcmp(c->r.self.b, e->self.b, 16) != 0 || memcmp(c->r.peer.b, e->peer.b, 16) != 0)) {
        rc = KEEL_ICC_ERR_REGION;
    }
    if (rc != KEEL_ICC_OK) {
        free_partial(c);
        return rc;
    }
    c->mem = e->mem;
    c->bell_in = e->bell_in;
    c->bell_out = e->bell_out;
    c->link = e->link;
    c->spin_ns = opts ? opts->spin_ns : 0;
    keel_icc_end_clear(e);
    *out = c;
    return KEEL_ICC_OK;
}

keel_icc_err keel_icc_open_uart(void *mem, size_t size, keel_icc_side side, int bell_fd,
                                const keel_icc_open_opts *opts, keel_icc **out)
{
    *out = NULL;
    if (!mem || bell_fd < 0) {
        return KEEL_ICC_ERR_ARG;
    }
    int fl = fcntl(bell_fd, F_GETFL);
    if (fl < 0 || fcntl(bell_fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        return KEEL_ICC_ERR_IO;
    }
    keel_icc *c = calloc(1, sizeof *c);
    if (!c) {
        return KEEL_ICC_ERR_IO;
    }
    c->ep = -1;
    c->map = mem;
    c->map_len = size;
    keel_icc_err rc = attach(c, side, bell_fd, bell_fd);
    if (rc != KEEL_ICC_OK) {
        free_partial(c);
        return rc;
    }
    c->uart = true;
    c->mem = -1;
    c->bell_in = bell_fd;
    c->bell_out = -1;
    c->link = bell_fd; /* the same socket: its hang-up is the peer's death */
    c->spin_ns = opts ? opts->spin_ns : 0;
    *out = c;
    return KEEL_ICC_OK;
}

void keel_icc_close(keel_icc *c)
{
    if (!c)
        return;
    while (c->stash_head) {
        stash_item *it = c->stash_head;
        c->stash_head = it->next;
        free(it);
    }
    if (c->own_map)
        munmap(c->map, c->map_len);
    free(c->scratch);
    keel_icc_close_fd(&c->ep);
    keel_icc_close_fd(&c->mem);
    if (c->link == c->bell_in)
        c->link = -1; /* a UART doorbell is its own link */
    keel_icc_close_fd(&c->bell_in);
    keel_icc_close_fd(&c->bell_out);
    keel_icc_close_fd(&c->link);
    free(c);
}

int keel_icc_fd(keel_icc *c)
{
    return c->ep;
}

keel_icc_ring *keel_icc_ring_of(keel_icc *c)
{
    return &c->r;
}

bool keel_icc_peer_gone(keel_icc *c)
{
    return c->gone;
}

keel_icc_err keel_icc_set_link(keel_icc *c, int link_fd)
{
    if (link_fd < 0 || c->uart)
        return KEEL_ICC_ERR_ARG;
    epoll_ctl(c->ep, EPOLL_CTL_DEL, c->link, NULL);
    keel_icc_close_fd(&c->link);
    c->link = link_fd;
    struct epoll_event lv = {.events = EPOLLIN | EPOLLRDHUP};
    lv.data.fd = link_fd;
    if (epoll_ctl(c->ep, EPOLL_CTL_ADD, link_fd, &lv) != 0) {
        return KEEL_ICC_ERR_IO;
    }
    c->gone = false;
    return KEEL_ICC_OK;
}

/* Rings the peer: 8 bytes into its eventfd, or one byte down the UART. EAGAIN means the
 * counter (or the socket buffer) is already full: the peer is being woken anyway. */
static void ring_peer(keel_icc *c)
{
    uint64_t one = 1;
    ssize_t n = c->uart ? send(c->bell_in, "", 1, MSG_NOSIGNAL | MSG_DONTWAIT)
                        : write(c->bell_out, &one, sizeof one);
    (void)n;
}

/* Keeps our own fd readable (an eventfd can be rung by its owner; a UART cannot). */
static void ring_self(keel_icc *c)
{
    uint64_t one = 1;
    if (!c->uart) {
        ssize_t n = write(c->bell_in, &one, sizeof one);
        (void)n;
    }
}

static void drain_bell(keel_icc *c)
{
    uint8_t v[64];
    ssize_t n = read(c->bell_in, v, c->uart ? sizeof v : sizeof(uint64_t));
    if (n == 0 && c->uart) {
        c->gone = true; /* the far end of the character device closed */
    }
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t deadline_of(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : now_ns() + (int64_t)timeout_ms * 1000000;
}

/* The link has no traffic: readable or hung up both mean the peer end was closed. */
static bool link_dead(keel_icc *c, short revents)
{
    if (revents & (POLLHUP | POLLERR | POLLRDHUP))
        return true;
    if (revents & POLLIN) {
        char b;
        ssize_t n = recv(c->link, &b, 1, MSG_DONTWAIT | MSG_PEEK);
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
    }
    return false;
}

static bool check_gone(keel_icc *c)
{
    if (!c->gone) {
        struct pollfd p = {.fd = c->link, .events = POLLIN | POLLRDHUP};
        if (poll(&p, 1, 0) == 1 && link_dead(c, p.revents))
            c->gone = true;
    }
    return c->gone;
}

/* Sleeps until the doorbell rings, the peer dies, or the deadline passes. The caller has armed
 * the ring. Returns OK (re-check the ring), ERR_TIMEOUT or ERR_PEER_GONE. */
static keel_icc_err sleep_on_bell(keel_icc *c, int64_t deadline)
{
    for (;;) {
        int ms = -1;
        if (deadline >= 0) {
            int64_t left = deadline - now_ns();
            if (left <= 0)
                return KEEL_ICC_ERR_TIMEOUT;
            ms = (int)((left + 999999) / 1000000);
        }
        struct pollfd p[2] = {{.fd = c->bell_in, .events = POLLIN},
                              {.fd = c->link, .events = POLLIN | POLLRDHUP}};
        int n = poll(p, 2, ms);
        if (n < 0 && errno != EINTR)
            return KEEL_ICC_ERR_IO;
        if (n > 0 && link_dead(c, p[1].revents))
            c->gone = true;
        bool rung = n > 0 && (p[0].revents & POLLIN);
        if (rung)
            drain_bell(c); /* may find the end of a UART's stream */
        /* Gone wins over a ring: the caller re-checks the ring before it reports the loss. */
        if (c->gone)
            return KEEL_ICC_ERR_PEER_GONE;
        if (rung)
            return KEEL_ICC_OK;
    }
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ volatile("yield");
#endif
}

/* Polls `ready` for up to spin_ns; true if it became true. */
static bool spin_until(keel_icc *c, bool (*ready)(keel_icc *, size_t), size_t arg)
{
    if (!c->spin_ns)
        return false;
    int64_t end = now_ns() + c->spin_ns;
    do {
        for (int i = 0; i < 64; i++) {
            if (ready(c, arg))
                return true;
            cpu_relax();
        }
    } while (now_ns() < end);
    return false;
}

static bool rx_ready(keel_icc *c, size_t unused)
{
    (void)unused;
    return keel_icc_ring_readable(&c->r);
}

static bool tx_ready(keel_icc *c, size_t len)
{
    uint32_t tail = atomic_load_explicit(&c->r.tx_ctrl->tail, memory_order_acquire);
    return c->r.ring_bytes - (c->r.tx_head - tail) >= keel_icc_frame_bytes(len);
}

static keel_icc_err send_frame(keel_icc *c, uint16_t type, uint16_t flags, uint32_t corr,
                               const void *data, size_t len, int timeout_ms)
{
    int64_t deadline = 0;
    bool have_deadline = false;
    for (;;) {
        bool bell;
        keel_icc_err rc = keel_icc_ring_send(&c->r, type, flags, corr, data, len, NULL, &bell);
        if (bell)
            ring_peer(c);
        if (rc != KEEL_ICC_ERR_WOULD_BLOCK)
            return rc;
        if (check_gone(c))
            return KEEL_ICC_ERR_PEER_GONE; /* a dead peer never frees space */
        if (timeout_ms == 0)
            return KEEL_ICC_ERR_WOULD_BLOCK;
        if (!have_deadline) {
            deadline = deadline_of(timeout_ms);
            have_deadline = true;
        }
        if (spin_until(c, tx_ready, len))
            continue;
        if (!keel_icc_ring_arm_tx(&c->r, len))
            continue;
        rc = sleep_on_bell(c, deadline);
        /* The bell is shared with incoming data: keep the fd readable for an event loop. */
        if (keel_icc_ring_readable(&c->r))
            ring_self(c);
        if (rc != KEEL_ICC_OK)
            return rc;
    }
}

keel_icc_err keel_icc_send(keel_icc *c, uint16_t type, const void *data, size_t len, int timeout_ms)
{
    if (!c)
        return KEEL_ICC_ERR_ARG;
    return send_frame(c, type, 0, 0, data, len, timeout_ms);
}

keel_icc_err keel_icc_reply(keel_icc *c, const keel_icc_msg *req, uint16_t type, const void *data,
                            size_t len, int timeout_ms)
{
    if (!c || !req || !(req->flags & KEEL_ICC_F_REQUEST))
        return KEEL_ICC_ERR_ARG;
    return send_frame(c, type, KEEL_ICC_F_REPLY, req->corr, data, len, timeout_ms);
}

/* Takes one message from the ring, waiting as the timeout allows. */
static keel_icc_err ring_take(keel_icc *c, keel_icc_msg *msg, void *buf, size_t cap,
                              int64_t deadline, bool wait)
{
    for (;;) {
        bool bell;
        keel_icc_err rc = keel_icc_ring_recv(&c->r, msg, buf, cap, &bell);
        if (bell)
            ring_peer(c);
        if (rc != KEEL_ICC_ERR_WOULD_BLOCK)
            return rc;
        if (!wait) {
            /* Leave the fd armed for an event loop: clear stale rings, announce, re-check. */
            drain_bell(c);
            if (!keel_icc_ring_arm_rx(&c->r))
                continue;
            return check_gone(c) ? KEEL_ICC_ERR_PEER_GONE : KEEL_ICC_ERR_WOULD_BLOCK;
        }
        if (spin_until(c, rx_ready, 0))
            continue;
        if (!keel_icc_ring_arm_rx(&c->r))
            continue;
        rc = sleep_on_bell(c, deadline);
        if (rc == KEEL_ICC_ERR_PEER_GONE && keel_icc_ring_readable(&c->r))
            continue;
        if (rc != KEEL_ICC_OK)
            return rc;
    }
}

keel_icc_err keel_icc_recv(keel_icc *c, keel_icc_msg *msg, void *buf, size_t cap, int timeout_ms)
{
    if (!c || !msg || (cap && !buf))
        return KEEL_ICC_ERR_ARG;
    if (c->stash_head) {
        stash_item *it = c->stash_head;
        *msg = it->msg;
        if (it->msg.len > cap)
            return KEEL_ICC_ERR_BUF_SMALL;
        memcpy(buf, it->data, it->msg.len);
        c->stash_head = it->next;
        if (!c->stash_head)
            c->stash_tail = NULL;
        free(it);
        return KEEL_ICC_OK;
    }
    return ring_take(c, msg, buf, cap, deadline_of(timeout_ms), timeout_ms != 0);
}

static keel_icc_err stash_push(keel_icc *c, const keel_icc_msg *msg, const void *data)
{
    stash_item *it = malloc(sizeof *it + msg->len);
    if (!it)
        return KEEL_ICC_ERR_IO;
    it->next = NULL;
    it->msg = *msg;
    memcpy(it->data, data, msg->len);
    if (c->stash_tail) {
        c->stash_tail->next = it;
    } else {
        c->stash_head = it;
    }
    c->stash_tail = it;
    return KEEL_ICC_OK;
}

keel_icc_err keel_icc_request(keel_icc *c, uint16_t type, const void *req, size_t req_len,
                              keel_icc_msg *resp, void *buf, size_t cap, int timeout_ms)
{
    if (!c || !resp || (cap && !buf) || timeout_ms == 0)
        return KEEL_ICC_ERR_ARG; /* a request waits for its reply */
    int64_t deadline = deadline_of(timeout_ms);
    uint32_t corr = ++c->next_corr ? c->next_corr : ++c->next_corr;
    keel_icc_err rc = send_frame(c, type, KEEL_ICC_F_REQUEST, corr, req, req_len, timeout_ms);
    if (rc != KEEL_ICC_OK)
        return rc;
    for (;;) {
        keel_icc_msg m;
        rc = ring_take(c, &m, c->scratch, c->r.max_msg, deadline, timeout_ms != 0);
        if (rc == KEEL_ICC_ERR_FORGED)
            continue; /* never a reply; already consumed */
        if (rc != KEEL_ICC_OK)
            return rc;
        bool mine = (m.flags & KEEL_ICC_F_REPLY) && m.corr == corr;
        if (mine && m.len <= cap) {
            *resp = m;
            memcpy(buf, c->scratch, m.len);
            break;
        }
        /* Anything else (or a reply too big for buf) waits for keel_icc_recv, in order. */
        if ((rc = stash_push(c, &m, c->scratch)) != KEEL_ICC_OK)
            return rc;
        if (mine) {
            *resp = m;
            rc = KEEL_ICC_ERR_BUF_SMALL;
            break;
        }
    }
    /* Messages set aside are not in the ring any more: keep the fd readable for them. */
    if (c->stash_head)
        ring_self(c);
    return rc;
}

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
#include "keel/manifest.h"

#define DEFAULT_RING (64u * 1024u)
#define DEFAULT_MAX_MSG 1024u
#define WIRE_MAGIC 0x4b494345u /* handover record: "ECIK" */
#define REQUIRED_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

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
    uint32_t next_corr;
    stash_item *stash_head, *stash_tail;
    uint8_t *scratch; /* max_msg bytes, for messages set aside by request */
};

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
    }
    *fd = -1;
}

static void end_clear(keel_icc_end *e)
{
    memset(e, 0, sizeof *e);
    e->mem = e->bell_in = e->bell_out = e->link = -1;
}

void keel_icc_end_close(keel_icc_end *e)
{
    if (!e)
        return;
    close_fd(&e->mem);
    close_fd(&e->bell_in);
    close_fd(&e->bell_out);
    close_fd(&e->link);
}

keel_icc_err keel_icc_pair(const keel_manifest *a, const keel_manifest *b,
                           const keel_icc_config *cfg, keel_icc_end *end_a, keel_icc_end *end_b,
                           keel_manifest_error *why)
{
    if (!a || !b || !end_a || !end_b) {
        return KEEL_ICC_ERR_ARG;
    }
    end_clear(end_a);
    end_clear(end_b);
    keel_manifest_error local;
    if (keel_manifest_pair_allowed(a, b, why ? why : &local) != KEEL_MANIFEST_OK) {
        return KEEL_ICC_ERR_DENIED;
    }
    keel_icc_layout layout = {
        .ring_bytes = cfg && cfg->ring_bytes ? cfg->ring_bytes : DEFAULT_RING,
        .max_msg = cfg && cfg->max_msg ? cfg->max_msg : DEFAULT_MAX_MSG,
    };
    memcpy(layout.id_a.b, a->id.b, 16);
    memcpy(layout.id_b.b, b->id.b, 16);
    uint32_t size = keel_icc_region_bytes(layout.ring_bytes);
    if (size == 0) {
        return KEEL_ICC_ERR_ARG;
    }

    keel_icc_err rc = KEEL_ICC_ERR_IO;
    int mem = memfd_create("keel-icc", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    int bell_a = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int bell_b = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int sp[2] = {-1, -1};
    void *map = MAP_FAILED;
    if (mem < 0 || bell_a < 0 || bell_b < 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0 ||
        ftruncate(mem, size) != 0) {
        goto fail;
    }
    /* Sealed: neither end can shrink the region under the other (which would be SIGBUS). */
    if (fcntl(mem, F_ADD_SEALS, REQUIRED_SEALS) != 0) {
        goto fail;
    }
    map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, mem, 0);
    if (map == MAP_FAILED) {
        goto fail;
    }
    rc = keel_icc_region_init(map, size, &layout);
    munmap(map, size);
    if (rc != KEEL_ICC_OK) {
        goto fail;
    }
    rc = KEEL_ICC_ERR_IO;
    end_a->mem = mem;
    end_a->bell_in = bell_a;
    end_a->bell_out = bell_b;
    end_a->link = sp[0];
    end_b->mem = fcntl(mem, F_DUPFD_CLOEXEC, 0);
    end_b->bell_in = fcntl(bell_b, F_DUPFD_CLOEXEC, 0);
    end_b->bell_out = fcntl(bell_a, F_DUPFD_CLOEXEC, 0);
    end_b->link = sp[1];
    end_a->side = KEEL_ICC_SIDE_A;
    end_b->side = KEEL_ICC_SIDE_B;
    end_a->self = end_b->peer = layout.id_a;
    end_b->self = end_a->peer = layout.id_b;
    if (end_b->mem < 0 || end_b->bell_in < 0 || end_b->bell_out < 0) {
        keel_icc_end_close(end_a);
        keel_icc_end_close(end_b);
        return KEEL_ICC_ERR_IO;
    }
    return KEEL_ICC_OK;

fail:
    close_fd(&mem);
    close_fd(&bell_a);
    close_fd(&bell_b);
    close_fd(&sp[0]);
    close_fd(&sp[1]);
    return rc;
}

keel_icc_err keel_icc_relink(keel_icc_end *a, keel_icc_end *b)
{
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
        return KEEL_ICC_ERR_IO;
    }
    close_fd(&a->link);
    close_fd(&b->link);
    a->link = sp[0];
    b->link = sp[1];
    return KEEL_ICC_OK;
}

/* What travels beside the fds in a handover. */
typedef struct wire_end {
    uint32_t magic;
    uint32_t side;
    uint8_t self[16], peer[16];
} wire_end;

keel_icc_err keel_icc_end_send(int sock, const keel_icc_end *e)
{
    wire_end w = {.magic = WIRE_MAGIC, .side = (uint32_t)e->side};
    memcpy(w.self, e->self.b, 16);
    memcpy(w.peer, e->peer.b, 16);
    int fds[4] = {e->mem, e->bell_in, e->bell_out, e->link};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof fds)];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov = {.iov_base = &w, .iov_len = sizeof w};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(cm), fds, sizeof fds);
    ssize_t n;
    do {
        n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof w ? KEEL_ICC_OK : KEEL_ICC_ERR_IO;
}

keel_icc_err keel_icc_end_recv(int sock, keel_icc_end *e)
{
    end_clear(e);
    wire_end w = {0};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(4 * sizeof(int))];
    } ctl;
    struct iovec iov = {.iov_base = &w, .iov_len = sizeof w};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    ssize_t n;
    do {
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return KEEL_ICC_ERR_IO;
    }
    int fds[4] = {-1, -1, -1, -1};
    size_t nfds = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
                if (nfds < 4) {
                    fds[nfds++] = fd;
                } else {
                    close(fd);
                }
            }
        }
    }
    bool ok = n == (ssize_t)sizeof w && !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) && nfds == 4 &&
              w.magic == WIRE_MAGIC && (w.side == KEEL_ICC_SIDE_A || w.side == KEEL_ICC_SIDE_B);
    if (!ok) {
        for (size_t i = 0; i < nfds; i++)
            close(fds[i]);
        return n == 0 ? KEEL_ICC_ERR_PEER_GONE : KEEL_ICC_ERR_IO;
    }
    e->mem = fds[0];
    e->bell_in = fds[1];
    e->bell_out = fds[2];
    e->link = fds[3];
    e->side = (keel_icc_side)w.side;
    memcpy(e->self.b, w.self, 16);
    memcpy(e->peer.b, w.peer, 16);
    return KEEL_ICC_OK;
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
    if (seals < 0 || (seals & REQUIRED_SEALS) != REQUIRED_SEALS || st.st_size <= 0 ||
        (uint64_t)st.st_size > keel_icc_region_bytes(KEEL_ICC_MAX_RING)) {
        return KEEL_ICC_ERR_REGION;
    }
    keel_icc *c = calloc(1, sizeof *c);
    if (!c) {
        return KEEL_ICC_ERR_IO;
    }
    c->map_len = (size_t)st.st_size;
    c->map = mmap(NULL, c->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, e->mem, 0);
    if (c->map == MAP_FAILED) {
        free(c);
        return KEEL_ICC_ERR_IO;
    }
    keel_icc_err rc = keel_icc_ring_attach(&c->r, c->map, c->map_len, e->side);
    /* The region's IDs must be the ones the supervisor stamped on this end. */
    if (rc == KEEL_ICC_OK &&
        (memcmp(c->r.self.b, e->self.b, 16) != 0 || memcmp(c->r.peer.b, e->peer.b, 16) != 0)) {
        rc = KEEL_ICC_ERR_REGION;
    }
    c->scratch = rc == KEEL_ICC_OK ? malloc(c->r.max_msg) : NULL;
    c->ep = epoll_create1(EPOLL_CLOEXEC);
    if (rc == KEEL_ICC_OK && (!c->scratch || c->ep < 0)) {
        rc = KEEL_ICC_ERR_IO;
    }
    if (rc == KEEL_ICC_OK) {
        struct epoll_event ev = {.events = EPOLLIN};
        ev.data.fd = e->bell_in;
        struct epoll_event lv = {.events = EPOLLIN | EPOLLRDHUP};
        lv.data.fd = e->link;
        if (epoll_ctl(c->ep, EPOLL_CTL_ADD, e->bell_in, &ev) != 0 ||
            epoll_ctl(c->ep, EPOLL_CTL_ADD, e->link, &lv) != 0) {
            rc = KEEL_ICC_ERR_IO;
        }
    }
    if (rc != KEEL_ICC_OK) {
        if (c->ep >= 0)
            close(c->ep);
        free(c->scratch);
        munmap(c->map, c->map_len);
        free(c);
        return rc;
    }
    c->mem = e->mem;
    c->bell_in = e->bell_in;
    c->bell_out = e->bell_out;
    c->link = e->link;
    c->spin_ns = opts ? opts->spin_ns : 0;
    end_clear(e);
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
    munmap(c->map, c->map_len);
    free(c->scratch);
    close_fd(&c->ep);
    close_fd(&c->mem);
    close_fd(&c->bell_in);
    close_fd(&c->bell_out);
    close_fd(&c->link);
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
    if (link_fd < 0)
        return KEEL_ICC_ERR_ARG;
    epoll_ctl(c->ep, EPOLL_CTL_DEL, c->link, NULL);
    close_fd(&c->link);
    c->link = link_fd;
    struct epoll_event lv = {.events = EPOLLIN | EPOLLRDHUP};
    lv.data.fd = link_fd;
    if (epoll_ctl(c->ep, EPOLL_CTL_ADD, link_fd, &lv) != 0) {
        return KEEL_ICC_ERR_IO;
    }
    c->gone = false;
    return KEEL_ICC_OK;
}

static void ring_bell(int fd)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already enormous: the peer is being woken anyway. */
    ssize_t n = write(fd, &one, sizeof one);
    (void)n;
}

static void drain_bell(keel_icc *c)
{
    uint64_t v;
    ssize_t n = read(c->bell_in, &v, sizeof v);
    (void)n;
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
        if (n > 0 && (p[0].revents & POLLIN)) {
            drain_bell(c);
            return KEEL_ICC_OK;
        }
        if (c->gone)
            return KEEL_ICC_ERR_PEER_GONE;
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
            ring_bell(c->bell_out);
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
            ring_bell(c->bell_in);
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
            ring_bell(c->bell_out);
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
    if (!c || !resp || (cap && !buf))
        return KEEL_ICC_ERR_ARG;
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
            return KEEL_ICC_OK;
        }
        /* Anything else (or a reply too big for buf) waits for keel_icc_recv, in order. */
        if ((rc = stash_push(c, &m, c->scratch)) != KEEL_ICC_OK)
            return rc;
        if (mine) {
            *resp = m;
            return KEEL_ICC_ERR_BUF_SMALL;
        }
    }
}

/* Making a channel and handing its ends over: keel_icc_pair checks the manifests' pairing rule,
 * creates the sealed memfd region with its header, the two eventfd doorbells and the hang-up
 * socketpair; keel_icc_end_send/recv move one end to another process with SCM_RIGHTS, which is
 * how the supervisor gives a component its channel (a component holds nothing else that
 * reaches its partner). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "icc_linux.h"
#include "keel/manifest.h"

#define DEFAULT_RING (64u * 1024u)
#define DEFAULT_MAX_MSG 1024u
#define WIRE_MAGIC 0x4b494345u /* handover record: "ECIK" */

void keel_icc_end_close(keel_icc_end *e)
{
    if (!e)
        return;
    keel_icc_close_fd(&e->mem);
    keel_icc_close_fd(&e->bell_in);
    keel_icc_close_fd(&e->bell_out);
    keel_icc_close_fd(&e->link);
}

keel_icc_err keel_icc_pair(const keel_manifest *a, const keel_manifest *b,
                           const keel_icc_config *cfg, keel_icc_end *end_a, keel_icc_end *end_b,
                           keel_manifest_error *why)
{
    if (!a || !b || !end_a || !end_b) {
        return KEEL_ICC_ERR_ARG;
    }
    keel_icc_end_clear(end_a);
    keel_icc_end_clear(end_b);
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
    if (fcntl(mem, F_ADD_SEALS, KEEL_ICC_REQUIRED_SEALS) != 0) {
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
    keel_icc_close_fd(&mem);
    keel_icc_close_fd(&bell_a);
    keel_icc_close_fd(&bell_b);
    keel_icc_close_fd(&sp[0]);
    keel_icc_close_fd(&sp[1]);
    return rc;
}

keel_icc_err keel_icc_relink(keel_icc_end *a, keel_icc_end *b)
{
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
        return KEEL_ICC_ERR_IO;
    }
    keel_icc_close_fd(&a->link);
    keel_icc_close_fd(&b->link);
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
    keel_icc_end_clear(e);
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

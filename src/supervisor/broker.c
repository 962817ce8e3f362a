/* keeld's side of the SDK: one request from an app's socket, checked, answered.
 *
 * Every request is hostile until keel_wire_check() passed it; fds an app tries to send keeld
 * are closed unread. Capabilities are decided here, from the manifest, at the call: an app
 * whose manifest does not grant telemetry gets KEEL_APP_ERR_DENIED, not a silent drop.
 *
 * The notification ring lives in the app's memory and keeld never maps it: records and the head
 * index are written with process_vm_writev, the app's tail read with process_vm_readv. A forged
 * ring (unmapped, read-only, indices that cannot be) makes those calls fail or the check below
 * trip; keeld then stops notifying that app and logs why. It never faults. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "keel/cloud.h"
#include "package.h"
#include "supervisor.h"

static void answer(sv_app *a, const keel_wire_hdr *req, keel_app_status st, const void *data,
                   size_t len, int fd)
{
    keel_wire_hdr h = {.op = (uint16_t)(req->op | KEEL_WIRE_ANSWER),
                       .status = (uint16_t)st,
                       .seq = req->seq,
                       .len = (uint32_t)len};
    struct iovec iov[2] = {{&h, sizeof h}, {(void *)data, len}};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
    if (fd >= 0) {
        memset(&ctl, 0, sizeof ctl);
        m.msg_control = ctl.buf;
        m.msg_controllen = sizeof ctl.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    /* The socket is non-blocking: an app that never reads its answers loses them, keeld does
     * not wait for it. */
    (void)sendmsg(a->sock, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void mark_forged(sv_app *a, const char *why)
{
    if (!a->forged) {
        sv_logf("%s: notification ring rejected: %s; notifications to it stopped", a->m.name, why);
    }
    a->forged = true;
}

bool sv_notify(sv_daemon *d, sv_app *a, uint16_t type, uint64_t arg)
{
    (void)d;
    if (a->pid <= 0 || a->ring_cap == 0 || a->forged) {
        return false;
    }
    uint32_t tail;
    struct iovec l = {&tail, sizeof tail};
    struct iovec r = {(void *)(uintptr_t)(a->ring_addr + offsetof(keel_app_ring, tail)),
                      sizeof tail};
    if (process_vm_readv(a->pid, &l, 1, &r, 1, 0) != (ssize_t)sizeof tail) {
        mark_forged(a, "its memory cannot be read");
        return false;
    }
    uint32_t used = a->ring_head - tail;
    if (used > a->ring_cap) {
        mark_forged(a, "tail index ahead of head");
        return false;
    }
    if (used == a->ring_cap) {
        a->notify_dropped++;
        return false;
    }
    keel_app_notification rec = {.type = type, .seq = ++a->notify_seq, .arg = arg};
    uint32_t head = a->ring_head + 1;
    uint64_t slot = a->ring_addr + sizeof(keel_app_ring) +
                    (uint64_t)(a->ring_head & (a->ring_cap - 1)) * sizeof rec;
    /* Record first, then head: process_vm_writev copies the remote iovecs in order, so the app
     * never sees a head that covers an unwritten record. */
    struct iovec lv[2] = {{&rec, sizeof rec}, {&head, sizeof head}};
    struct iovec rv[2] = {{(void *)(uintptr_t)slot, sizeof rec},
                          {(void *)(uintptr_t)(a->ring_addr + offsetof(keel_app_ring, head)),
                           sizeof head}};
    if (process_vm_writev(a->pid, lv, 2, rv, 2, 0) != (ssize_t)(sizeof rec + sizeof head)) {
        mark_forged(a, "its memory cannot be written");
        return false;
    }
    a->ring_head = head;
    uint64_t one = 1;
    ssize_t ignored = write(a->wake_fd, &one, sizeof one);
    (void)ignored;
    return true;
}

static keel_app_status do_register(sv_app *a, const keel_wire_ring *req, int *fd)
{
    if ((req->addr & 7u) || req->size < sizeof(keel_app_ring) + 32 || req->size > (64u << 20)) {
        return KEEL_APP_ERR_INVALID_ARG;
    }
    keel_app_ring h;
    struct iovec l = {&h, sizeof h};
    struct iovec r = {(void *)(uintptr_t)req->addr, sizeof h};
    if (process_vm_readv(a->pid, &l, 1, &r, 1, 0) != (ssize_t)sizeof h) {
        return KEEL_APP_ERR_BAD_POINTER;
    }
    if (h.magic != KEEL_APP_RING_MAGIC || h.capacity < 2 || (h.capacity & (h.capacity - 1)) ||
        sizeof h + (uint64_t)h.capacity * sizeof(keel_app_notification) > req->size ||
        h.head != h.tail) {
        return KEEL_APP_ERR_INVALID_ARG;
    }
    if (a->wake_fd < 0) {
        a->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (a->wake_fd < 0) {
            return KEEL_APP_ERR_IO;
        }
    }
    a->ring_addr = req->addr;
    a->ring_cap = h.capacity;
    a->ring_head = h.head;
    a->forged = false;
    *fd = a->wake_fd;
    return KEEL_APP_OK;
}

/* Connects to host:port for an app's tunnel and returns the socket; the app gets it as its
 * capability. keeld is outside the app's network namespace, so this is the only way out. */
static int connect_target(const char *target)
{
    char host[256];
    snprintf(host, sizeof host, "%s", target);
    char *colon = strrchr(host, ':');
    if (!colon) {
        return -1;
    }
    *colon = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0) {
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
            close(fd);
            fd = -1;
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t el = sizeof err;
        if (poll(&p, 1, 2000) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 ||
            err != 0) {
            close(fd);
            fd = -1;
            continue;
        }
        /* the app gets a blocking socket, as if it had opened it itself */
        (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    }
    freeaddrinfo(res);
    return fd;
}

static bool host_allowed(const sv_manifest *m, const char *target)
{
    for (int i = 0; i < m->nhttp; i++) {
        size_t n = strlen(m->http_hosts[i]);
        /* "host:port" exactly, or "host" for any port */
        if (strcmp(target, m->http_hosts[i]) == 0 ||
            (strchr(m->http_hosts[i], ':') == NULL && strncmp(target, m->http_hosts[i], n) == 0 &&
             target[n] == ':')) {
            return true;
        }
    }
    return false;
}

static keel_app_status do_cloud_open(sv_daemon *d, sv_app *a, const char *p, size_t len, int *fd)
{
    char kind[16], target[256];
    const char *z = memchr(p, 0, len);
    (void)sv_fmt(kind, sizeof kind, "%s", p);
    snprintf(target, sizeof target, "%.*s", (int)(len - (size_t)(z - p) - 1), z + 1);
    if (strcmp(kind, "http") == 0) {
        if (!host_allowed(&a->m, target)) {
            sv_applog_line(d, a, "keeld", "cloud_open http denied by the manifest", 38);
            return KEEL_APP_ERR_DENIED;
        }
    } else if (strcmp(kind, "mqtt") == 0) {
        if (!a->m.cloud_mqtt) {
            sv_applog_line(d, a, "keeld", "cloud_open mqtt denied by the manifest", 38);
            return KEEL_APP_ERR_DENIED;
        }
        if (d->cfg.broker[0] == '\0') {
            return KEEL_APP_ERR_UNSUPPORTED;
        }
        snprintf(target, sizeof target, "%s", d->cfg.broker); /* the device's broker only */
    } else {
        return KEEL_APP_ERR_INVALID_ARG;
    }
    *fd = connect_target(target);
    return *fd >= 0 ? KEEL_APP_OK : KEEL_APP_ERR_IO;
}

/* Appends a JSON document to the app's outbox file (what the cloud link drains). */
static keel_app_status outbox(sv_daemon *d, sv_app *a, const char *kind, const char *p,
                              size_t len)
{
    char path[PATH_MAX + 64];
    (void)sv_fmt(path, sizeof path, "%s/outbox/%s.%s", d->cfg.state_dir, a->m.name, kind);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
        return KEEL_APP_ERR_IO;
    }
    struct iovec iov[2] = {{(void *)p, len}, {"\n", 1}};
    ssize_t w = writev(fd, iov, 2);
    close(fd);
    return w == (ssize_t)len + 1 ? KEEL_APP_OK : KEEL_APP_ERR_IO;
}

static keel_app_status do_desired(sv_daemon *d, sv_app *a, char *buf, size_t cap, size_t *len)
{
    char path[PATH_MAX + 64];
    (void)sv_fmt(path, sizeof path, "%s/props/%s.desired.json", d->cfg.state_dir, a->m.name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        memcpy(buf, "{}", 2);
        *len = 2;
        return KEEL_APP_OK;
    }
    ssize_t n = read(fd, buf, cap);
    close(fd);
    if (n < 0) {
        return KEEL_APP_ERR_IO;
    }
    *len = (size_t)n;
    return KEEL_APP_OK;
}

/* Through the cloud link: OK once the message is durable in its outbox. */
static keel_app_status cloud_telemetry(sv_daemon *d, sv_app *a, const char *p, size_t len)
{
    char props[96];
    snprintf(props, sizeof props, "app=%s", a->m.name); /* names are [a-z0-9_-]: URL-safe */
    keel_cloud_err e = keel_cloud_send_telemetry(d->cloud, p, len, props, NULL);
    return e == KEEL_CLOUD_OK ? KEEL_APP_OK : KEEL_APP_ERR_IO;
}

static keel_app_status cloud_report(sv_daemon *d, const char *p, size_t len)
{
    char json[KEEL_APP_MAX_PAYLOAD + 1];
    memcpy(json, p, len);
    json[len] = '\0';
    if (memchr(p, 0, len)) {
        return KEEL_APP_ERR_INVALID_ARG;
    }
    keel_cloud_err e = keel_cloud_report(d->cloud, json, NULL);
    return e == KEEL_CLOUD_OK ? KEEL_APP_OK : KEEL_APP_ERR_INVALID_ARG;
}

static keel_app_status cloud_desired(sv_daemon *d, char *out, size_t cap, size_t *len)
{
    int64_t version;
    if (keel_cloud_desired(d->cloud, out, cap, &version) != KEEL_CLOUD_OK) {
        return KEEL_APP_ERR_NO_SPACE;
    }
    *len = strlen(out);
    return KEEL_APP_OK;
}

/* keel_app_channel_open: the pairing rule (each manifest names the other) decides; the app
 * gets a socket carrying its end of the channel (keel_icc_end_recv, then keel_icc_open). */
static keel_app_status channel_open(sv_daemon *d, sv_app *a, const char *p, size_t len, int *fd)
{
    char partner[SV_NAME_MAX];
    if (len >= sizeof partner) {
        return KEEL_APP_ERR_BAD_LENGTH;
    }
    memcpy(partner, p, len);
    partner[len] = '\0';
    keel_uuid pid;
    if (!keel_manifest_uuid_parse(partner, &pid)) {
        return KEEL_APP_ERR_INVALID_ARG;
    }
    if (!keel_manifest_allows_partner(&a->m.km, &pid)) {
        sv_applog_line(d, a, "keeld", "channel_open denied: the manifest does not name it", 51);
        return KEEL_APP_ERR_DENIED;
    }
    sv_app *b = NULL;
    for (int i = 0; i < d->napps; i++) {
        if (keel_manifest_uuid_equal(&d->apps[i].m.km.id, &pid)) {
            b = &d->apps[i];
        }
    }
    if (!b) {
        return KEEL_APP_ERR_NOT_FOUND;
    }
    if (a->m.realtime) {
        return KEEL_APP_ERR_UNSUPPORTED; /* RT loaders get their ends on $KEEL_RT_CHANNEL_FD */
    }
    sv_channel *ch = NULL, *free_slot = NULL;
    int side = 0;
    for (int i = 0; i < SV_MAX_CHANNELS; i++) {
        sv_channel *c = &d->channels[i];
        if (!c->used) {
            free_slot = free_slot ? free_slot : c;
        } else if (strcmp(c->id[0], a->m.id) == 0 && strcmp(c->id[1], b->m.id) == 0) {
            ch = c;
            side = 0;
        } else if (strcmp(c->id[1], a->m.id) == 0 && strcmp(c->id[0], b->m.id) == 0) {
            ch = c;
            side = 1;
        }
    }
    if (b->m.realtime) {
        /* paired at the loader's start (sv_channels_rt_start): none means the RT component is
         * not running, or its manifest does not name this app */
        if (!ch) {
            keel_manifest_error why;
            if (keel_manifest_pair_allowed(&a->m.km, &b->m.km, &why) != KEEL_MANIFEST_OK) {
                sv_applog_line(d, a, "keeld", why.msg, strlen(why.msg));
                return KEEL_APP_ERR_DENIED;
            }
            return KEEL_APP_ERR_BUSY;
        }
    } else if (!ch) {
        if (!free_slot) {
            return KEEL_APP_ERR_NO_SPACE;
        }
        keel_manifest_error why;
        keel_icc_err e = keel_icc_pair(&a->m.km, &b->m.km, NULL, &free_slot->end[0],
                                       &free_slot->end[1], &why);
        if (e != KEEL_ICC_OK) {
            sv_applog_line(d, a, "keeld", why.msg, strlen(why.msg));
            return e == KEEL_ICC_ERR_DENIED ? KEEL_APP_ERR_DENIED : KEEL_APP_ERR_IO;
        }
        ch = free_slot;
        ch->used = true;
        snprintf(ch->id[0], sizeof ch->id[0], "%s", a->m.id);
        snprintf(ch->id[1], sizeof ch->id[1], "%s", b->m.id);
        side = 0;
        sv_logf("channel: %s <-> %s paired", a->m.name, b->m.name);
    }
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
        return KEEL_APP_ERR_IO;
    }
    /* a few dozen bytes and four fds: fits the socket buffer, never blocks */
    if (keel_icc_end_send(sp[0], &ch->end[side]) != KEEL_ICC_OK) {
        close(sp[0]);
        close(sp[1]);
        return KEEL_APP_ERR_IO;
    }
    close(sp[0]);
    *fd = sp[1];
    /* the partner, if it is waiting on the channel, hears of it */
    if (b->state == SV_RUNNING && !b->m.realtime) {
        (void)sv_notify(d, b, KEEL_APP_NOTIFY_CHANNEL_READABLE, (uint64_t)(ch - d->channels));
    }
    return KEEL_APP_OK;
}

int sv_channels_rt_start(sv_daemon *d, sv_app *rt, int sock)
{
    sv_channels_rt_gone(d, rt); /* a leftover of a previous run: never reused */
    int sent = 0;
    for (int i = 0; i < d->napps; i++) {
        sv_app *app = &d->apps[i];
        if (app == rt || app->m.realtime ||
            !keel_manifest_allows_partner(&rt->m.km, &app->m.km.id) ||
            !keel_manifest_allows_partner(&app->m.km, &rt->m.km.id)) {
            continue;
        }
        sv_channel *ch = NULL;
        for (int k = 0; k < SV_MAX_CHANNELS && !ch; k++) {
            ch = d->channels[k].used ? NULL : &d->channels[k];
        }
        if (!ch) {
            sv_logf("channel: %s <-> %s: no free channel slot", app->m.name, rt->m.name);
            break;
        }
        keel_manifest_error why;
        keel_icc_err e = keel_icc_pair(&app->m.km, &rt->m.km, NULL, &ch->end[0], &ch->end[1], &why);
        if (e != KEEL_ICC_OK) {
            sv_logf("channel: %s <-> %s: %s", app->m.name, rt->m.name,
                    e == KEEL_ICC_ERR_DENIED ? why.msg : keel_icc_err_name(e));
            continue;
        }
        e = keel_icc_end_send(sock, &ch->end[1]);
        /* keeld keeps no copy of the RT end: the app must see the loader's death */
        keel_icc_end_close(&ch->end[1]);
        if (e != KEEL_ICC_OK) {
            sv_logf("channel: %s <-> %s: handing the RT end over: %s", app->m.name, rt->m.name,
                    keel_icc_err_name(e));
            keel_icc_end_close(&ch->end[0]);
            continue;
        }
        ch->used = ch->rt = true;
        snprintf(ch->id[0], sizeof ch->id[0], "%s", app->m.id);
        snprintf(ch->id[1], sizeof ch->id[1], "%s", rt->m.id);
        sv_logf("channel: %s <-> %s (rt) paired", app->m.name, rt->m.name);
        sent++;
    }
    return sent;
}

void sv_channels_rt_gone(sv_daemon *d, sv_app *rt)
{
    for (int i = 0; i < SV_MAX_CHANNELS; i++) {
        sv_channel *c = &d->channels[i];
        if (c->used && c->rt && strcmp(c->id[1], rt->m.id) == 0) {
            keel_icc_end_close(&c->end[0]);
            keel_icc_end_close(&c->end[1]);
            c->used = c->rt = false;
        }
    }
}

bool sv_broker_handle(sv_daemon *d, sv_app *a)
{
    static uint8_t buf[KEEL_WIRE_MAX_MSG + 1];
    union {
        char b[CMSG_SPACE(16 * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {buf, sizeof buf};
    struct msghdr m = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = ctl.b,
                       .msg_controllen = sizeof ctl.b};
    ssize_t n = recvmsg(a->sock, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
        return errno == EAGAIN || errno == EINTR;
    }
    if (n == 0) {
        return false;
    }
    /* fds an app sends keeld are never used */
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof fd, sizeof fd);
                close(fd);
            }
        }
    }
    /* any record is a heartbeat, a malformed one too: an RT loader's heartbeat is one byte */
    a->beat_ms = sv_now_ms();
    a->beaten = true;
    keel_wire_hdr h = {0};
    if ((size_t)n >= sizeof h) {
        memcpy(&h, buf, sizeof h);
    }
    keel_app_status st = (m.msg_flags & MSG_TRUNC) ? KEEL_APP_ERR_BAD_LENGTH
                                                   : keel_wire_check(buf, (size_t)n);
    if (st != KEEL_APP_OK) {
        if ((size_t)n >= sizeof h && !(h.op & KEEL_WIRE_ANSWER)) {
            answer(a, &h, st, NULL, 0, -1);
        }
        return true;
    }
    const char *p = (const char *)buf + sizeof h;
    size_t len = h.len;
    int fd = -1;
    static char out[KEEL_APP_MAX_PAYLOAD];
    size_t outlen = 0;
    switch (h.op) {
    case KEEL_WIRE_HELLO:
        a->ready = true;
        outlen = strlen(a->m.name);
        memcpy(out, a->m.name, outlen);
        break;
    case KEEL_WIRE_LOG:
        sv_applog_line(d, a, "app", p, len);
        break;
    case KEEL_WIRE_HEARTBEAT:
        break;
    case KEEL_WIRE_CONFIRM:
        sv_app_confirmed(d, a); /* ends a trial through the update agent (apps.c) */
        break;
    case KEEL_WIRE_TELEMETRY:
        st = !a->m.cloud_telemetry ? KEEL_APP_ERR_DENIED
             : d->cloud            ? cloud_telemetry(d, a, p, len)
                                   : outbox(d, a, "telemetry", p, len);
        break;
    case KEEL_WIRE_REPORT:
        st = !a->m.cloud_properties ? KEEL_APP_ERR_DENIED
             : d->cloud             ? cloud_report(d, p, len)
                                    : outbox(d, a, "reported", p, len);
        break;
    case KEEL_WIRE_DESIRED:
        st = !a->m.cloud_properties ? KEEL_APP_ERR_DENIED
             : d->cloud             ? cloud_desired(d, out, sizeof out, &outlen)
                                    : do_desired(d, a, out, sizeof out, &outlen);
        break;
    case KEEL_WIRE_METHOD_ANSWER:
        st = !a->m.cloud_methods ? KEEL_APP_ERR_DENIED : sv_cloud_method_answer(d, a, p, len);
        break;
    case KEEL_WIRE_METHOD_TAKE:
        st = !a->m.cloud_methods ? KEEL_APP_ERR_DENIED
                                 : sv_cloud_method_take(d, a, out, sizeof out, &outlen);
        break;
    case KEEL_WIRE_CHANNEL_OPEN:
        st = channel_open(d, a, p, len, &fd);
        break;
    case KEEL_WIRE_CLOUD_OPEN:
        st = do_cloud_open(d, a, p, len, &fd);
        break;
    case KEEL_WIRE_SERIAL_OPEN:
    case KEEL_WIRE_GPIO_OPEN: {
        char name[SV_DEV_NAME_MAX]; /* keel_wire_check: 1..31 bytes, no NUL */
        memcpy(name, p, len);
        name[len] = '\0';
        st = h.op == KEEL_WIRE_SERIAL_OPEN ? sv_serial_open(d, a, name, &fd)
                                           : sv_gpio_open(d, a, name, &fd);
        break;
    }
    case KEEL_WIRE_NOTIFY_REGISTER: {
        keel_wire_ring r;
        memcpy(&r, p, sizeof r);
        int wake = -1;
        st = do_register(a, &r, &wake);
        answer(a, &h, st, NULL, 0, wake);
        return true;
    }
    case KEEL_WIRE_CRASH:
        memcpy(&a->crash, p, sizeof a->crash);
        a->have_crash = true;
        return true; /* no answer: the app is dying */
    default:
        st = KEEL_APP_ERR_UNSUPPORTED;
        break;
    }
    answer(a, &h, st, out, st == KEEL_APP_OK ? outlen : 0, st == KEEL_APP_OK ? fd : -1);
    if (fd >= 0) {
        close(fd);
    }
    return true;
}

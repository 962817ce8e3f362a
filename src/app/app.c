/* libkeel calls: each one is a request on the SOCK_SEQPACKET socket keeld gave the app and an
 * answer with a keel_app_status.
 *
 * Bad pointers never crash the app: payload buffers travel to the kernel in the iovecs of
 * sendmsg/recvmsg, which fail with EFAULT on memory the app does not own, and the small values
 * the SDK writes back (lengths, fds) and reads in (strings, the ring header) are copied with
 * process_vm_readv/writev on the app's own pid, which fail the same way. */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "app_private.h"
#include "keel/app.h"
#include "wire.h"

#define KEEL_APP_CALL_TIMEOUT_MS 10000

const char *keel_app_status_name(keel_app_status s)
{
    static const char *const names[KEEL_APP_STATUS_COUNT] = {
        [KEEL_APP_OK] = "KEEL_APP_OK",
        [KEEL_APP_ERR_BAD_POINTER] = "KEEL_APP_ERR_BAD_POINTER",
        [KEEL_APP_ERR_BAD_LENGTH] = "KEEL_APP_ERR_BAD_LENGTH",
        [KEEL_APP_ERR_INVALID_ARG] = "KEEL_APP_ERR_INVALID_ARG",
        [KEEL_APP_ERR_NOT_CONNECTED] = "KEEL_APP_ERR_NOT_CONNECTED",
        [KEEL_APP_ERR_DENIED] = "KEEL_APP_ERR_DENIED",
        [KEEL_APP_ERR_NOT_FOUND] = "KEEL_APP_ERR_NOT_FOUND",
        [KEEL_APP_ERR_NO_SPACE] = "KEEL_APP_ERR_NO_SPACE",
        [KEEL_APP_ERR_BUSY] = "KEEL_APP_ERR_BUSY",
        [KEEL_APP_ERR_UNSUPPORTED] = "KEEL_APP_ERR_UNSUPPORTED",
        [KEEL_APP_ERR_PROTOCOL] = "KEEL_APP_ERR_PROTOCOL",
        [KEEL_APP_ERR_IO] = "KEEL_APP_ERR_IO",
        [KEEL_APP_ERR_FORGED] = "KEEL_APP_ERR_FORGED",
        [KEEL_APP_ERR_TIMEOUT] = "KEEL_APP_ERR_TIMEOUT",
    };
    if ((unsigned)s >= KEEL_APP_STATUS_COUNT) {
        return "KEEL_APP_STATUS_UNKNOWN";
    }
    return names[s];
}

/* The one handle per process (the crash handler needs it without arguments). */
static keel_app g_app;

bool keel_app_copy_safe(void *dst, const void *src, size_t n)
{
    if (n == 0) {
        return true;
    }
    struct iovec local = {(void *)src, n};
    struct iovec remote = {dst, n};
    /* Writing into our own memory through the kernel: an unmapped or read-only dst (or an
     * unreadable src) is EFAULT, not a signal. */
    ssize_t w = process_vm_writev(getpid(), &local, 1, &remote, 1, 0);
    return w == (ssize_t)n;
}

/* Copies a NUL-terminated string of at most max-1 chars from untrusted src into dst. */
static keel_app_status copy_string(char *dst, size_t max, const char *src, size_t *len)
{
    if (!src) {
        return KEEL_APP_ERR_BAD_POINTER;
    }
    struct iovec local = {dst, max};
    struct iovec remote = {(void *)src, max};
    /* A short string near the end of a mapping reads partially: that is fine, the NUL must
     * be inside what was readable. */
    ssize_t r = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    if (r <= 0) {
        return KEEL_APP_ERR_BAD_POINTER;
    }
    char *z = memchr(dst, 0, (size_t)r);
    if (!z) {
        return (size_t)r == max ? KEEL_APP_ERR_BAD_LENGTH : KEEL_APP_ERR_BAD_POINTER;
    }
    *len = (size_t)(z - dst);
    return KEEL_APP_OK;
}

static keel_app_status errno_status(int e)
{
    switch (e) {
    case EFAULT:
        return KEEL_APP_ERR_BAD_POINTER;
    case EPIPE:
    case ECONNRESET:
    case ENOTCONN:
    case EBADF:
    case ENOTSOCK:
        return KEEL_APP_ERR_NOT_CONNECTED;
    case EMSGSIZE:
        return KEEL_APP_ERR_BAD_LENGTH;
    default:
        return KEEL_APP_ERR_IO;
    }
}

keel_app_status keel_app_call(keel_app *app, uint16_t op, const struct iovec *parts, int nparts,
                              void *out, size_t cap, size_t *out_len, int *out_fd)
{
    if (!app || app->fd < 0) {
        return KEEL_APP_ERR_NOT_CONNECTED;
    }
    struct iovec iov[4];
    keel_wire_hdr h = {.op = op, .seq = app->seq + 1}; /* taken only once sent */
    size_t total = 0;
    iov[0] = (struct iovec){&h, sizeof h};
    for (int i = 0; i < nparts && i < 3; i++) {
        iov[1 + i] = parts[i];
        total += parts[i].iov_len;
    }
    h.len = (uint32_t)total;
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)(1 + nparts)};
    ssize_t w;
    do {
        w = sendmsg(app->fd, &m, MSG_NOSIGNAL);
    } while (w < 0 && errno == EINTR);
    if (w < 0) {
        return errno_status(errno);
    }
    app->seq++;
    if (op == KEEL_WIRE_CRASH) {
        return KEEL_APP_OK;
    }

    struct pollfd pfd = {.fd = app->fd, .events = POLLIN};
    int pr;
    do {
        pr = poll(&pfd, 1, KEEL_APP_CALL_TIMEOUT_MS);
    } while (pr < 0 && errno == EINTR);
    if (pr == 0) {
        return KEEL_APP_ERR_TIMEOUT;
    }
    keel_wire_hdr a;
    struct iovec riov[2] = {{&a, sizeof a}, {out, out ? cap : 0}};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr rm = {.msg_iov = riov,
                        .msg_iovlen = out && cap ? 2 : 1,
                        .msg_control = ctl.buf,
                        .msg_controllen = sizeof ctl.buf};
    ssize_t r;
    do {
        r = recvmsg(app->fd, &rm, MSG_CMSG_CLOEXEC);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        return errno_status(errno);
    }
    if (r == 0) {
        return KEEL_APP_ERR_NOT_CONNECTED;
    }
    int fd = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&rm); c; c = CMSG_NXTHDR(&rm, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(int))) {
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
        }
    }
    if ((size_t)r < sizeof a || a.op != (op | KEEL_WIRE_ANSWER) || a.seq != h.seq ||
        a.status >= KEEL_APP_STATUS_COUNT) {
        if (fd >= 0) {
            close(fd);
        }
        return KEEL_APP_ERR_PROTOCOL;
    }
    keel_app_status st = (keel_app_status)a.status;
    if (out_len) {
        size_t n = a.len;
        if (!keel_app_copy_safe(out_len, &n, sizeof n)) {
            st = KEEL_APP_ERR_BAD_POINTER;
        }
    }
    if (st == KEEL_APP_OK && (rm.msg_flags & MSG_TRUNC)) {
        st = KEEL_APP_ERR_NO_SPACE; /* *out_len says how much was needed */
    }
    if (out_fd && fd >= 0 && st == KEEL_APP_OK) {
        if (!keel_app_copy_safe(out_fd, &fd, sizeof fd)) {
            close(fd);
            return KEEL_APP_ERR_BAD_POINTER;
        }
    } else if (fd >= 0) {
        close(fd);
    }
    return st;
}

keel_app_status keel_app_open_fd(int fd, keel_app **out)
{
    if (!out) {
        return KEEL_APP_ERR_BAD_POINTER;
    }
    if (fd < 0) {
        return KEEL_APP_ERR_NOT_CONNECTED;
    }
    if (g_app.fd > 0) {
        return KEEL_APP_ERR_BUSY; /* one handle per process */
    }
    memset(&g_app, 0, sizeof g_app);
    g_app.fd = fd;
    g_app.wake_fd = -1;
    size_t n = 0;
    keel_app_status st =
        keel_app_call(&g_app, KEEL_WIRE_HELLO, NULL, 0, g_app.name, sizeof g_app.name - 1, &n,
                      NULL);
    if (st != KEEL_APP_OK) {
        g_app.fd = 0;
        return st;
    }
    g_app.name[n < sizeof g_app.name ? n : sizeof g_app.name - 1] = '\0';
    keel_app_crash_install(&g_app);
    if (!keel_app_copy_safe(out, &(keel_app *){&g_app}, sizeof *out)) {
        return KEEL_APP_ERR_BAD_POINTER;
    }
    return KEEL_APP_OK;
}

keel_app_status keel_app_open(keel_app **out)
{
    const char *s = getenv("KEEL_APP_FD");
    if (!s || !*s) {
        return KEEL_APP_ERR_NOT_CONNECTED;
    }
    char *end;
    long fd = strtol(s, &end, 10);
    if (*end || fd < 0 || fd > 65535) {
        return KEEL_APP_ERR_NOT_CONNECTED;
    }
    return keel_app_open_fd((int)fd, out);
}

void keel_app_close(keel_app *app)
{
    if (app != &g_app || app->fd <= 0) {
        return;
    }
    keel_app_crash_uninstall();
    close(app->fd);
    if (app->wake_fd >= 0) {
        close(app->wake_fd);
    }
    memset(app, 0, sizeof *app);
}

int keel_app_fd(const keel_app *app)
{
    return app ? app->fd : -1;
}

const char *keel_app_name(const keel_app *app)
{
    return app ? app->name : "";
}

/* Calls carrying one payload buffer the app owns. */
static keel_app_status send_data(keel_app *app, uint16_t op, const void *data, size_t len)
{
    if (len == 0 || len > KEEL_APP_MAX_PAYLOAD) {
        return KEEL_APP_ERR_BAD_LENGTH;
    }
    if (!data) {
        return KEEL_APP_ERR_BAD_POINTER;
    }
    struct iovec part = {(void *)data, len};
    return keel_app_call(app, op, &part, 1, NULL, 0, NULL, NULL);
}

keel_app_status keel_app_log(keel_app *app, const char *line, size_t len)
{
    return send_data(app, KEEL_WIRE_LOG, line, len);
}

keel_app_status keel_app_heartbeat(keel_app *app)
{
    return keel_app_call(app, KEEL_WIRE_HEARTBEAT, NULL, 0, NULL, 0, NULL, NULL);
}

keel_app_status keel_app_confirm_health(keel_app *app)
{
    return keel_app_call(app, KEEL_WIRE_CONFIRM, NULL, 0, NULL, 0, NULL, NULL);
}

keel_app_status keel_app_telemetry_send(keel_app *app, const void *json, size_t len)
{
    return send_data(app, KEEL_WIRE_TELEMETRY, json, len);
}

keel_app_status keel_app_properties_report(keel_app *app, const void *json, size_t len)
{
    return send_data(app, KEEL_WIRE_REPORT, json, len);
}

keel_app_status keel_app_properties_desired(keel_app *app, void *buf, size_t cap, size_t *len)
{
    if (!buf || !len) {
        return KEEL_APP_ERR_BAD_POINTER;
    }
    if (cap == 0) {
        return KEEL_APP_ERR_BAD_LENGTH;
    }
    return keel_app_call(app, KEEL_WIRE_DESIRED, NULL, 0, buf, cap, len, NULL);
}

keel_app_status keel_app_method_answer(keel_app *app, uint32_t call_id, int32_t status,
                                       const void *json, size_t len)
{
    if (len > KEEL_APP_MAX_PAYLOAD) {
        return KEEL_APP_ERR_BAD_LENGTH;
    }
    if (!json && len) {
        return KEEL_APP_ERR_BAD_POINTER;
    }
    keel_wire_method m = {call_id, status};
    struct iovec parts[2] = {{&m, sizeof m}, {(void *)json, len}};
    return keel_app_call(app, KEEL_WIRE_METHOD_ANSWER, parts, len ? 2 : 1, NULL, 0, NULL, NULL);
}

keel_app_status keel_app_method_take(keel_app *app, uint32_t *call_id, char *name,
                                     size_t name_cap, void *body, size_t cap, size_t *len)
{
    if (!call_id || !name || !len || (!body && cap)) {
        return KEEL_APP_ERR_BAD_POINTER;
    }
    if (name_cap == 0) {
        return KEEL_APP_ERR_BAD_LENGTH;
    }
    /* keeld's answer lands here first, then goes to the app's buffers through the checked copy,
     * so a bad pointer is a status and not a fault */
    static uint8_t in[KEEL_APP_MAX_PAYLOAD];
    size_t n = 0;
    keel_app_status st = keel_app_call(app, KEEL_WIRE_METHOD_TAKE, NULL, 0, in, sizeof in, &n, NULL);
    if (st != KEEL_APP_OK) {
        return st;
    }
    keel_wire_method_call c;
    if (n < sizeof c) {
        return KEEL_APP_ERR_PROTOCOL;
    }
    memcpy(&c, in, sizeof c);
    if (c.name_len > n - sizeof c || c.body_len != n - sizeof c - c.name_len) {
        return KEEL_APP_ERR_PROTOCOL;
    }
    if (!keel_app_copy_safe(call_id, &c.call_id, sizeof *call_id)) {
        return KEEL_APP_ERR_BAD_POINTER;
    }
    if (c.name_len + 1 > name_cap || c.body_len > cap) {
        return KEEL_APP_ERR_NO_SPACE;
    }
    char zero = '\0';
    size_t body_len = c.body_len;
    if (!keel_app_copy_safe(name, in + sizeof c, c.name_len) ||
        !keel_app_copy_safe(name + c.name_len, &zero, 1) ||
        (c.body_len && !keel_app_copy_safe(body, in + sizeof c + c.name_len, c.body_len)) ||
        !keel_app_copy_safe(len, &body_len, sizeof *len)) {
        return KEEL_APP_ERR_BAD_POINTER;
    }
    return KEEL_APP_OK;
}

keel_app_status keel_app_channel_open(keel_app *app, const char *partner_id, int *fd)
{
    char id[65];
    size_t n;
    keel_app_status st = copy_string(id, sizeof id, partner_id, &n);
    if (st != KEEL_APP_OK) {
        return st;
    }
    if (n == 0) {
        return KEEL_APP_ERR_BAD_LENGTH;
    }
    if (!fd || !keel_app_copy_safe(fd, &(int){-1}, sizeof *fd)) {
        return KEEL_APP_ERR_BAD_POINTER;
    }
    struct iovec part = {id, n};
    return keel_app_call(app, KEEL_WIRE_CHANNEL_OPEN, &part, 1, NULL, 0, NULL, fd);
}

keel_app_status keel_app_cloud_open(keel_app *app, const char *kind, const char *target, int *fd)
{
    char k[16], t[256];
    size_t kn, tn;
    keel_app_status st = copy_string(k, sizeof k, kind, &kn);
    if (st == KEEL_APP_OK) {
        st = copy_string(t, sizeof t, target, &tn);
    }
    if (st != KEEL_APP_OK) {
        return st;
    }
    if (kn == 0 || tn == 0) {
        return KEEL_APP_ERR_BAD_LENGTH;
    }
    if (!fd || !keel_app_copy_safe(fd, &(int){-1}, sizeof *fd)) {
        return KEEL_APP_ERR_BAD_POINTER;
    }
    struct iovec parts[2] = {{k, kn + 1}, {t, tn}};
    return keel_app_call(app, KEEL_WIRE_CLOUD_OPEN, parts, 2, NULL, 0, NULL, fd);
}

/* serial_open / gpio_open: a device name from the device config, 1..31 characters. */
static keel_app_status device_open(keel_app *app, uint16_t op, const char *name, int *fd)
{
    char n[32];
    size_t len;
    keel_app_status st = copy_string(n, sizeof n, name, &len);
    if (st != KEEL_APP_OK) {
        return st;
    }
    if (len == 0) {
        return KEEL_APP_ERR_BAD_LENGTH;
    }
    if (!fd || !keel_app_copy_safe(fd, &(int){-1}, sizeof *fd)) {
        return KEEL_APP_ERR_BAD_POINTER;
    }
    struct iovec part = {n, len};
    return keel_app_call(app, op, &part, 1, NULL, 0, NULL, fd);
}

keel_app_status keel_app_serial_open(keel_app *app, const char *name, int *fd)
{
    return device_open(app, KEEL_WIRE_SERIAL_OPEN, name, fd);
}

keel_app_status keel_app_gpio_open(keel_app *app, const char *name, int *fd)
{
    return device_open(app, KEEL_WIRE_GPIO_OPEN, name, fd);
}

/* Topic builders and the topic parser for the two schemes. No I/O, no allocation.
 *
 * The plain scheme mirrors IoT Hub's tree under "{prefix}/{device}/" so that one ACL pattern
 * ("{prefix}/%u/#") confines a device to its own topics on any broker; the one difference is
 * desired properties: a plain broker has no twin service, so the operator keeps the full
 * desired document retained at "{prefix}/{device}/twin/desired" (the device gets it at every
 * subscribe, which also serves as the twin GET).
 *
 * Builders compute into a bounded writer and fail with SPACE rather than truncate. The parser
 * splits on '/', checks each segment's alphabet and length, and copies bounded strings out, so
 * any byte string from the broker either parses or is rejected as MALFORMED.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "keel/cloud.h"

const char *keel_cloud_err_name(keel_cloud_err e)
{
    static const char *const names[KEEL_CLOUD_ERR_COUNT] = {
        [KEEL_CLOUD_OK] = "KEEL_CLOUD_OK",
        [KEEL_CLOUD_ERR_ARG] = "KEEL_CLOUD_ERR_ARG",
        [KEEL_CLOUD_ERR_SPACE] = "KEEL_CLOUD_ERR_SPACE",
        [KEEL_CLOUD_ERR_TOO_BIG] = "KEEL_CLOUD_ERR_TOO_BIG",
        [KEEL_CLOUD_ERR_MALFORMED] = "KEEL_CLOUD_ERR_MALFORMED",
        [KEEL_CLOUD_ERR_STALE] = "KEEL_CLOUD_ERR_STALE",
        [KEEL_CLOUD_ERR_FULL] = "KEEL_CLOUD_ERR_FULL",
        [KEEL_CLOUD_ERR_DISK_FULL] = "KEEL_CLOUD_ERR_DISK_FULL",
        [KEEL_CLOUD_ERR_DB] = "KEEL_CLOUD_ERR_DB",
        [KEEL_CLOUD_ERR_TLS] = "KEEL_CLOUD_ERR_TLS",
        [KEEL_CLOUD_ERR_MQTT] = "KEEL_CLOUD_ERR_MQTT",
        [KEEL_CLOUD_ERR_NOT_FOUND] = "KEEL_CLOUD_ERR_NOT_FOUND",
    };
    if ((unsigned)e >= KEEL_CLOUD_ERR_COUNT) {
        return "KEEL_CLOUD_ERR_UNKNOWN";
    }
    return names[e];
}

keel_status keel_cloud_err_status(keel_cloud_err e)
{
    switch (e) {
    case KEEL_CLOUD_OK:
        return KEEL_OK;
    case KEEL_CLOUD_ERR_ARG:
        return KEEL_ERR_INVALID_ARG;
    case KEEL_CLOUD_ERR_SPACE:
    case KEEL_CLOUD_ERR_TOO_BIG:
    case KEEL_CLOUD_ERR_FULL:
    case KEEL_CLOUD_ERR_DISK_FULL:
        return KEEL_ERR_NO_SPACE;
    case KEEL_CLOUD_ERR_MALFORMED:
        return KEEL_ERR_PROTOCOL;
    case KEEL_CLOUD_ERR_STALE:
        return KEEL_ERR_BUSY;
    case KEEL_CLOUD_ERR_DB:
        return KEEL_ERR_IO;
    case KEEL_CLOUD_ERR_TLS:
        return KEEL_ERR_DENIED;
    case KEEL_CLOUD_ERR_MQTT:
        return KEEL_ERR_IO;
    case KEEL_CLOUD_ERR_NOT_FOUND:
        return KEEL_ERR_NOT_FOUND;
    default:
        return KEEL_ERR_INVALID_ARG;
    }
}

/* ---- bounded writer ------------------------------------------------------------------- */

typedef struct writer {
    char *buf;
    size_t cap, len;
    bool over;
} writer;

static void wputf(writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wputf(writer *w, const char *fmt, ...)
{
    if (w->over) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->buf + w->len, w->cap - w->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= w->cap - w->len) {
        w->over = true;
        return;
    }
    w->len += (size_t)n;
}

static keel_cloud_err wdone(writer *w)
{
    if (w->over) {
        if (w->cap > 0) {
            w->buf[0] = '\0';
        }
        return KEEL_CLOUD_ERR_SPACE;
    }
    return KEEL_CLOUD_OK;
}

static bool writer_init(writer *w, char *buf, size_t cap)
{
    if (!buf || cap == 0) {
        return false;
    }
    *w = (writer){.buf = buf, .cap = cap};
    buf[0] = '\0';
    return true;
}

/* ---- alphabets -------------------------------------------------------------------------- */

static bool id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == ':';
}

static bool id_valid(const char *s, size_t n)
{
    if (n == 0 || n >= KEEL_CLOUD_MAX_ID) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!id_char(s[i])) {
            return false;
        }
    }
    return true;
}

/* A request id or a property value: printable ASCII without topic or query separators. */
static bool rid_valid(const char *s, size_t n)
{
    if (n == 0 || n >= KEEL_CLOUD_MAX_ID) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == '&' || c == '?' || c == '#' || c == '+' ||
            c == '=') {
            return false;
        }
    }
    return true;
}

static bool prefix_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= KEEL_CLOUD_MAX_ID || s[0] == '/' || s[n - 1] == '/' || s[0] == '$') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '#' || c == '+' || (c == '/' && s[i + 1] == '/')) {
            return false;
        }
    }
    return true;
}

keel_cloud_err keel_cloud_topics_init(keel_cloud_topics *t, keel_cloud_scheme s,
                                      const char *device_id, const char *prefix)
{
    if (!t || !device_id || (s != KEEL_CLOUD_SCHEME_IOTHUB && s != KEEL_CLOUD_SCHEME_PLAIN)) {
        return KEEL_CLOUD_ERR_ARG;
    }
    memset(t, 0, sizeof *t);
    if (!id_valid(device_id, strlen(device_id))) {
        return KEEL_CLOUD_ERR_ARG;
    }
    if (s == KEEL_CLOUD_SCHEME_PLAIN) {
        if (!prefix) {
            prefix = "keel";
        }
        if (!prefix_valid(prefix)) {
            return KEEL_CLOUD_ERR_ARG;
        }
        memcpy(t->prefix, prefix, strlen(prefix) + 1);
    }
    t->scheme = s;
    memcpy(t->device_id, device_id, strlen(device_id) + 1);
    return KEEL_CLOUD_OK;
}

/* "$iothub/" or "{prefix}/{id}/": the root of the topics a device exchanges with its service. */
static void put_service_root(writer *w, const keel_cloud_topics *t)
{
    if (t->scheme == KEEL_CLOUD_SCHEME_IOTHUB) {
        wputf(w, "$iothub/");
    } else {
        wputf(w, "%s/%s/", t->prefix, t->device_id);
    }
}

/* "devices/{id}/" or "{prefix}/{id}/": the root of the device's own telemetry. */
static void put_device_root(writer *w, const keel_cloud_topics *t)
{
    if (t->scheme == KEEL_CLOUD_SCHEME_IOTHUB) {
        wputf(w, "devices/%s/", t->device_id);
    } else {
        wputf(w, "%s/%s/", t->prefix, t->device_id);
    }
}

keel_cloud_err keel_cloud_topic_telemetry(const keel_cloud_topics *t, uint64_t mid,
                                          const char *props, char *buf, size_t cap)
{
    writer w;
    if (!t || !writer_init(&w, buf, cap)) {
        return KEEL_CLOUD_ERR_ARG;
    }
    if (props && (strchr(props, '/') || strchr(props, '#') || strchr(props, '+'))) {
        return KEEL_CLOUD_ERR_ARG;
    }
    put_device_root(&w, t);
    wputf(&w, "messages/events/$.mid=%llu", (unsigned long long)mid);
    if (props && props[0]) {
        wputf(&w, "&%s", props);
    }
    return wdone(&w);
}

keel_cloud_err keel_cloud_topic_twin_get(const keel_cloud_topics *t, uint64_t rid, char *buf,
                                         size_t cap)
{
    writer w;
    if (!t || !writer_init(&w, buf, cap)) {
        return KEEL_CLOUD_ERR_ARG;
    }
    put_service_root(&w, t);
    wputf(&w, "twin/GET/?$rid=%llu", (unsigned long long)rid);
    return wdone(&w);
}

keel_cloud_err keel_cloud_topic_reported(const keel_cloud_topics *t, uint64_t rid, char *buf,
                                         size_t cap)
{
    writer w;
    if (!t || !writer_init(&w, buf, cap)) {
        return KEEL_CLOUD_ERR_ARG;
    }
    put_service_root(&w, t);
    wputf(&w, "twin/PATCH/properties/reported/?$rid=%llu", (unsigned long long)rid);
    return wdone(&w);
}

keel_cloud_err keel_cloud_topic_method_response(const keel_cloud_topics *t, int status,
                                                const char *rid, char *buf, size_t cap)
{
    writer w;
    if (!t || !rid || !writer_init(&w, buf, cap) || !rid_valid(rid, strlen(rid)) || status < 0 ||
        status > 999) {
        return KEEL_CLOUD_ERR_ARG;
    }
    put_service_root(&w, t);
    wputf(&w, "methods/res/%d/?$rid=%s", status, rid);
    return wdone(&w);
}

keel_cloud_err keel_cloud_topic_desired(const keel_cloud_topics *t, int64_t version, char *buf,
                                        size_t cap)
{
    writer w;
    if (!t || !writer_init(&w, buf, cap)) {
        return KEEL_CLOUD_ERR_ARG;
    }
    put_service_root(&w, t);
    if (t->scheme == KEEL_CLOUD_SCHEME_IOTHUB) {
        wputf(&w, "twin/PATCH/properties/desired/?$version=%lld", (long long)version);
    } else {
        wputf(&w, "twin/desired");
    }
    return wdone(&w);
}

keel_cloud_err keel_cloud_topic_method_call(const keel_cloud_topics *t, const char *name,
                                            const char *rid, char *buf, size_t cap)
{
    writer w;
    if (!t || !name || !rid || !writer_init(&w, buf, cap) || !id_valid(name, strlen(name)) ||
        !rid_valid(rid, strlen(rid))) {
        return KEEL_CLOUD_ERR_ARG;
    }
    put_service_root(&w, t);
    wputf(&w, "methods/POST/%s/?$rid=%s", name, rid);
    return wdone(&w);
}

keel_cloud_err keel_cloud_topic_subscription(const keel_cloud_topics *t, int i, char *buf,
                                             size_t cap)
{
    static const char *const hub[] = {"twin/res/#", "twin/PATCH/properties/desired/#",
                                      "methods/POST/#"};
    static const char *const plain[] = {"twin/res/#", "twin/desired", "methods/POST/#"};
    writer w;
    if (!t || i < 0 || i >= 3 || !writer_init(&w, buf, cap)) {
        return KEEL_CLOUD_ERR_ARG;
    }
    put_service_root(&w, t);
    wputf(&w, "%s", t->scheme == KEEL_CLOUD_SCHEME_IOTHUB ? hub[i] : plain[i]);
    return wdone(&w);
}

keel_cloud_err keel_cloud_username(const keel_cloud_topics *t, const char *hub_host, char *buf,
                                   size_t cap)
{
    writer w;
    if (!t || !writer_init(&w, buf, cap)) {
        return KEEL_CLOUD_ERR_ARG;
    }
    if (t->scheme == KEEL_CLOUD_SCHEME_IOTHUB) {
        if (!hub_host || !hub_host[0] || strchr(hub_host, '/')) {
            return KEEL_CLOUD_ERR_ARG;
        }
        wputf(&w, "%s/%s/?api-version=%s", hub_host, t->device_id, KEEL_CLOUD_IOTHUB_API);
    } else {
        wputf(&w, "%s", t->device_id);
    }
    return wdone(&w);
}

/* ---- parsing ---------------------------------------------------------------------------- */

typedef struct span {
    const char *p;
    size_t n;
} span;

static bool span_eq(span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

/* Takes the next '/'-separated segment off *rest. False when *rest is exhausted. After the
 * last segment, rest->p is NULL, so "a/" (a trailing empty segment) differs from "a". */
static bool next_seg(span *rest, span *seg)
{
    if (!rest->p) {
        return false;
    }
    const char *slash = memchr(rest->p, '/', rest->n);
    if (!slash) {
        *seg = *rest;
        rest->p = NULL;
        rest->n = 0;
        return true;
    }
    seg->p = rest->p;
    seg->n = (size_t)(slash - rest->p);
    rest->n -= seg->n + 1;
    rest->p = slash + 1;
    return true;
}

static bool copy_id(char *dst, span s, bool (*valid)(const char *, size_t))
{
    if (!valid(s.p, s.n)) {
        return false;
    }
    memcpy(dst, s.p, s.n);
    dst[s.n] = '\0';
    return true;
}

static bool parse_u64(span s, uint64_t max, uint64_t *out)
{
    if (s.n == 0 || s.n > 19) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') {
            return false;
        }
        v = v * 10 + (uint64_t)(s.p[i] - '0');
    }
    if (v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* A property bag "k=v&k=v", optionally after '?'. Recognises $rid, $version and $.mid; other
 * keys are checked for shape and skipped. */
static bool parse_bag(span s, keel_cloud_msg *m)
{
    if (s.n > 0 && s.p[0] == '?') {
        s.p++;
        s.n--;
    }
    while (s.n > 0) {
        const char *amp = memchr(s.p, '&', s.n);
        span kv = {s.p, amp ? (size_t)(amp - s.p) : s.n};
        const char *eq = memchr(kv.p, '=', kv.n);
        if (!eq || eq == kv.p) {
            return false;
        }
        span k = {kv.p, (size_t)(eq - kv.p)};
        span v = {eq + 1, kv.n - k.n - 1};
        if (span_eq(k, "$rid")) {
            if (!copy_id(m->rid, v, rid_valid)) {
                return false;
            }
        } else if (span_eq(k, "$version")) {
            uint64_t ver;
            if (!parse_u64(v, INT64_MAX, &ver)) {
                return false;
            }
            m->version = (int64_t)ver;
        } else if (span_eq(k, "$.mid")) {
            if (!parse_u64(v, UINT64_MAX, &m->mid)) {
                return false;
            }
        } else if (v.n > 0 && !rid_valid(v.p, v.n)) {
            return false;
        }
        if (!amp) {
            break;
        }
        s.n -= kv.n + 1;
        s.p = amp + 1;
        if (s.n == 0) {
            return false; /* trailing '&' */
        }
    }
    return true;
}

static bool parse_status(span s, int *status)
{
    uint64_t v;
    if (s.n != 3 || !parse_u64(s, 999, &v)) {
        return false;
    }
    *status = (int)v;
    return true;
}

/* The last segment: a bag, and nothing after it. */
static bool last_bag(span *rest, keel_cloud_msg *m)
{
    span seg;
    if (!next_seg(rest, &seg) || rest->p) {
        return false;
    }
    return parse_bag(seg, m);
}

keel_cloud_err keel_cloud_parse_topic(const keel_cloud_topics *t, bool operator_side,
                                      const char *topic, size_t len, keel_cloud_msg *out)
{
    if (!t || !topic || !out) {
        return KEEL_CLOUD_ERR_ARG;
    }
    memset(out, 0, sizeof *out);
    out->version = -1;
    if (len == 0 || len >= KEEL_CLOUD_MAX_TOPIC * 2 || memchr(topic, '\0', len)) {
        return KEEL_CLOUD_ERR_MALFORMED;
    }
    span rest = {topic, len}, seg;
    bool service = false; /* "$iothub/..." carries no device: it is this connection's */

    if (t->scheme == KEEL_CLOUD_SCHEME_IOTHUB) {
        if (!next_seg(&rest, &seg)) {
            return KEEL_CLOUD_ERR_MALFORMED;
        }
        if (span_eq(seg, "$iothub")) {
            service = true;
            memcpy(out->device, t->device_id, strlen(t->device_id) + 1);
        } else if (span_eq(seg, "devices")) {
            if (!next_seg(&rest, &seg) || !copy_id(out->device, seg, id_valid)) {
                return KEEL_CLOUD_ERR_MALFORMED;
            }
        } else {
            return KEEL_CLOUD_ERR_MALFORMED;
        }
    } else {
        /* The prefix may itself hold '/': compare it whole. */
        size_t pn = strlen(t->prefix);
        if (len <= pn || memcmp(topic, t->prefix, pn) != 0 || topic[pn] != '/') {
            return KEEL_CLOUD_ERR_MALFORMED;
        }
        rest.p = topic + pn + 1;
        rest.n = len - pn - 1;
        if (!next_seg(&rest, &seg) || !copy_id(out->device, seg, id_valid)) {
            return KEEL_CLOUD_ERR_MALFORMED;
        }
        service = true;
    }
    if (!operator_side && strcmp(out->device, t->device_id) != 0) {
        return KEEL_CLOUD_ERR_MALFORMED;
    }

    if (!next_seg(&rest, &seg)) {
        return KEEL_CLOUD_ERR_MALFORMED;
    }
    if (span_eq(seg, "messages") && operator_side &&
        (t->scheme == KEEL_CLOUD_SCHEME_PLAIN || !service)) {
        if (!next_seg(&rest, &seg) || !span_eq(seg, "events")) {
            return KEEL_CLOUD_ERR_MALFORMED;
        }
        out->kind = KEEL_CLOUD_MSG_TELEMETRY;
        if (!rest.p) {
            return KEEL_CLOUD_OK; /* ".../events" with no bag at all */
        }
        return last_bag(&rest, out) ? KEEL_CLOUD_OK : KEEL_CLOUD_ERR_MALFORMED;
    }
    if (!service) {
        return KEEL_CLOUD_ERR_MALFORMED;
    }
    if (span_eq(seg, "twin")) {
        if (!next_seg(&rest, &seg)) {
            return KEEL_CLOUD_ERR_MALFORMED;
        }
        if (span_eq(seg, "res")) {
            out->kind = KEEL_CLOUD_MSG_TWIN_RESPONSE;
            if (!next_seg(&rest, &seg) || !parse_status(seg, &out->status) ||
                !last_bag(&rest, out)) {
                return KEEL_CLOUD_ERR_MALFORMED;
            }
            return KEEL_CLOUD_OK;
        }
        if (span_eq(seg, "desired") && t->scheme == KEEL_CLOUD_SCHEME_PLAIN) {
            out->kind = KEEL_CLOUD_MSG_DESIRED;
            return rest.p ? KEEL_CLOUD_ERR_MALFORMED : KEEL_CLOUD_OK;
        }
        if (!span_eq(seg, "PATCH") || !next_seg(&rest, &seg) || !span_eq(seg, "properties") ||
            !next_seg(&rest, &seg)) {
            return KEEL_CLOUD_ERR_MALFORMED;
        }
        if (span_eq(seg, "desired") && t->scheme == KEEL_CLOUD_SCHEME_IOTHUB) {
            out->kind = KEEL_CLOUD_MSG_DESIRED;
        } else if (span_eq(seg, "reported") && operator_side) {
            out->kind = KEEL_CLOUD_MSG_REPORTED;
        } else {
            return KEEL_CLOUD_ERR_MALFORMED;
        }
        return last_bag(&rest, out) ? KEEL_CLOUD_OK : KEEL_CLOUD_ERR_MALFORMED;
    }
    if (span_eq(seg, "methods")) {
        if (!next_seg(&rest, &seg)) {
            return KEEL_CLOUD_ERR_MALFORMED;
        }
        if (span_eq(seg, "POST")) {
            out->kind = KEEL_CLOUD_MSG_METHOD;
            if (!next_seg(&rest, &seg) || !copy_id(out->name, seg, id_valid) ||
                !last_bag(&rest, out) || !out->rid[0]) {
                return KEEL_CLOUD_ERR_MALFORMED;
            }
            return KEEL_CLOUD_OK;
        }
        if (span_eq(seg, "res") && operator_side) {
            out->kind = KEEL_CLOUD_MSG_METHOD_RESPONSE;
            if (!next_seg(&rest, &seg) || !parse_status(seg, &out->status) ||
                !last_bag(&rest, out) || !out->rid[0]) {
                return KEEL_CLOUD_ERR_MALFORMED;
            }
            return KEEL_CLOUD_OK;
        }
    }
    return KEEL_CLOUD_ERR_MALFORMED;
}

/* ---- reconnect backoff ------------------------------------------------------------------ */

uint32_t keel_cloud_backoff_next(keel_cloud_backoff *b, uint32_t rnd)
{
    uint32_t lo = b->min_ms ? b->min_ms : 1;
    uint32_t hi = b->max_ms >= lo ? b->max_ms : lo;
    uint64_t d = lo;
    for (uint32_t i = 0; i < b->attempt && d < hi; i++) {
        d *= 2;
    }
    if (d > hi) {
        d = hi;
    }
    if (b->attempt < 64) {
        b->attempt++;
    }
    /* Jitter in [d/2, d]: never below half, so a flapping link still backs off. */
    uint64_t half = d / 2;
    return (uint32_t)(half + (half ? rnd % (d - half + 1) : 0));
}

void keel_cloud_backoff_reset(keel_cloud_backoff *b)
{
    b->attempt = 0;
}

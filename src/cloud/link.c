/* The link: one MQTT session over TLS (libmosquitto), fed from the durable outbox.
 *
 * Threading: none. The caller drives everything through keel_cloud_step(); libmosquitto is
 * used through loop_read/loop_write/loop_misc on a socket we poll ourselves (mosquitto_loop's
 * select() cannot take descriptors above FD_SETSIZE, which a fleet test or a busy keeld has).
 *
 * Sessions: each connection attempt gets a fresh mosquitto object with clean session false, so
 * the broker keeps our subscriptions and queues commands while we are away, but libmosquitto
 * keeps no outgoing state of its own across attempts: after a reconnect the outbox is the only
 * truth and is resent from its oldest row. A row the broker had already received before the
 * link dropped is then sent twice with the same message id, which the receiver drops; order
 * holds because rows are sent in id order and QoS 1 over one connection keeps order.
 *
 * Acks: a PUBACK deletes its row; deletes are gathered and committed once per step.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <mosquitto.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "link.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cloud_log(keel_cloud *c, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (c->cb.on_log) {
        c->cb.on_log(c->user, line);
    } else {
        fprintf(stderr, "cloud %s: %s\n", c->topics.device_id, line);
    }
}

/* Formats the last connection error (vsnprintf: truncation is fine for a message). */
void cloud_set_err(keel_cloud *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->st.last_error, sizeof c->st.last_error, fmt, ap);
    va_end(ap);
}

/* ---- libmosquitto callbacks (called inside loop_read/loop_write) ------------------------ */

static void cb_connect(struct mosquitto *mosq, void *obj, int rc)
{
    keel_cloud *c = obj;
    if (rc != 0) {
        cloud_set_err(c, "broker refused the connection: %s", mosquitto_connack_string(rc));
        c->dropped = true;
        return;
    }
    c->connected = true;
    c->st.connected = true;
    c->st.last_error[0] = '\0';
    keel_cloud_backoff_reset(&c->backoff);
    for (int i = 0;; i++) {
        char filter[KEEL_CLOUD_MAX_TOPIC];
        if (keel_cloud_topic_subscription(&c->topics, i, filter, sizeof filter) != KEEL_CLOUD_OK) {
            break;
        }
        if (mosquitto_subscribe(mosq, NULL, filter, 1) != MOSQ_ERR_SUCCESS) {
            cloud_log(c, "subscribe %s failed", filter);
        }
    }
    if (c->topics.scheme == KEEL_CLOUD_SCHEME_IOTHUB) {
        cloud_twin_request(c);
    }
    if (c->cb.on_state) {
        c->cb.on_state(c->user, true, "connected");
    }
}

static void cb_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
    (void)mosq;
    keel_cloud *c = obj;
    if (!c->st.last_error[0]) {
        cloud_set_err(c, "connection lost: %s", mosquitto_strerror(rc));
    }
    c->dropped = true;
}

static void cb_publish(struct mosquitto *mosq, void *obj, int mid)
{
    (void)mosq;
    keel_cloud *c = obj;
    for (int i = 0; i < c->n_inflight; i++) {
        if (c->inflight[i].mid == mid) {
            uint64_t id = c->inflight[i].id;
            c->inflight[i] = c->inflight[--c->n_inflight];
            if (c->n_acked < c->cfg.max_inflight * 2) {
                c->acked[c->n_acked++] = id; /* else: stays queued, resent, deduped */
            }
            return;
        }
    }
}

static void cb_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
    (void)mosq;
    keel_cloud *c = obj;
    keel_cloud_msg m;
    const char *topic = msg->topic ? msg->topic : "";
    keel_cloud_err e = keel_cloud_parse_topic(&c->topics, false, topic, strlen(topic), &m);
    if (e != KEEL_CLOUD_OK) {
        cloud_log(c, "message on unexpected topic rejected (%.100s)", topic);
        return;
    }
    if (msg->payloadlen < 0 || (size_t)msg->payloadlen > KEEL_CLOUD_MAX_MESSAGE) {
        cloud_log(c, "message on %.100s rejected: %d bytes is over the %u-byte cap", topic,
                  msg->payloadlen, KEEL_CLOUD_MAX_MESSAGE);
        return;
    }
    const char *payload = msg->payload ? (const char *)msg->payload : "";
    size_t len = (size_t)msg->payloadlen;
    switch (m.kind) {
    case KEEL_CLOUD_MSG_DESIRED:
        if (len == 0) {
            return; /* a cleared retained document */
        }
        cloud_twin_message(c, &m, payload, len, c->topics.scheme == KEEL_CLOUD_SCHEME_PLAIN);
        break;
    case KEEL_CLOUD_MSG_TWIN_RESPONSE:
        if (m.status == 200 && c->twin_rid && strtoull(m.rid, NULL, 10) == c->twin_rid) {
            c->twin_rid = 0;
            cloud_twin_message(c, &m, payload, len, true);
        } else if (m.status >= 400) {
            cloud_log(c, "twin request %s answered %d", m.rid, m.status);
        }
        break;
    case KEEL_CLOUD_MSG_METHOD:
        if (c->cb.on_method) {
            c->cb.on_method(c->user, m.name, m.rid, payload, len);
        } else {
            if (keel_cloud_method_answer(c, m.rid, 501, "{\"error\":\"no method handler\"}") !=
                KEEL_CLOUD_OK) {
                cloud_log(c, "method %s: no handler, and the 501 answer could not be sent", m.name);
            }
        }
        break;
    default:
        break;
    }
}

static void cb_log(struct mosquitto *mosq, void *obj, int level, const char *str)
{
    (void)mosq;
    keel_cloud *c = obj;
    /* OpenSSL's reasons (certificate verify failed, unknown ca) arrive only here. */
    if (level == MOSQ_LOG_ERR && str) {
        cloud_set_err(c, "%s", str);
    }
}

/* ---- session management ----------------------------------------------------------------- */

static void session_teardown(keel_cloud *c, const char *why)
{
    bool was = c->connected;
    if (c->mosq) {
        mosquitto_destroy(c->mosq);
        c->mosq = NULL;
    }
    c->connected = false;
    c->st.connected = false;
    c->dropped = false;
    c->n_inflight = 0;
    c->sent_upto = 0;
    c->twin_rid = 0;
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd) {
        rnd = (uint32_t)now_ms();
    }
    uint32_t delay = keel_cloud_backoff_next(&c->backoff, rnd);
    c->next_attempt = now_ms() + delay;
    cloud_log(c, "%s; next attempt in %u ms", why, delay);
    if (was && c->cb.on_state) {
        c->cb.on_state(c->user, false, why);
    }
}

static void session_start(keel_cloud *c)
{
    const keel_cloud_config *k = &c->cfg;
    c->st.reconnects++;
    c->attempt_started = now_ms();
    struct mosquitto *m = mosquitto_new(c->topics.device_id, false, c);
    if (!m) {
        session_teardown(c, "mosquitto_new failed");
        return;
    }
    c->mosq = m;
    mosquitto_connect_callback_set(m, cb_connect);
    mosquitto_disconnect_callback_set(m, cb_disconnect);
    mosquitto_publish_callback_set(m, cb_publish);
    mosquitto_message_callback_set(m, cb_message);
    mosquitto_log_callback_set(m, cb_log);
    (void)mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION,
                               k->mqtt_version == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
    (void)mosquitto_max_inflight_messages_set(m, (unsigned)k->max_inflight);
    /* Messages go out one by one as PUBACKs free the window: with Nagle each small write
     * could wait for the peer's delayed ACK. */
    (void)mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    char user[KEEL_CLOUD_MAX_TOPIC];
    if (keel_cloud_username(&c->topics, k->host, user, sizeof user) == KEEL_CLOUD_OK &&
        k->scheme == KEEL_CLOUD_SCHEME_IOTHUB) {
        (void)mosquitto_username_pw_set(m, user, NULL);
    }
    /* TLS is not optional: with no CA there is no connection at all, never plaintext. */
    int rc = mosquitto_tls_set(m, k->ca_file, NULL, k->cert_file, k->key_file, NULL);
    if (rc == MOSQ_ERR_SUCCESS) {
        rc = mosquitto_tls_opts_set(m, 1, "tlsv1.2", NULL);
    }
    if (rc == MOSQ_ERR_SUCCESS) {
        rc = mosquitto_tls_insecure_set(m, false);
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        char why[700];
        snprintf(why, sizeof why, "TLS setup failed (ca %s, cert %s): %s", k->ca_file,
                 k->cert_file ? k->cert_file : "-", mosquitto_strerror(rc));
        cloud_set_err(c, "%s", why);
        session_teardown(c, why);
        return;
    }
    c->st.last_error[0] = '\0';
    rc = mosquitto_connect_async(m, k->host, k->port, k->keepalive_s);
    if (rc != MOSQ_ERR_SUCCESS) {
        char why[700];
        snprintf(why, sizeof why, "connect to %s:%u failed: %s%s%s", k->host, k->port,
                 mosquitto_strerror(rc), c->st.last_error[0] ? ": " : "", c->st.last_error);
        cloud_set_err(c, "%s", why);
        session_teardown(c, why);
    }
}

/* Publishes queued rows in id order while the window has room, reading them in chunks.
 * Returns true when the outbox had nothing more to send. */
static bool pump(keel_cloud *c)
{
    enum { CHUNK = 32 };
    outbox_row rows[CHUNK];
    while (c->connected && c->mosq && c->n_inflight < c->cfg.max_inflight && !c->dropped) {
        size_t room = (size_t)(c->cfg.max_inflight - c->n_inflight), n = 0;
        keel_cloud_err e =
            outbox_next_batch(c->ob, c->sent_upto, rows, room < CHUNK ? room : CHUNK, &n);
        if (e != KEEL_CLOUD_OK) {
            if (e != KEEL_CLOUD_ERR_NOT_FOUND) {
                cloud_log(c, "outbox read failed: %s", outbox_errmsg(c->ob));
            }
            return true;
        }
        for (size_t i = 0; i < n; i++) {
            outbox_row *row = &rows[i];
            if (c->dropped) {
                outbox_row_free(row);
                continue;
            }
            char topic[KEEL_CLOUD_MAX_TOPIC];
            e = row->kind == OUTBOX_REPORTED
                    ? keel_cloud_topic_reported(&c->topics, row->id, topic, sizeof topic)
                    : keel_cloud_topic_telemetry(&c->topics, row->id, row->props, topic,
                                                 sizeof topic);
            if (e != KEEL_CLOUD_OK) {
                /* Cannot happen for rows checked on the way in; skip rather than wedge. */
                cloud_log(c, "message %llu has no valid topic; dropped",
                          (unsigned long long)row->id);
                if (outbox_delete(c->ob, &row->id, 1) != KEEL_CLOUD_OK) {
                    cloud_log(c, "outbox delete failed: %s", outbox_errmsg(c->ob));
                }
                c->sent_upto = row->id;
                outbox_row_free(row);
                continue;
            }
            int mid = 0;
            int rc = mosquitto_publish(c->mosq, &mid, topic, (int)row->len, row->payload, 1, false);
            if (rc != MOSQ_ERR_SUCCESS) {
                c->dropped = true;
                cloud_set_err(c, "publish failed: %s", mosquitto_strerror(rc));
            } else {
                c->inflight[c->n_inflight++] = (inflight){mid, row->id};
                c->sent_upto = row->id;
            }
            outbox_row_free(row);
        }
    }
    return false;
}

static void flush_acks(keel_cloud *c)
{
    if (c->n_acked == 0) {
        return;
    }
    keel_cloud_err e = outbox_delete(c->ob, c->acked, (size_t)c->n_acked);
    if (e != KEEL_CLOUD_OK) {
        /* Rows stay; they are resent after the next reconnect and deduped downstream. */
        cloud_log(c, "outbox delete failed: %s", outbox_errmsg(c->ob));
    }
    c->st.acked += (uint64_t)c->n_acked;
    for (int i = 0; i < c->n_acked; i++) {
        if (c->cb.on_acked) {
            c->cb.on_acked(c->user, c->acked[i]);
        }
    }
    c->n_acked = 0;
}

int keel_cloud_fd(keel_cloud *c)
{
    return c && c->mosq ? mosquitto_socket(c->mosq) : -1;
}

bool keel_cloud_want_write(keel_cloud *c)
{
    return c && c->mosq && mosquitto_want_write(c->mosq);
}

int keel_cloud_step(keel_cloud *c, int timeout_ms)
{
    if (!c) {
        return -1;
    }
    if (!c->mosq && now_ms() >= c->next_attempt) {
        session_start(c);
    }
    int fd = keel_cloud_fd(c);
    if (fd < 0) {
        int64_t wait = c->next_attempt - now_ms();
        if (c->mosq) {
            /* A socket vanished under us (libmosquitto closed it): start over. */
            session_teardown(c, c->st.last_error[0] ? c->st.last_error : "connection closed");
            return 0;
        }
        if (timeout_ms > 0 && wait > 0) {
            (void)poll(NULL, 0, (int)(wait < timeout_ms ? wait : timeout_ms));
        }
        wait = c->next_attempt - now_ms();
        return wait > 0 ? (int)wait : 0;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (mosquitto_want_write(c->mosq)) {
        p.events |= POLLOUT;
    }
    int n = poll(&p, 1, timeout_ms < 0 ? 1000 : timeout_ms);
    int rc = MOSQ_ERR_SUCCESS;
    if (!c->connected && n > 0 && (p.revents & (POLLERR | POLLHUP))) {
        /* A refused or reset connect: libmosquitto 2.0 keeps retrying the TLS handshake on
         * a dead socket, so catch it here with the socket's own error. */
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        (void)getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (!c->st.last_error[0]) {
            cloud_set_err(c, "connect to %s:%u failed: %s", c->cfg.host, c->cfg.port,
                          soerr ? strerror(soerr) : "refused or closed by the peer");
        }
        session_teardown(c, c->st.last_error);
        return 0;
    }
    if (!c->connected && now_ms() - c->attempt_started > (int64_t)c->cfg.keepalive_s * 1000) {
        snprintf(c->st.last_error, sizeof c->st.last_error,
                 "connect to %s:%u: no CONNACK within %d s", c->cfg.host, c->cfg.port,
                 c->cfg.keepalive_s);
        session_teardown(c, c->st.last_error);
        return 0;
    }
    if (n > 0 && (p.revents & (POLLIN | POLLERR | POLLHUP))) {
        rc = mosquitto_loop_read(c->mosq, 64);
    }
    if (rc == MOSQ_ERR_SUCCESS && c->mosq && mosquitto_socket(c->mosq) >= 0 &&
        mosquitto_want_write(c->mosq)) {
        rc = mosquitto_loop_write(c->mosq, 64);
    }
    if (rc == MOSQ_ERR_SUCCESS && mosquitto_socket(c->mosq) >= 0) {
        rc = mosquitto_loop_misc(c->mosq);
    }
    /* Send first, delete later: a delete transaction per step would cost more than the
     * sending. Acks are flushed once half a window has gathered, or when the outbox has
     * nothing more to send, or before the session goes. */
    bool idle = true;
    if (rc == MOSQ_ERR_SUCCESS && !c->dropped) {
        idle = pump(c);
    }
    bool ending = rc != MOSQ_ERR_SUCCESS || c->dropped || mosquitto_socket(c->mosq) < 0;
    if (idle || ending || c->n_acked >= c->cfg.max_inflight / 2) {
        flush_acks(c);
    }
    if (ending) {
        char why[sizeof c->st.last_error + 64];
        if (c->st.last_error[0]) {
            snprintf(why, sizeof why, "%s", c->st.last_error);
        } else {
            snprintf(why, sizeof why, "connection to %s:%u lost: %s", c->cfg.host, c->cfg.port,
                     mosquitto_strerror(rc));
            cloud_set_err(c, "%s", why);
        }
        session_teardown(c, why);
        return 0;
    }
    return c->n_acked || mosquitto_want_write(c->mosq) ? 0 : 1000;
}

/* ---- the public operations -------------------------------------------------------------- */

static bool props_valid(const char *props)
{
    if (!props) {
        return true;
    }
    size_t n = strlen(props);
    if (n >= KEEL_CLOUD_MAX_TOPIC / 2) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)props[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '/' || ch == '#' || ch == '+' || ch == '?') {
            return false;
        }
    }
    return true;
}

static keel_cloud_err queue(keel_cloud *c, int kind, const char *props, const void *payload,
                            size_t len, uint64_t *mid)
{
    uint64_t id = 0, evicted = 0;
    keel_cloud_err e = outbox_put(c->ob, kind, props, payload, len, &id, &evicted);
    c->st.evicted += evicted;
    if (e == KEEL_CLOUD_OK) {
        c->st.last_mid = id;
        if (mid) {
            *mid = id;
        }
    } else {
        cloud_log(c, "message not accepted: %s (%s)", keel_cloud_err_name(e), outbox_errmsg(c->ob));
    }
    return e;
}

keel_cloud_err keel_cloud_send_telemetry(keel_cloud *c, const void *payload, size_t len,
                                         const char *props, uint64_t *mid)
{
    if (!c || (!payload && len)) {
        return KEEL_CLOUD_ERR_ARG;
    }
    if (len > KEEL_CLOUD_MAX_MESSAGE) {
        return KEEL_CLOUD_ERR_TOO_BIG;
    }
    if (!props_valid(props)) {
        return KEEL_CLOUD_ERR_ARG;
    }
    return queue(c, OUTBOX_TELEMETRY, props, payload, len, mid);
}

keel_cloud_err keel_cloud_report(keel_cloud *c, const char *json, uint64_t *mid)
{
    if (!c || !json) {
        return KEEL_CLOUD_ERR_ARG;
    }
    size_t len = strlen(json);
    if (len > KEEL_CLOUD_MAX_MESSAGE) {
        return KEEL_CLOUD_ERR_TOO_BIG;
    }
    cJSON *doc = cJSON_ParseWithLength(json, len);
    bool ok = cJSON_IsObject(doc);
    cJSON_Delete(doc);
    if (!ok) {
        return KEEL_CLOUD_ERR_MALFORMED;
    }
    return queue(c, OUTBOX_REPORTED, NULL, json, len, mid);
}

keel_cloud_err keel_cloud_batch_begin(keel_cloud *c)
{
    return c ? outbox_begin(c->ob) : KEEL_CLOUD_ERR_ARG;
}

keel_cloud_err keel_cloud_batch_commit(keel_cloud *c)
{
    if (!c) {
        return KEEL_CLOUD_ERR_ARG;
    }
    keel_cloud_err e = outbox_commit(c->ob);
    if (e != KEEL_CLOUD_OK) {
        cloud_log(c, "batch not accepted: %s (%s)", keel_cloud_err_name(e), outbox_errmsg(c->ob));
    }
    return e;
}

void keel_cloud_batch_rollback(keel_cloud *c)
{
    if (c) {
        outbox_rollback(c->ob);
    }
}

keel_cloud_err keel_cloud_method_answer(keel_cloud *c, const char *rid, int status,
                                        const char *json)
{
    if (!c || !rid) {
        return KEEL_CLOUD_ERR_ARG;
    }
    if (!json) {
        json = "{}";
    }
    size_t len = strlen(json);
    if (len > KEEL_CLOUD_MAX_MESSAGE) {
        return KEEL_CLOUD_ERR_TOO_BIG;
    }
    char topic[KEEL_CLOUD_MAX_TOPIC];
    keel_cloud_err e =
        keel_cloud_topic_method_response(&c->topics, status, rid, topic, sizeof topic);
    if (e != KEEL_CLOUD_OK) {
        return e;
    }
    if (!c->connected || !c->mosq) {
        return KEEL_CLOUD_ERR_MQTT;
    }
    return mosquitto_publish(c->mosq, NULL, topic, (int)len, json, 0, false) == MOSQ_ERR_SUCCESS
               ? KEEL_CLOUD_OK
               : KEEL_CLOUD_ERR_MQTT;
}

void keel_cloud_get_stats(keel_cloud *c, keel_cloud_stats *st)
{
    c->st.queued = outbox_count(c->ob);
    c->st.queued_bytes = outbox_bytes(c->ob);
    c->st.inflight = (uint64_t)c->n_inflight;
    *st = c->st;
}

/* ---- open and close --------------------------------------------------------------------- */

static const char *own(keel_cloud *c, int slot, const char *s)
{
    if (!s) {
        return NULL;
    }
    c->strings[slot] = strdup(s);
    return c->strings[slot];
}

keel_cloud_err keel_cloud_open(const keel_cloud_config *cfg, const keel_cloud_callbacks *cb,
                               void *user, keel_cloud **out, char *errbuf, size_t errcap)
{
    char dummy[8];
    if (!errbuf || errcap == 0) {
        errbuf = dummy;
        errcap = sizeof dummy;
    }
    errbuf[0] = '\0';
    if (!cfg || !out || !cfg->host || !cfg->device_id || !cfg->outbox_path) {
        snprintf(errbuf, errcap, "cloud: host, device_id and outbox are required");
        return KEEL_CLOUD_ERR_ARG;
    }
    if (!cfg->ca_file) {
        snprintf(errbuf, errcap, "cloud: a CA file is required (TLS is not optional)");
        return KEEL_CLOUD_ERR_TLS;
    }
    if (!cfg->cert_file != !cfg->key_file) {
        snprintf(errbuf, errcap, "cloud: cert and key go together");
        return KEEL_CLOUD_ERR_ARG;
    }
    keel_cloud *c = calloc(1, sizeof *c);
    if (!c) {
        return KEEL_CLOUD_ERR_SPACE;
    }
    c->cfg = *cfg;
    c->cfg.host = own(c, 0, cfg->host);
    c->cfg.device_id = own(c, 1, cfg->device_id);
    c->cfg.prefix = own(c, 2, cfg->prefix);
    c->cfg.ca_file = own(c, 3, cfg->ca_file);
    c->cfg.cert_file = own(c, 4, cfg->cert_file);
    c->cfg.key_file = own(c, 5, cfg->key_file);
    c->cfg.outbox_path = own(c, 6, cfg->outbox_path);
    keel_cloud_config *k = &c->cfg;
    if (!k->port) {
        k->port = 8883;
    }
    if (!k->outbox_max_bytes) {
        k->outbox_max_bytes = 64u << 20;
    }
    if (!k->keepalive_s) {
        k->keepalive_s = 60;
    }
    if (!k->backoff_min_ms) {
        k->backoff_min_ms = 500;
    }
    if (!k->backoff_max_ms) {
        k->backoff_max_ms = 60000;
    }
    if (k->max_inflight <= 0) {
        k->max_inflight = 64;
    }
    if (k->max_inflight > 65535) {
        k->max_inflight = 65535;
    }
    c->backoff = (keel_cloud_backoff){k->backoff_min_ms, k->backoff_max_ms, 0};
    if (cb) {
        c->cb = *cb;
    }
    c->user = user;
    keel_cloud_err e = keel_cloud_topics_init(&c->topics, k->scheme, k->device_id, k->prefix);
    if (e != KEEL_CLOUD_OK) {
        snprintf(errbuf, errcap, "cloud: invalid device id \"%s\" or prefix \"%s\"", k->device_id,
                 k->prefix ? k->prefix : "");
        keel_cloud_close(c);
        return e;
    }
    c->inflight = calloc((size_t)k->max_inflight, sizeof *c->inflight);
    /* Between two flushes at most max_inflight/2 acks wait, plus one window's worth. */
    c->acked = calloc((size_t)k->max_inflight * 2, sizeof *c->acked);
    if (!c->inflight || !c->acked) {
        keel_cloud_close(c);
        return KEEL_CLOUD_ERR_SPACE;
    }
    e = outbox_open(k->outbox_path, k->outbox_max_bytes, &c->ob, errbuf, errcap);
    if (e != KEEL_CLOUD_OK) {
        keel_cloud_close(c);
        return e;
    }
    c->st.last_mid = outbox_last_id(c->ob);
    mosquitto_lib_init(); /* reference counted by libmosquitto */
    /* The app gets its settings at boot, before any network. */
    if (c->cb.on_desired) {
        char *json = NULL;
        int64_t v;
        if (outbox_twin_get(c->ob, &json, &v) == KEEL_CLOUD_OK) {
            c->cb.on_desired(c->user, json, v);
        }
        free(json);
    }
    *out = c;
    return KEEL_CLOUD_OK;
}

void keel_cloud_close(keel_cloud *c)
{
    if (!c) {
        return;
    }
    if (c->mosq) {
        if (c->connected) {
            (void)mosquitto_disconnect(c->mosq);
            (void)mosquitto_loop_write(c->mosq, 1);
        }
        mosquitto_destroy(c->mosq);
    }
    if (c->ob) {
        flush_acks(c);
        outbox_close(c->ob);
        mosquitto_lib_cleanup();
    }
    free(c->inflight);
    free(c->acked);
    for (size_t i = 0; i < sizeof c->strings / sizeof c->strings[0]; i++) {
        free(c->strings[i]);
    }
    free(c);
}

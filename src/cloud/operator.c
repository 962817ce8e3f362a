/* The operator side of the cloud link: what `keel cloud` and tests use to watch devices, set
 * desired properties and call methods on a plain MQTT broker (IoT Hub has its own service
 * API for that; see docs/cloud.md).
 *
 * Round trips are synchronous with a deadline: a publish waits for its PUBACK, a subscribe
 * for its SUBACK, a method call for the answer carrying its request id. Reading the retained
 * desired document uses the broker's ordering as the barrier: after the SUBACK we publish a
 * QoS 1 probe; a retained message the subscription produced is written to us before the
 * probe's PUBACK, so once the PUBACK is in, "no document" really means none.
 */
#include <cjson/cJSON.h>
#include <mosquitto.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "keel/cloud.h"

struct keel_cloud_op {
    keel_cloud_op_config cfg;
    keel_cloud_topics topics; /* device id unused; scheme and prefix */
    struct mosquitto *mosq;
    keel_cloud_op_fn fn;
    void *user;
    bool connected, gone;
    int connack;
    int sub_mid, sub_granted; /* last SUBACK */
    bool sub_done;
    int pub_mid;
    bool pub_done;
    char last_error[160];
    /* A pending method call or desired read. */
    char want_rid[KEEL_CLOUD_MAX_ID];
    char want_desired_topic[KEEL_CLOUD_MAX_TOPIC];
    bool got;
    int got_status;
    char *got_payload;
    size_t got_len;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void keep(keel_cloud_op *op, int status, const void *payload, size_t len)
{
    free(op->got_payload);
    op->got_payload = malloc(len + 1);
    if (op->got_payload) {
        memcpy(op->got_payload, payload, len);
        op->got_payload[len] = '\0';
    }
    op->got_len = len;
    op->got_status = status;
    op->got = true;
}

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    (void)m;
    keel_cloud_op *op = obj;
    op->connack = rc;
    op->connected = rc == 0;
    if (rc) {
        snprintf(op->last_error, sizeof op->last_error, "broker refused the connection: %s",
                 mosquitto_connack_string(rc));
        op->gone = true;
    }
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
    (void)m;
    keel_cloud_op *op = obj;
    op->connected = false;
    op->gone = true;
    if (!op->last_error[0]) {
        snprintf(op->last_error, sizeof op->last_error, "connection lost: %s",
                 mosquitto_strerror(rc));
    }
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted)
{
    (void)m;
    keel_cloud_op *op = obj;
    if (mid != op->sub_mid) {
        return;
    }
    op->sub_granted = 0;
    for (int i = 0; i < n; i++) {
        if (granted[i] > 2) {
            op->sub_granted = granted[i];
        }
    }
    op->sub_done = true;
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
    (void)m;
    keel_cloud_op *op = obj;
    if (mid == op->pub_mid) {
        op->pub_done = true;
    }
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    (void)m;
    keel_cloud_op *op = obj;
    const char *topic = msg->topic ? msg->topic : "";
    size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    const void *payload = msg->payload ? msg->payload : "";
    keel_cloud_msg pm;
    if (keel_cloud_parse_topic(&op->topics, true, topic, strlen(topic), &pm) != KEEL_CLOUD_OK) {
        memset(&pm, 0, sizeof pm);
        pm.version = -1;
    }
    if (op->want_rid[0] && pm.kind == KEEL_CLOUD_MSG_METHOD_RESPONSE &&
        strcmp(pm.rid, op->want_rid) == 0) {
        keep(op, pm.status, payload, len);
    }
    if (op->want_desired_topic[0] && strcmp(topic, op->want_desired_topic) == 0) {
        keep(op, 200, payload, len);
    }
    if (op->fn) {
        op->fn(op->user, &pm, topic, payload, len);
    }
}

static void on_log(struct mosquitto *m, void *obj, int level, const char *str)
{
    (void)m;
    keel_cloud_op *op = obj;
    if (level == MOSQ_LOG_ERR && str) {
        snprintf(op->last_error, sizeof op->last_error, "%s", str);
    }
}

/* One round of I/O, up to timeout_ms. */
static keel_cloud_err io(keel_cloud_op *op, int timeout_ms)
{
    int fd = mosquitto_socket(op->mosq);
    if (fd < 0 || op->gone) {
        return KEEL_CLOUD_ERR_MQTT;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (mosquitto_want_write(op->mosq)) {
        p.events |= POLLOUT;
    }
    int n = poll(&p, 1, timeout_ms);
    int rc = MOSQ_ERR_SUCCESS;
    if (n > 0 && (p.revents & (POLLIN | POLLERR | POLLHUP))) {
        rc = mosquitto_loop_read(op->mosq, 64);
    }
    if (rc == MOSQ_ERR_SUCCESS && mosquitto_socket(op->mosq) >= 0 &&
        mosquitto_want_write(op->mosq)) {
        rc = mosquitto_loop_write(op->mosq, 64);
    }
    if (rc == MOSQ_ERR_SUCCESS && mosquitto_socket(op->mosq) >= 0) {
        rc = mosquitto_loop_misc(op->mosq);
    }
    if (rc != MOSQ_ERR_SUCCESS || op->gone) {
        if (!op->last_error[0]) {
            snprintf(op->last_error, sizeof op->last_error, "%s", mosquitto_strerror(rc));
        }
        op->gone = true;
        return KEEL_CLOUD_ERR_MQTT;
    }
    return KEEL_CLOUD_OK;
}

/* Runs I/O until *flag or the deadline. */
static keel_cloud_err wait_for(keel_cloud_op *op, const bool *flag, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    while (!*flag) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            return KEEL_CLOUD_ERR_MQTT;
        }
        keel_cloud_err e = io(op, left > 100 ? 100 : (int)left);
        if (e != KEEL_CLOUD_OK) {
            return e;
        }
    }
    return KEEL_CLOUD_OK;
}

keel_cloud_err keel_cloud_op_step(keel_cloud_op *op, int timeout_ms)
{
    return op ? io(op, timeout_ms) : KEEL_CLOUD_ERR_ARG;
}

keel_cloud_err keel_cloud_op_open(const keel_cloud_op_config *cfg, keel_cloud_op_fn fn, void *user,
                                  keel_cloud_op **out, char *errbuf, size_t errcap)
{
    char dummy[8];
    if (!errbuf || errcap == 0) {
        errbuf = dummy;
        errcap = sizeof dummy;
    }
    errbuf[0] = '\0';
    if (!cfg || !out || !cfg->host || !cfg->ca_file) {
        snprintf(errbuf, errcap, "operator: host and CA are required");
        return KEEL_CLOUD_ERR_ARG;
    }
    keel_cloud_op *op = calloc(1, sizeof *op);
    if (!op) {
        return KEEL_CLOUD_ERR_SPACE;
    }
    op->cfg = *cfg;
    if (!op->cfg.port) {
        op->cfg.port = 8883;
    }
    if (op->cfg.timeout_ms <= 0) {
        op->cfg.timeout_ms = 10000;
    }
    op->fn = fn;
    op->user = user;
    if (keel_cloud_topics_init(&op->topics, cfg->scheme, "operator", cfg->prefix) !=
        KEEL_CLOUD_OK) {
        snprintf(errbuf, errcap, "operator: invalid prefix \"%s\"", cfg->prefix);
        free(op);
        return KEEL_CLOUD_ERR_ARG;
    }
    mosquitto_lib_init();
    char id[64];
    if (cfg->client_id) {
        snprintf(id, sizeof id, "%s", cfg->client_id);
    } else {
        uint32_t r = 0;
        (void)!getrandom(&r, sizeof r, 0);
        snprintf(id, sizeof id, "keel-op-%08x", r);
    }
    op->mosq = mosquitto_new(id, !cfg->persistent, op);
    if (!op->mosq) {
        keel_cloud_op_close(op);
        return KEEL_CLOUD_ERR_SPACE;
    }
    mosquitto_connect_callback_set(op->mosq, on_connect);
    mosquitto_disconnect_callback_set(op->mosq, on_disconnect);
    mosquitto_subscribe_callback_set(op->mosq, on_subscribe);
    mosquitto_publish_callback_set(op->mosq, on_publish);
    mosquitto_message_callback_set(op->mosq, on_message);
    mosquitto_log_callback_set(op->mosq, on_log);
    (void)mosquitto_int_option(op->mosq, MOSQ_OPT_PROTOCOL_VERSION,
                               cfg->mqtt_version == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
    (void)mosquitto_max_inflight_messages_set(op->mosq, 0);
    int rc = mosquitto_tls_set(op->mosq, cfg->ca_file, NULL, cfg->cert_file, cfg->key_file, NULL);
    if (rc == MOSQ_ERR_SUCCESS) {
        rc = mosquitto_tls_opts_set(op->mosq, 1, "tlsv1.2", NULL);
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        snprintf(errbuf, errcap, "operator: TLS setup failed (ca %s, cert %s): %s", cfg->ca_file,
                 cfg->cert_file ? cfg->cert_file : "-", mosquitto_strerror(rc));
        keel_cloud_op_close(op);
        return KEEL_CLOUD_ERR_TLS;
    }
    rc = mosquitto_connect(op->mosq, cfg->host, op->cfg.port, 30);
    if (rc == MOSQ_ERR_SUCCESS) {
        int64_t deadline = now_ms() + op->cfg.timeout_ms;
        while (!op->connected && !op->gone && now_ms() < deadline) {
            if (io(op, 100) != KEEL_CLOUD_OK) {
                break;
            }
        }
    }
    if (!op->connected) {
        snprintf(errbuf, errcap, "operator: cannot connect to %s:%u: %s", cfg->host, op->cfg.port,
                 op->last_error[0] ? op->last_error
                                   : (rc ? mosquitto_strerror(rc) : "no answer in time"));
        keel_cloud_op_close(op);
        return rc == MOSQ_ERR_TLS || strstr(errbuf, "SSL") || strstr(errbuf, "certificate")
                   ? KEEL_CLOUD_ERR_TLS
                   : KEEL_CLOUD_ERR_MQTT;
    }
    *out = op;
    return KEEL_CLOUD_OK;
}

void keel_cloud_op_close(keel_cloud_op *op)
{
    if (!op) {
        return;
    }
    if (op->mosq) {
        if (op->connected) {
            (void)mosquitto_disconnect(op->mosq);
            (void)mosquitto_loop_write(op->mosq, 1);
        }
        mosquitto_destroy(op->mosq);
    }
    mosquitto_lib_cleanup();
    free(op->got_payload);
    free(op);
}

keel_cloud_err keel_cloud_op_subscribe(keel_cloud_op *op, const char *filter)
{
    if (!op || !filter) {
        return KEEL_CLOUD_ERR_ARG;
    }
    op->sub_done = false;
    if (mosquitto_subscribe(op->mosq, &op->sub_mid, filter, 1) != MOSQ_ERR_SUCCESS) {
        return KEEL_CLOUD_ERR_MQTT;
    }
    keel_cloud_err e = wait_for(op, &op->sub_done, op->cfg.timeout_ms);
    if (e != KEEL_CLOUD_OK) {
        return e;
    }
    return op->sub_granted ? KEEL_CLOUD_ERR_MQTT : KEEL_CLOUD_OK;
}

keel_cloud_err keel_cloud_op_publish(keel_cloud_op *op, const char *topic, const void *payload,
                                     size_t len, int qos, bool retain)
{
    if (!op || !topic || len > INT32_MAX || qos < 0 || qos > 1) {
        return KEEL_CLOUD_ERR_ARG;
    }
    op->pub_done = false;
    if (mosquitto_publish(op->mosq, &op->pub_mid, topic, (int)len, payload, qos, retain) !=
        MOSQ_ERR_SUCCESS) {
        return KEEL_CLOUD_ERR_MQTT;
    }
    if (qos == 0) {
        return io(op, 0);
    }
    return wait_for(op, &op->pub_done, op->cfg.timeout_ms);
}

static keel_cloud_err device_topics(keel_cloud_op *op, const char *device, keel_cloud_topics *t)
{
    if (!device) {
        return KEEL_CLOUD_ERR_ARG;
    }
    return keel_cloud_topics_init(t, op->cfg.scheme, device, op->cfg.prefix);
}

keel_cloud_err keel_cloud_op_watch(keel_cloud_op *op, const char *device, int what)
{
    if (!op || !device || strchr(device, '/') || strchr(device, '#')) {
        return KEEL_CLOUD_ERR_ARG;
    }
    static const struct {
        int bit;
        const char *hub, *plain;
    } filters[] = {
        {KEEL_CLOUD_WATCH_TELEMETRY, "devices/%s/messages/events/#", "%s/%s/messages/events/#"},
        {KEEL_CLOUD_WATCH_REPORTED, NULL, "%s/%s/twin/PATCH/properties/reported/#"},
        {KEEL_CLOUD_WATCH_METHODS, NULL, "%s/%s/methods/res/#"},
        {KEEL_CLOUD_WATCH_DESIRED, NULL, "%s/%s/twin/desired"},
    };
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
        if (!(what & filters[i].bit)) {
            continue;
        }
        char f[KEEL_CLOUD_MAX_TOPIC];
        if (op->cfg.scheme == KEEL_CLOUD_SCHEME_IOTHUB) {
            if (!filters[i].hub) {
                continue;
            }
            snprintf(f, sizeof f, filters[i].hub, device);
        } else {
            snprintf(f, sizeof f, filters[i].plain, op->topics.prefix, device);
        }
        keel_cloud_err e = keel_cloud_op_subscribe(op, f);
        if (e != KEEL_CLOUD_OK) {
            return e;
        }
    }
    return KEEL_CLOUD_OK;
}

keel_cloud_err keel_cloud_op_set_desired(keel_cloud_op *op, const char *device, const char *patch,
                                         int64_t *version)
{
    keel_cloud_topics t;
    if (!op || !patch || op->cfg.scheme != KEEL_CLOUD_SCHEME_PLAIN ||
        device_topics(op, device, &t) != KEEL_CLOUD_OK) {
        return KEEL_CLOUD_ERR_ARG;
    }
    cJSON *p = cJSON_Parse(patch);
    if (!cJSON_IsObject(p)) {
        cJSON_Delete(p);
        return KEEL_CLOUD_ERR_MALFORMED;
    }
    char topic[KEEL_CLOUD_MAX_TOPIC];
    keel_cloud_err e = keel_cloud_topic_desired(&t, 0, topic, sizeof topic);
    if (e != KEEL_CLOUD_OK) {
        cJSON_Delete(p);
        return e;
    }
    /* Read the retained document: subscribe, then a probe as the ordering barrier. */
    snprintf(op->want_desired_topic, sizeof op->want_desired_topic, "%s", topic);
    op->got = false;
    e = keel_cloud_op_subscribe(op, topic);
    if (e == KEEL_CLOUD_OK) {
        char probe[KEEL_CLOUD_MAX_TOPIC];
        snprintf(probe, sizeof probe, "%s/%s/probe", t.prefix, device);
        e = keel_cloud_op_publish(op, probe, "", 0, 1, false);
    }
    op->want_desired_topic[0] = '\0';
    (void)mosquitto_unsubscribe(op->mosq, NULL, topic);
    if (e != KEEL_CLOUD_OK) {
        cJSON_Delete(p);
        return e;
    }
    cJSON *doc = NULL;
    int64_t v = 0;
    if (op->got && op->got_len > 0) {
        const cJSON *d;
        cJSON *root;
        if (keel_cloud_desired_parse(op->got_payload, op->got_len, &root, &d, &v) ==
            KEEL_CLOUD_OK) {
            doc = cJSON_Duplicate(d, true);
            cJSON_Delete(root);
        }
        if (v < 0) {
            v = 0;
        }
    }
    if (!doc) {
        doc = cJSON_CreateObject();
    }
    e = keel_cloud_desired_merge(doc, p);
    cJSON_Delete(p);
    if (e == KEEL_CLOUD_OK) {
        v++;
        cJSON_DeleteItemFromObjectCaseSensitive(doc, "$version");
        cJSON_AddNumberToObject(doc, "$version", (double)v);
        char *text = cJSON_PrintUnformatted(doc);
        e = text ? keel_cloud_op_publish(op, topic, text, strlen(text), 1, true)
                 : KEEL_CLOUD_ERR_SPACE;
        free(text);
    }
    cJSON_Delete(doc);
    if (e == KEEL_CLOUD_OK && version) {
        *version = v;
    }
    return e;
}

keel_cloud_err keel_cloud_op_call(keel_cloud_op *op, const char *device, const char *method,
                                  const char *payload, int timeout_ms, int *status, char *resp,
                                  size_t cap)
{
    keel_cloud_topics t;
    if (!op || !method || device_topics(op, device, &t) != KEEL_CLOUD_OK) {
        return KEEL_CLOUD_ERR_ARG;
    }
    if (!payload) {
        payload = "{}";
    }
    char filter[KEEL_CLOUD_MAX_TOPIC], topic[KEEL_CLOUD_MAX_TOPIC];
    if (op->cfg.scheme == KEEL_CLOUD_SCHEME_PLAIN) {
        snprintf(filter, sizeof filter, "%s/%s/methods/res/#", t.prefix, device);
    } else {
        return KEEL_CLOUD_ERR_ARG; /* IoT Hub: the service API invokes methods */
    }
    uint32_t r = 0;
    (void)!getrandom(&r, sizeof r, 0);
    char rid[32];
    snprintf(rid, sizeof rid, "%08x", r);
    keel_cloud_err e = keel_cloud_topic_method_call(&t, method, rid, topic, sizeof topic);
    if (e != KEEL_CLOUD_OK) {
        return e;
    }
    e = keel_cloud_op_subscribe(op, filter);
    if (e != KEEL_CLOUD_OK) {
        return e;
    }
    snprintf(op->want_rid, sizeof op->want_rid, "%s", rid);
    op->got = false;
    e = keel_cloud_op_publish(op, topic, payload, strlen(payload), 1, false);
    if (e == KEEL_CLOUD_OK) {
        e = wait_for(op, &op->got, timeout_ms > 0 ? timeout_ms : op->cfg.timeout_ms);
    }
    op->want_rid[0] = '\0';
    if (e != KEEL_CLOUD_OK) {
        return e;
    }
    if (status) {
        *status = op->got_status;
    }
    if (resp && cap) {
        snprintf(resp, cap, "%s", op->got_payload ? op->got_payload : "");
    }
    return KEEL_CLOUD_OK;
}

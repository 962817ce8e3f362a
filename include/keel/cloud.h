/* The cloud link: telemetry, device-twin properties and direct methods over MQTT with TLS.
 *
 * Two layers, one header:
 * - The protocol core (keel_cloud_topic_*, keel_cloud_parse_topic, keel_cloud_desired_*,
 *   keel_cloud_pnp_ack, keel_cloud_backoff_*) does no I/O: it formats topics into caller
 *   buffers and parses what the broker sends, for the Azure IoT Hub scheme and for a plain
 *   MQTT scheme under a configurable prefix. It is fuzzed and unit-tested alone.
 * - The link (keel_cloud_open ... keel_cloud_close) owns one MQTT session (libmosquitto, TLS
 *   with X.509 client certificates, clean session false, jittered exponential backoff), a
 *   durable SQLite outbox and the cached desired properties. It runs on the caller's thread:
 *   the caller polls keel_cloud_fd() and calls keel_cloud_step(), so it fits an event loop.
 *
 * Delivery contract: keel_cloud_send_telemetry() and keel_cloud_report() return OK only once
 * the message is durable on disk (SQLite WAL, synchronous=FULL). A message is deleted only
 * after the broker's PUBACK. Each carries a message id (`$.mid`, the outbox row id, never
 * reused), strictly increasing per device, so a receiver drops QoS 1 redeliveries by id.
 * See docs/cloud.md.
 */
#ifndef KEEL_CLOUD_H
#define KEEL_CLOUD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/status.h"

struct cJSON;

typedef enum keel_cloud_err {
    KEEL_CLOUD_OK = 0,
    KEEL_CLOUD_ERR_ARG,       /* a bad argument or configuration value */
    KEEL_CLOUD_ERR_SPACE,     /* the caller's buffer is too small */
    KEEL_CLOUD_ERR_TOO_BIG,   /* a message over the scheme's cap (256 KiB) */
    KEEL_CLOUD_ERR_MALFORMED, /* a topic or payload from the broker that does not parse */
    KEEL_CLOUD_ERR_STALE,     /* a desired-properties version older than the cached one */
    KEEL_CLOUD_ERR_FULL,      /* the outbox is at its byte limit and nothing may be evicted */
    KEEL_CLOUD_ERR_DISK_FULL, /* the file system holding the outbox is full */
    KEEL_CLOUD_ERR_DB,        /* SQLite failed otherwise (corrupt, locked, i/o) */
    KEEL_CLOUD_ERR_TLS,       /* TLS setup failed: CA, certificate or key unusable */
    KEEL_CLOUD_ERR_MQTT,      /* the MQTT client library refused an operation */
    KEEL_CLOUD_ERR_NOT_FOUND, /* nothing cached yet */
    KEEL_CLOUD_ERR_COUNT
} keel_cloud_err;

const char *keel_cloud_err_name(keel_cloud_err e);
/* Maps onto keel_status where modules meet. */
keel_status keel_cloud_err_status(keel_cloud_err e);

/* ---- protocol core (no I/O) ------------------------------------------------------------ */

typedef enum keel_cloud_scheme {
    /* devices/{id}/messages/events/, $iothub/twin/..., $iothub/methods/... */
    KEEL_CLOUD_SCHEME_IOTHUB = 0,
    /* {prefix}/{id}/messages/events/, {prefix}/{id}/twin/..., {prefix}/{id}/methods/... */
    KEEL_CLOUD_SCHEME_PLAIN,
} keel_cloud_scheme;

#define KEEL_CLOUD_MAX_ID 128                 /* device id, method name, prefix: bytes incl. NUL */
#define KEEL_CLOUD_MAX_TOPIC 512              /* every topic the core builds fits this */
#define KEEL_CLOUD_MAX_MESSAGE (256u * 1024u) /* IoT Hub's cap; applied to both schemes */
#define KEEL_CLOUD_IOTHUB_API "2021-04-12"

typedef struct keel_cloud_topics {
    keel_cloud_scheme scheme;
    char device_id[KEEL_CLOUD_MAX_ID];
    char prefix[KEEL_CLOUD_MAX_ID]; /* plain scheme only, e.g. "keel" */
} keel_cloud_topics;

/* Checks and copies: a device id of [A-Za-z0-9-._:] (IoT Hub's set, no MQTT wildcards or
 * '/'), and for the plain scheme a prefix without wildcards, leading or trailing '/'. */
KEEL_NODISCARD keel_cloud_err keel_cloud_topics_init(keel_cloud_topics *t, keel_cloud_scheme s,
                                                     const char *device_id, const char *prefix);

/* Each builder writes a NUL-terminated topic into buf[cap] and returns SPACE if it does not
 * fit (buf is then an empty string). */
/* Telemetry with message id `mid` and optional extra properties `props`, an already
 * URL-encoded "k=v&k2=v2" bag (NULL or "" for none). */
KEEL_NODISCARD keel_cloud_err keel_cloud_topic_telemetry(const keel_cloud_topics *t, uint64_t mid,
                                                         const char *props, char *buf, size_t cap);
/* Twin GET (IoT Hub) with request id `rid`. */
KEEL_NODISCARD keel_cloud_err keel_cloud_topic_twin_get(const keel_cloud_topics *t, uint64_t rid,
                                                        char *buf, size_t cap);
/* Reported-properties PATCH with request id `rid`. */
KEEL_NODISCARD keel_cloud_err keel_cloud_topic_reported(const keel_cloud_topics *t, uint64_t rid,
                                                        char *buf, size_t cap);
/* A method's response: HTTP-like status and the request id exactly as it came. */
KEEL_NODISCARD keel_cloud_err keel_cloud_topic_method_response(const keel_cloud_topics *t,
                                                               int status, const char *rid,
                                                               char *buf, size_t cap);
/* The desired-properties topic the operator side publishes to: in the plain scheme the full
 * desired document, retained; in the IoT Hub scheme the service sends patches itself, so this
 * returns the desired PATCH topic with `version` (used by test doubles of the hub). */
KEEL_NODISCARD keel_cloud_err keel_cloud_topic_desired(const keel_cloud_topics *t, int64_t version,
                                                       char *buf, size_t cap);
/* A method call as the operator side sends it. */
KEEL_NODISCARD keel_cloud_err keel_cloud_topic_method_call(const keel_cloud_topics *t,
                                                           const char *name, const char *rid,
                                                           char *buf, size_t cap);
/* The i-th subscription filter a device needs (i from 0); returns ARG past the last. */
KEEL_NODISCARD keel_cloud_err keel_cloud_topic_subscription(const keel_cloud_topics *t, int i,
                                                            char *buf, size_t cap);
/* IoT Hub's MQTT user name "{hub}/{id}/?api-version=..."; plain scheme: the device id. */
KEEL_NODISCARD keel_cloud_err keel_cloud_username(const keel_cloud_topics *t, const char *hub_host,
                                                  char *buf, size_t cap);

typedef enum keel_cloud_msg_kind {
    KEEL_CLOUD_MSG_TWIN_RESPONSE = 1, /* answer to GET or reported PATCH: status, rid, version */
    KEEL_CLOUD_MSG_DESIRED,           /* desired patch (IoT Hub) or full document (plain) */
    KEEL_CLOUD_MSG_METHOD,            /* a method call: name, rid */
    KEEL_CLOUD_MSG_TELEMETRY,         /* a device's telemetry (operator side): device, mid */
    KEEL_CLOUD_MSG_REPORTED,          /* a device's reported patch (operator side) */
    KEEL_CLOUD_MSG_METHOD_RESPONSE,   /* a device's method answer (operator side): status, rid */
} keel_cloud_msg_kind;

/* What a topic says. Strings are copies (bounded), so the topic may go away. */
typedef struct keel_cloud_msg {
    keel_cloud_msg_kind kind;
    int status;                     /* TWIN_RESPONSE, METHOD_RESPONSE; else 0 */
    int64_t version;                /* from $version, -1 when absent */
    uint64_t mid;                   /* TELEMETRY: $.mid, 0 when absent */
    char rid[KEEL_CLOUD_MAX_ID];    /* request id, "" when absent */
    char name[KEEL_CLOUD_MAX_ID];   /* METHOD: method name */
    char device[KEEL_CLOUD_MAX_ID]; /* operator-side kinds: which device */
} keel_cloud_msg;

/* Parses a topic (len bytes, need not be NUL-terminated). Device-side topics are checked
 * against t's device id and prefix; with `operator_side` true the device is taken from the
 * topic (t->device_id ignored) and device-published kinds are recognised too. */
KEEL_NODISCARD keel_cloud_err keel_cloud_parse_topic(const keel_cloud_topics *t, bool operator_side,
                                                     const char *topic, size_t len,
                                                     keel_cloud_msg *out);

/* Parses a desired-properties payload (JSON object; len bytes) and returns its "$version"
 * (-1 if absent). A twin GET response {"desired":{...},"reported":{...}} is accepted too:
 * *desired then points into the "desired" member. On OK *doc is a tree to cJSON_Delete. */
KEEL_NODISCARD keel_cloud_err keel_cloud_desired_parse(const char *json, size_t len,
                                                       struct cJSON **doc,
                                                       const struct cJSON **desired,
                                                       int64_t *version);
/* Applies `patch` (a desired patch object) onto `base` (modified): members set, null removes,
 * nested objects merged (JSON merge patch, as the twin service does). */
KEEL_NODISCARD keel_cloud_err keel_cloud_desired_merge(struct cJSON *base,
                                                       const struct cJSON *patch);

/* IoT Plug and Play writable-property acknowledgement:
 *   {"<name>":{"value":<value_json>,"ac":<ac>,"av":<av>,"ad":"<ad>"}}
 * value_json is JSON text (checked). Writes into buf[cap]. */
KEEL_NODISCARD keel_cloud_err keel_cloud_pnp_ack(const char *name, const char *value_json, int ac,
                                                 int64_t av, const char *ad, char *buf, size_t cap);

/* Reconnect backoff: exponential from min_ms, capped at max_ms, with "full jitter" in
 * [delay/2, delay] so a fleet that lost its broker together does not return together.
 * `rnd` is a random 32-bit value the caller supplies (the core has no entropy source). */
typedef struct keel_cloud_backoff {
    uint32_t min_ms, max_ms;
    uint32_t attempt;
} keel_cloud_backoff;
uint32_t keel_cloud_backoff_next(keel_cloud_backoff *b, uint32_t rnd);
void keel_cloud_backoff_reset(keel_cloud_backoff *b);

/* ---- the link (libmosquitto, TLS, SQLite) ---------------------------------------------- */

typedef struct keel_cloud_config {
    keel_cloud_scheme scheme;
    const char *host; /* broker or IoT Hub host name */
    uint16_t port;    /* default 8883 */
    const char *device_id;
    const char *prefix;        /* plain scheme topic prefix, default "keel" */
    const char *ca_file;       /* CA bundle that verifies the broker (required: no plaintext) */
    const char *cert_file;     /* device certificate (PEM) */
    const char *key_file;      /* its private key (PEM) */
    const char *outbox_path;   /* SQLite file: outbox and the twin cache */
    uint64_t outbox_max_bytes; /* bound on queued payload+topic bytes, default 64 MiB */
    int mqtt_version;          /* 4 (3.1.1, default) or 5 */
    int keepalive_s;           /* default 60 */
    uint32_t backoff_min_ms;   /* default 500 */
    uint32_t backoff_max_ms;   /* default 60000 */
    int max_inflight;          /* QoS 1 messages awaiting PUBACK, default 64 */
} keel_cloud_config;

/* Fills a config from a JSON object (the "cloud" section of the device config, see
 * docs/config.md). Strings point into `obj`, which must outlive the config. Messages name
 * the key that is wrong. */
KEEL_NODISCARD keel_cloud_err keel_cloud_config_from_json(const struct cJSON *obj,
                                                          keel_cloud_config *cfg, char *errbuf,
                                                          size_t errcap);

typedef struct keel_cloud keel_cloud;

typedef struct keel_cloud_callbacks {
    /* Connection came up or went down; `why` is a human-readable reason. */
    void (*on_state)(void *user, bool connected, const char *why);
    /* New desired properties (full document after merging, with its version), already cached
     * on disk. Also called once at open with the cached document if there is one. */
    void (*on_desired)(void *user, const char *json, int64_t version);
    /* A method call; answer with keel_cloud_method_answer(rid, ...), now or later. */
    void (*on_method)(void *user, const char *name, const char *rid, const char *payload,
                      size_t len);
    /* A message was acknowledged by the broker (PUBACK) and deleted from the outbox. */
    void (*on_acked)(void *user, uint64_t mid);
    /* A line for the log (rejected input, reconnects); NULL: stderr. */
    void (*on_log)(void *user, const char *line);
} keel_cloud_callbacks;

/* Opens the outbox and the twin cache (creating them), sets up TLS and starts connecting.
 * Nothing blocks on the network. errbuf gets a message for people on failure. */
KEEL_NODISCARD keel_cloud_err keel_cloud_open(const keel_cloud_config *cfg,
                                              const keel_cloud_callbacks *cb, void *user,
                                              keel_cloud **out, char *errbuf, size_t errcap);
void keel_cloud_close(keel_cloud *c);

/* Queues telemetry durably; OK means "accepted": it is on disk and will be sent. `props` is
 * an optional URL-encoded property bag. *mid (may be NULL) gets its message id. */
KEEL_NODISCARD keel_cloud_err keel_cloud_send_telemetry(keel_cloud *c, const void *payload,
                                                        size_t len, const char *props,
                                                        uint64_t *mid);
/* Queues a reported-properties patch (JSON object). Properties are never evicted. */
KEEL_NODISCARD keel_cloud_err keel_cloud_report(keel_cloud *c, const char *json, uint64_t *mid);
/* Group commit: sends between begin and commit share one transaction, so one fsync makes
 * them all durable; none is "accepted" until commit returns OK. rollback forgets them. */
KEEL_NODISCARD keel_cloud_err keel_cloud_batch_begin(keel_cloud *c);
KEEL_NODISCARD keel_cloud_err keel_cloud_batch_commit(keel_cloud *c);
void keel_cloud_batch_rollback(keel_cloud *c);

/* Answers a method call (QoS 0, as IoT Hub expects; the caller times out otherwise). */
KEEL_NODISCARD keel_cloud_err keel_cloud_method_answer(keel_cloud *c, const char *rid, int status,
                                                       const char *json);
/* The cached desired properties (works offline, from disk). json gets a NUL-terminated copy. */
KEEL_NODISCARD keel_cloud_err keel_cloud_desired(keel_cloud *c, char *json, size_t cap,
                                                 int64_t *version);

/* Event-loop integration: poll keel_cloud_fd() (may change after a reconnect; -1 while not
 * connected) for POLLIN, and for POLLOUT when keel_cloud_want_write(); then call
 * keel_cloud_step(c, 0). Or call keel_cloud_step(c, timeout_ms) to let it wait. Returns the
 * milliseconds until it next needs a step (a reconnect attempt, a keepalive). */
int keel_cloud_fd(keel_cloud *c);
bool keel_cloud_want_write(keel_cloud *c);
int keel_cloud_step(keel_cloud *c, int timeout_ms);

typedef struct keel_cloud_stats {
    bool connected;
    uint64_t queued;       /* messages in the outbox */
    uint64_t queued_bytes; /* their payload+topic bytes */
    uint64_t inflight;     /* sent, awaiting PUBACK */
    uint64_t acked;        /* since open */
    uint64_t evicted;      /* telemetry dropped by the byte limit, since open */
    uint64_t last_mid;     /* highest message id ever assigned */
    uint32_t reconnects;
    char last_error[320]; /* the last connection error, for people */
} keel_cloud_stats;
void keel_cloud_get_stats(keel_cloud *c, keel_cloud_stats *st);

/* ---- the operator side (keel cloud, tests): one MQTT client over TLS -------------------- */

typedef struct keel_cloud_op keel_cloud_op;

typedef struct keel_cloud_op_config {
    keel_cloud_scheme scheme;
    const char *host;
    uint16_t port;      /* default 8883 */
    const char *prefix; /* plain scheme, default "keel" */
    const char *ca_file, *cert_file, *key_file;
    const char *client_id; /* NULL: a random one */
    bool persistent;       /* clean session false: the broker queues for us while away */
    int mqtt_version;      /* 4 or 5 */
    int timeout_ms;        /* for connect and each round trip; default 10000 */
} keel_cloud_op_config;

/* Every message the operator receives, parsed (kind 0 if the topic is not one of ours). */
typedef void (*keel_cloud_op_fn)(void *user, const keel_cloud_msg *m, const char *topic,
                                 const void *payload, size_t len);

/* Connects and waits for the CONNACK; errbuf says why not (TLS, refused, timeout). */
KEEL_NODISCARD keel_cloud_err keel_cloud_op_open(const keel_cloud_op_config *cfg,
                                                 keel_cloud_op_fn fn, void *user,
                                                 keel_cloud_op **out, char *errbuf, size_t errcap);
void keel_cloud_op_close(keel_cloud_op *op);

enum {
    KEEL_CLOUD_WATCH_TELEMETRY = 1,
    KEEL_CLOUD_WATCH_REPORTED = 2,
    KEEL_CLOUD_WATCH_METHODS = 4, /* method responses */
    KEEL_CLOUD_WATCH_DESIRED = 8,
};
/* Subscribes (QoS 1) to a device's topics ("+" for every device), waits for the SUBACK;
 * ERR_MQTT if the broker refused any filter (its ACL). */
KEEL_NODISCARD keel_cloud_err keel_cloud_op_watch(keel_cloud_op *op, const char *device, int what);
/* Subscribes to one raw filter; ERR_MQTT if refused. */
KEEL_NODISCARD keel_cloud_err keel_cloud_op_subscribe(keel_cloud_op *op, const char *filter);
/* Publishes and, for QoS 1, waits for the PUBACK. No size cap of its own (the broker has
 * one); tests use it to send devices oversized input. */
KEEL_NODISCARD keel_cloud_err keel_cloud_op_publish(keel_cloud_op *op, const char *topic,
                                                    const void *payload, size_t len, int qos,
                                                    bool retain);
/* Plain scheme: merges `patch` into the device's retained desired document, bumps $version
 * and publishes it retained. *version gets the new version. */
KEEL_NODISCARD keel_cloud_err keel_cloud_op_set_desired(keel_cloud_op *op, const char *device,
                                                        const char *patch, int64_t *version);
/* Calls a method and waits for the answer (status, JSON into resp). ERR_MQTT on timeout. */
KEEL_NODISCARD keel_cloud_err keel_cloud_op_call(keel_cloud_op *op, const char *device,
                                                 const char *method, const char *payload,
                                                 int timeout_ms, int *status, char *resp,
                                                 size_t cap);
/* Runs the client for up to timeout_ms (delivering messages to fn). ERR_MQTT if the
 * connection is gone. */
KEEL_NODISCARD keel_cloud_err keel_cloud_op_step(keel_cloud_op *op, int timeout_ms);

#endif

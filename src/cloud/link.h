/* The link's private state, shared by link.c (session, outbox pump) and twin.c (desired
 * properties). Not a public header. */
#ifndef KEEL_CLOUD_LINK_H
#define KEEL_CLOUD_LINK_H

#include <stdbool.h>
#include <stdint.h>

#include "keel/cloud.h"
#include "outbox.h"

struct mosquitto;

typedef struct inflight {
    int mid;     /* libmosquitto's packet id */
    uint64_t id; /* outbox row */
} inflight;

struct keel_cloud {
    keel_cloud_config cfg;
    char *strings[8]; /* owned copies of cfg's strings */
    keel_cloud_topics topics;
    keel_cloud_callbacks cb;
    void *user;
    outbox *ob;

    struct mosquitto *mosq;
    bool connected;
    bool dropped; /* set by callbacks; the step tears the session down */
    int64_t next_attempt;
    int64_t attempt_started;
    keel_cloud_backoff backoff;

    uint64_t sent_upto; /* highest row id published in this session */
    inflight *inflight;
    int n_inflight;
    uint64_t *acked; /* rows PUBACKed this step, to delete */
    int n_acked;

    uint64_t twin_rid; /* pending twin GET (IoT Hub) */
    uint64_t next_rid;
    keel_cloud_stats st;
};

/* A line for the log (the on_log callback, else stderr). */
void cloud_log(keel_cloud *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sets stats.last_error, the message people see for a connection problem. */
void cloud_set_err(keel_cloud *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A desired document (full: plain scheme or twin GET answer) or patch (IoT Hub) arrived. */
void cloud_twin_message(keel_cloud *c, const keel_cloud_msg *m, const char *payload, size_t len,
                        bool full);
/* Sends an IoT Hub twin GET; its answer is matched by c->twin_rid. */
void cloud_twin_request(keel_cloud *c);

#endif

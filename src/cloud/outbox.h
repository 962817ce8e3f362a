/* The durable outbox and the twin cache, one SQLite file (private to src/cloud).
 *
 * Rows are (id, kind, props, payload). The id is the message id a receiver dedupes by: it is
 * AUTOINCREMENT, so SQLite never reuses one, even after the newest rows are deleted and the
 * process restarts. Topics are built when a row is sent, not stored, so they follow the
 * configuration the link runs with.
 */
#ifndef KEEL_CLOUD_OUTBOX_H
#define KEEL_CLOUD_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "keel/cloud.h"

typedef struct outbox outbox;

enum outbox_kind { OUTBOX_TELEMETRY = 0, OUTBOX_REPORTED = 1 };

typedef struct outbox_row {
    uint64_t id;
    int kind;
    char props[KEEL_CLOUD_MAX_TOPIC / 2];
    unsigned char *payload; /* malloc'd; outbox_row_free */
    size_t len;
} outbox_row;

KEEL_NODISCARD keel_cloud_err outbox_open(const char *path, uint64_t max_bytes, outbox **out,
                                          char *errbuf, size_t errcap);
void outbox_close(outbox *ob);

/* Explicit transactions group many puts (and deletes) under one fsync. Without one, each put
 * commits by itself. */
KEEL_NODISCARD keel_cloud_err outbox_begin(outbox *ob);
KEEL_NODISCARD keel_cloud_err outbox_commit(outbox *ob);
void outbox_rollback(outbox *ob);
bool outbox_in_tx(const outbox *ob);

/* Appends a row; evicts the oldest telemetry while the byte limit would be exceeded, never a
 * reported-properties row (FULL if only those are left). *evicted counts the rows dropped. */
KEEL_NODISCARD keel_cloud_err outbox_put(outbox *ob, int kind, const char *props,
                                         const void *payload, size_t len, uint64_t *id,
                                         uint64_t *evicted);
/* The oldest row with id > after. NOT_FOUND when there is none. */
KEEL_NODISCARD keel_cloud_err outbox_next(outbox *ob, uint64_t after, outbox_row *row);
/* Up to max rows with id > after, in id order, in one query; *n of them (NOT_FOUND if 0). */
KEEL_NODISCARD keel_cloud_err outbox_next_batch(outbox *ob, uint64_t after, outbox_row *rows,
                                                size_t max, size_t *n);
void outbox_row_free(outbox_row *row);
/* Deletes rows by id (already-gone ids are fine), in one transaction unless one is open.
 * Sorts ids in place (runs of consecutive ids become one range delete). */
KEEL_NODISCARD keel_cloud_err outbox_delete(outbox *ob, uint64_t *ids, size_t n);

uint64_t outbox_count(outbox *ob);
uint64_t outbox_bytes(const outbox *ob);
uint64_t outbox_last_id(outbox *ob);

/* The twin cache: the last desired document and its version. */
KEEL_NODISCARD keel_cloud_err outbox_twin_get(outbox *ob, char **json, int64_t *version);
KEEL_NODISCARD keel_cloud_err outbox_twin_put(outbox *ob, const char *json, int64_t version);

/* The last SQLite message, for people. */
const char *outbox_errmsg(const outbox *ob);

#endif

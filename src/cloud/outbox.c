/* The durable outbox and twin cache on SQLite.
 *
 * Durability: WAL with synchronous=FULL, so COMMIT returns only after the WAL is fsynced; a
 * message is "accepted" only when its commit returned. Callers batch puts in one transaction
 * (outbox_begin/commit) to pay one fsync for many messages.
 *
 * The byte limit counts payload + property bytes of queued rows, kept in memory (summed once
 * at open) and restored on rollback. When a put would exceed it, the oldest telemetry goes
 * first; reported properties are never evicted, and a put that still does not fit is FULL.
 *
 * Disk full: SQLite reports SQLITE_FULL (or an i/o error with errno ENOSPC); the transaction
 * rolls back, so what was queued before, and the cached twin, are intact.
 */
#include "outbox.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ST_PUT, ST_NEXT, ST_DEL, ST_OLDEST, ST_TWIN_GET, ST_TWIN_PUT, ST_DEL_RANGE, ST_COUNT };

static const char *const stmt_sql[ST_COUNT] = {
    [ST_PUT] = "INSERT INTO outbox(kind, props, payload, bytes) VALUES(?1, ?2, ?3, ?4)",
    [ST_NEXT] = "SELECT id, kind, props, payload FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2",
    [ST_DEL_RANGE] = "DELETE FROM outbox WHERE id BETWEEN ?1 AND ?2 RETURNING bytes",
    [ST_DEL] = "DELETE FROM outbox WHERE id = ?1 RETURNING bytes",
    [ST_OLDEST] = "SELECT id, bytes FROM outbox WHERE kind = 0 ORDER BY id LIMIT 1",
    [ST_TWIN_GET] = "SELECT json, version FROM twin WHERE name = 'desired'",
    [ST_TWIN_PUT] = "INSERT OR REPLACE INTO twin(name, version, json) VALUES('desired', ?1, ?2)",
};

struct outbox {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    uint64_t max_bytes;
    uint64_t bytes, rows;       /* kept in memory: COUNT(*) is a scan */
    uint64_t tx_bytes, tx_rows; /* at BEGIN, restored by rollback */
    bool in_tx;
};

static keel_cloud_err map_rc(const outbox *ob, int rc)
{
    int base = rc & 0xff;
    if (base == SQLITE_FULL || (base == SQLITE_IOERR && sqlite3_system_errno(ob->db) == ENOSPC)) {
        return KEEL_CLOUD_ERR_DISK_FULL;
    }
    return KEEL_CLOUD_ERR_DB;
}

const char *outbox_errmsg(const outbox *ob)
{
    return ob && ob->db ? sqlite3_errmsg(ob->db) : "no database";
}

static keel_cloud_err exec(outbox *ob, const char *sql)
{
    int rc = sqlite3_exec(ob->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? KEEL_CLOUD_OK : map_rc(ob, rc);
}

keel_cloud_err outbox_open(const char *path, uint64_t max_bytes, outbox **out, char *errbuf,
                           size_t errcap)
{
    outbox *ob = calloc(1, sizeof *ob);
    if (!ob) {
        return KEEL_CLOUD_ERR_SPACE;
    }
    ob->max_bytes = max_bytes;
    keel_cloud_err e = KEEL_CLOUD_ERR_DB;
    int rc = sqlite3_open_v2(path, &ob->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        snprintf(errbuf, errcap, "outbox %s: %s", path, ob->db ? sqlite3_errmsg(ob->db) : "open");
        goto fail;
    }
    sqlite3_busy_timeout(ob->db, 2000);
    /* journal_mode returns a row; sqlite3_exec discards it. A database on a file system
     * without shared memory falls back to another mode: durability still holds (FULL). */
    static const char schema[] =
        "PRAGMA journal_mode=WAL;"
        "PRAGMA synchronous=FULL;"
        "CREATE TABLE IF NOT EXISTS outbox(id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " kind INTEGER NOT NULL, props TEXT NOT NULL, payload BLOB NOT NULL,"
        " bytes INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS twin(name TEXT PRIMARY KEY, version INTEGER NOT NULL,"
        " json TEXT NOT NULL);";
    e = exec(ob, schema);
    if (e != KEEL_CLOUD_OK) {
        snprintf(errbuf, errcap, "outbox %s: %s", path, sqlite3_errmsg(ob->db));
        goto fail;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(ob->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &ob->st[i],
                               NULL) != SQLITE_OK) {
            snprintf(errbuf, errcap, "outbox %s: %s", path, sqlite3_errmsg(ob->db));
            e = KEEL_CLOUD_ERR_DB;
            goto fail;
        }
    }
    sqlite3_stmt *sum;
    if (sqlite3_prepare_v2(ob->db, "SELECT COALESCE(SUM(bytes), 0), COUNT(*) FROM outbox", -1, &sum,
                           NULL) != SQLITE_OK) {
        snprintf(errbuf, errcap, "outbox %s: %s", path, sqlite3_errmsg(ob->db));
        e = KEEL_CLOUD_ERR_DB;
        goto fail;
    }
    if (sqlite3_step(sum) == SQLITE_ROW) {
        ob->bytes = (uint64_t)sqlite3_column_int64(sum, 0);
        ob->rows = (uint64_t)sqlite3_column_int64(sum, 1);
    }
    sqlite3_finalize(sum);
    *out = ob;
    return KEEL_CLOUD_OK;
fail:
    outbox_close(ob);
    return e;
}

void outbox_close(outbox *ob)
{
    if (!ob) {
        return;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(ob->st[i]);
    }
    sqlite3_close(ob->db);
    free(ob);
}

keel_cloud_err outbox_begin(outbox *ob)
{
    if (ob->in_tx) {
        return KEEL_CLOUD_ERR_ARG;
    }
    keel_cloud_err e = exec(ob, "BEGIN IMMEDIATE");
    if (e == KEEL_CLOUD_OK) {
        ob->in_tx = true;
        ob->tx_bytes = ob->bytes;
        ob->tx_rows = ob->rows;
    }
    return e;
}

keel_cloud_err outbox_commit(outbox *ob)
{
    if (!ob->in_tx) {
        return KEEL_CLOUD_ERR_ARG;
    }
    keel_cloud_err e = exec(ob, "COMMIT");
    if (e != KEEL_CLOUD_OK) {
        outbox_rollback(ob); /* a failed COMMIT may leave the transaction open */
        return e;
    }
    ob->in_tx = false;
    return KEEL_CLOUD_OK;
}

void outbox_rollback(outbox *ob)
{
    if (!ob->in_tx) {
        return;
    }
    if (!sqlite3_get_autocommit(ob->db)) {
        (void)sqlite3_exec(ob->db, "ROLLBACK", NULL, NULL, NULL);
    }
    ob->in_tx = false;
    ob->bytes = ob->tx_bytes;
    ob->rows = ob->tx_rows;
}

bool outbox_in_tx(const outbox *ob)
{
    return ob->in_tx;
}

/* Runs fn inside the caller's transaction, or inside one of its own. */
static keel_cloud_err in_tx(outbox *ob, keel_cloud_err (*fn)(outbox *, void *), void *arg)
{
    if (ob->in_tx) {
        return fn(ob, arg);
    }
    keel_cloud_err e = outbox_begin(ob);
    if (e != KEEL_CLOUD_OK) {
        return e;
    }
    e = fn(ob, arg);
    if (e != KEEL_CLOUD_OK) {
        outbox_rollback(ob);
        return e;
    }
    return outbox_commit(ob);
}

static keel_cloud_err step_done(outbox *ob, sqlite3_stmt *st, int want)
{
    int rc = sqlite3_step(st);
    keel_cloud_err e = rc == want ? KEEL_CLOUD_OK : map_rc(ob, rc);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return e;
}

static keel_cloud_err delete_one(outbox *ob, uint64_t id)
{
    sqlite3_stmt *st = ob->st[ST_DEL];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        uint64_t b = (uint64_t)sqlite3_column_int64(st, 0);
        ob->bytes = ob->bytes >= b ? ob->bytes - b : 0;
        ob->rows = ob->rows ? ob->rows - 1 : 0;
        rc = sqlite3_step(st);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? KEEL_CLOUD_OK : map_rc(ob, rc);
}

struct put_args {
    int kind;
    const char *props;
    const void *payload;
    size_t len;
    uint64_t *id;
    uint64_t *evicted;
};

static keel_cloud_err put_fn(outbox *ob, void *arg)
{
    struct put_args *a = arg;
    uint64_t need = a->len + strlen(a->props);
    while (ob->bytes + need > ob->max_bytes) {
        sqlite3_stmt *st = ob->st[ST_OLDEST];
        int rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            sqlite3_reset(st);
            return rc == SQLITE_DONE ? KEEL_CLOUD_ERR_FULL : map_rc(ob, rc);
        }
        uint64_t victim = (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        keel_cloud_err e = delete_one(ob, victim);
        if (e != KEEL_CLOUD_OK) {
            return e;
        }
        (*a->evicted)++;
    }
    sqlite3_stmt *st = ob->st[ST_PUT];
    sqlite3_bind_int(st, 1, a->kind);
    sqlite3_bind_text(st, 2, a->props, -1, SQLITE_STATIC);
    sqlite3_bind_blob64(st, 3, a->len ? a->payload : "", a->len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)need);
    keel_cloud_err e = step_done(ob, st, SQLITE_DONE);
    if (e != KEEL_CLOUD_OK) {
        return e;
    }
    *a->id = (uint64_t)sqlite3_last_insert_rowid(ob->db);
    ob->bytes += need;
    ob->rows++;
    return KEEL_CLOUD_OK;
}

keel_cloud_err outbox_put(outbox *ob, int kind, const char *props, const void *payload, size_t len,
                          uint64_t *id, uint64_t *evicted)
{
    uint64_t dummy_id, dummy_ev = 0;
    struct put_args a = {kind, props ? props : "",  payload,
                         len,  id ? id : &dummy_id, evicted ? evicted : &dummy_ev};
    if (len + strlen(a.props) > ob->max_bytes) {
        return KEEL_CLOUD_ERR_FULL;
    }
    return in_tx(ob, put_fn, &a);
}

static keel_cloud_err read_row(sqlite3_stmt *st, outbox_row *row)
{
    memset(row, 0, sizeof *row);
    row->id = (uint64_t)sqlite3_column_int64(st, 0);
    row->kind = sqlite3_column_int(st, 1);
    const unsigned char *props = sqlite3_column_text(st, 2);
    snprintf(row->props, sizeof row->props, "%s", props ? (const char *)props : "");
    const void *p = sqlite3_column_blob(st, 3);
    row->len = (size_t)sqlite3_column_bytes(st, 3);
    row->payload = malloc(row->len + 1);
    if (!row->payload) {
        return KEEL_CLOUD_ERR_SPACE;
    }
    if (row->len) {
        memcpy(row->payload, p, row->len);
    }
    row->payload[row->len] = '\0';
    return KEEL_CLOUD_OK;
}

keel_cloud_err outbox_next_batch(outbox *ob, uint64_t after, outbox_row *rows, size_t max,
                                 size_t *n)
{
    *n = 0;
    sqlite3_stmt *st = ob->st[ST_NEXT];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)after);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    int rc;
    keel_cloud_err e = KEEL_CLOUD_OK;
    while (*n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        e = read_row(st, &rows[*n]);
        if (e != KEEL_CLOUD_OK) {
            break;
        }
        (*n)++;
    }
    if (e == KEEL_CLOUD_OK && *n < max && rc != SQLITE_DONE) {
        e = map_rc(ob, rc);
    }
    sqlite3_reset(st);
    if (e != KEEL_CLOUD_OK) {
        for (size_t i = 0; i < *n; i++) {
            outbox_row_free(&rows[i]);
        }
        *n = 0;
        return e;
    }
    return *n ? KEEL_CLOUD_OK : KEEL_CLOUD_ERR_NOT_FOUND;
}

keel_cloud_err outbox_next(outbox *ob, uint64_t after, outbox_row *row)
{
    size_t n;
    memset(row, 0, sizeof *row);
    return outbox_next_batch(ob, after, row, 1, &n);
}

void outbox_row_free(outbox_row *row)
{
    free(row->payload);
    row->payload = NULL;
}

struct del_args {
    const uint64_t *ids;
    size_t n;
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Deletes ids[lo..hi] as one range; they are consecutive ids. */
static keel_cloud_err delete_range(outbox *ob, uint64_t lo, uint64_t hi)
{
    if (lo == hi) {
        return delete_one(ob, lo);
    }
    sqlite3_stmt *st = ob->st[ST_DEL_RANGE];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)lo);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)hi);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t b = (uint64_t)sqlite3_column_int64(st, 0);
        ob->bytes = ob->bytes >= b ? ob->bytes - b : 0;
        ob->rows = ob->rows ? ob->rows - 1 : 0;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? KEEL_CLOUD_OK : map_rc(ob, rc);
}

static keel_cloud_err del_fn(outbox *ob, void *arg)
{
    struct del_args *a = arg;
    /* PUBACKs come nearly in order: sorted, they are a few runs of consecutive ids, each
     * one statement. The caller's array is sorted in place. */
    uint64_t *ids = (uint64_t *)a->ids;
    qsort(ids, a->n, sizeof *ids, cmp_u64);
    size_t i = 0;
    while (i < a->n) {
        size_t j = i;
        while (j + 1 < a->n && ids[j + 1] == ids[j] + 1) {
            j++;
        }
        keel_cloud_err e = delete_range(ob, ids[i], ids[j]);
        if (e != KEEL_CLOUD_OK) {
            return e;
        }
        i = j + 1;
    }
    return KEEL_CLOUD_OK;
}

keel_cloud_err outbox_delete(outbox *ob, uint64_t *ids, size_t n)
{
    if (n == 0) {
        return KEEL_CLOUD_OK;
    }
    struct del_args a = {ids, n};
    if (ob->in_tx) {
        return del_fn(ob, &a);
    }
    /* A delete need not reach the disk before we go on: if a power cut loses it, the row is
     * sent again and the receiver drops it by id. So deletes commit without an fsync
     * (synchronous=NORMAL in WAL mode); the next FULL commit (a put) syncs the WAL, deletes
     * included. This halves the fsyncs of a steady stream. */
    (void)sqlite3_exec(ob->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    keel_cloud_err e = in_tx(ob, del_fn, &a);
    (void)sqlite3_exec(ob->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    return e;
}

static uint64_t query_u64(outbox *ob, const char *sql)
{
    sqlite3_stmt *st;
    uint64_t v = 0;
    if (sqlite3_prepare_v2(ob->db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) {
            v = (uint64_t)sqlite3_column_int64(st, 0);
        }
        sqlite3_finalize(st);
    }
    return v;
}

uint64_t outbox_count(outbox *ob)
{
    return ob->rows;
}

uint64_t outbox_bytes(const outbox *ob)
{
    return ob->bytes;
}

uint64_t outbox_last_id(outbox *ob)
{
    return query_u64(ob, "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'");
}

keel_cloud_err outbox_twin_get(outbox *ob, char **json, int64_t *version)
{
    sqlite3_stmt *st = ob->st[ST_TWIN_GET];
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? KEEL_CLOUD_ERR_NOT_FOUND : map_rc(ob, rc);
    }
    const unsigned char *text = sqlite3_column_text(st, 0);
    *version = sqlite3_column_int64(st, 1);
    *json = strdup(text ? (const char *)text : "{}");
    sqlite3_reset(st);
    return *json ? KEEL_CLOUD_OK : KEEL_CLOUD_ERR_SPACE;
}

struct twin_args {
    const char *json;
    int64_t version;
};

static keel_cloud_err twin_fn(outbox *ob, void *arg)
{
    struct twin_args *a = arg;
    sqlite3_stmt *st = ob->st[ST_TWIN_PUT];
    sqlite3_bind_int64(st, 1, a->version);
    sqlite3_bind_text(st, 2, a->json, -1, SQLITE_STATIC);
    return step_done(ob, st, SQLITE_DONE);
}

keel_cloud_err outbox_twin_put(outbox *ob, const char *json, int64_t version)
{
    struct twin_args a = {json, version};
    return in_tx(ob, twin_fn, &a);
}

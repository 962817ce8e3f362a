/* The SQLite outbox and twin cache on a real file: order, ids never reused, survival across
 * reopen, the byte bound's eviction policy, group commit and rollback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"
#include "outbox.h"

static char path[400];

static int setup(void **state)
{
    (void)state;
    static int n;
    const char *dir = kf_tmpdir("outbox");
    if (!dir) {
        return -1;
    }
    snprintf(path, sizeof path, "%s/ob%d.db", dir, n++);
    return 0;
}

static outbox *open_ob(uint64_t max)
{
    outbox *ob = NULL;
    char err[256];
    keel_cloud_err e = outbox_open(path, max, &ob, err, sizeof err);
    if (e != KEEL_CLOUD_OK) {
        fail_msg("open: %s", err);
    }
    return ob;
}

static uint64_t put(outbox *ob, int kind, const char *s)
{
    uint64_t id = 0;
    assert_int_equal(outbox_put(ob, kind, NULL, s, strlen(s), &id, NULL), KEEL_CLOUD_OK);
    return id;
}

static void test_outbox_order_kept_and_ids_not_reused_after_reopen(void **state)
{
    (void)state;
    outbox *ob = open_ob(1 << 20);
    uint64_t a = put(ob, OUTBOX_TELEMETRY, "a");
    uint64_t b = put(ob, OUTBOX_REPORTED, "{\"b\":1}");
    uint64_t c = put(ob, OUTBOX_TELEMETRY, "c");
    assert_true(a < b && b < c);
    outbox_row row;
    assert_int_equal(outbox_next(ob, 0, &row), KEEL_CLOUD_OK);
    assert_int_equal(row.id, a);
    assert_memory_equal(row.payload, "a", 1);
    outbox_row_free(&row);
    assert_int_equal(outbox_next(ob, a, &row), KEEL_CLOUD_OK);
    assert_int_equal(row.kind, OUTBOX_REPORTED);
    outbox_row_free(&row);
    /* Delete the newest: its id must still never come back. */
    assert_int_equal(outbox_delete(ob, &c, 1), KEEL_CLOUD_OK);
    outbox_close(ob);

    ob = open_ob(1 << 20);
    assert_int_equal(outbox_count(ob), 2);
    assert_int_equal(outbox_last_id(ob), c);
    uint64_t d = put(ob, OUTBOX_TELEMETRY, "d");
    assert_true(d > c);
    assert_int_equal(outbox_next(ob, b, &row), KEEL_CLOUD_OK);
    assert_int_equal(row.id, d);
    outbox_row_free(&row);
    assert_int_equal(outbox_next(ob, d, &row), KEEL_CLOUD_ERR_NOT_FOUND);
    outbox_close(ob);
}

static void test_outbox_full_evicts_oldest_telemetry_never_properties(void **state)
{
    (void)state;
    outbox *ob = open_ob(100);
    char p40[41];
    memset(p40, 'x', 40);
    p40[40] = '\0';
    uint64_t t1 = put(ob, OUTBOX_TELEMETRY, p40);
    uint64_t r1 = put(ob, OUTBOX_REPORTED, p40);
    uint64_t ev = 0, t2 = 0;
    /* 120 > 100: the oldest telemetry (t1) goes, the reported row stays. */
    assert_int_equal(outbox_put(ob, OUTBOX_TELEMETRY, NULL, p40, 40, &t2, &ev), KEEL_CLOUD_OK);
    assert_int_equal(ev, 1);
    outbox_row row;
    assert_int_equal(outbox_next(ob, 0, &row), KEEL_CLOUD_OK);
    assert_int_equal(row.id, r1);
    outbox_row_free(&row);
    assert_true(t1 < r1);
    assert_int_equal(outbox_bytes(ob), 80);
    /* Only properties and one telemetry left: another property evicts t2, then a third
     * property cannot fit at all. */
    uint64_t r2 = 0;
    ev = 0;
    assert_int_equal(outbox_put(ob, OUTBOX_REPORTED, NULL, p40, 40, &r2, &ev), KEEL_CLOUD_OK);
    assert_int_equal(ev, 1);
    assert_int_equal(outbox_put(ob, OUTBOX_REPORTED, NULL, p40, 40, &r2, &ev), KEEL_CLOUD_ERR_FULL);
    assert_int_equal(outbox_count(ob), 2);
    assert_int_equal(outbox_bytes(ob), 80);
    /* Larger than the whole bound: refused up front. */
    char big[200];
    memset(big, 'y', sizeof big);
    assert_int_equal(outbox_put(ob, OUTBOX_TELEMETRY, NULL, big, sizeof big, NULL, NULL),
                     KEEL_CLOUD_ERR_FULL);
    outbox_close(ob);
}

static void test_outbox_batch_commit_and_rollback(void **state)
{
    (void)state;
    outbox *ob = open_ob(1 << 20);
    assert_int_equal(outbox_begin(ob), KEEL_CLOUD_OK);
    put(ob, OUTBOX_TELEMETRY, "1");
    put(ob, OUTBOX_TELEMETRY, "2");
    outbox_rollback(ob);
    assert_int_equal(outbox_count(ob), 0);
    assert_int_equal(outbox_bytes(ob), 0);
    assert_int_equal(outbox_begin(ob), KEEL_CLOUD_OK);
    assert_int_equal(outbox_begin(ob), KEEL_CLOUD_ERR_ARG);
    for (int i = 0; i < 100; i++) {
        put(ob, OUTBOX_TELEMETRY, "m");
    }
    assert_int_equal(outbox_commit(ob), KEEL_CLOUD_OK);
    outbox_close(ob);
    ob = open_ob(1 << 20);
    assert_int_equal(outbox_count(ob), 100);
    assert_int_equal(outbox_bytes(ob), 100);
    outbox_close(ob);
}

static void test_outbox_twin_cache_survives_reopen(void **state)
{
    (void)state;
    outbox *ob = open_ob(1 << 20);
    char *json = NULL;
    int64_t v;
    assert_int_equal(outbox_twin_get(ob, &json, &v), KEEL_CLOUD_ERR_NOT_FOUND);
    assert_int_equal(outbox_twin_put(ob, "{\"a\":1,\"$version\":4}", 4), KEEL_CLOUD_OK);
    outbox_close(ob);
    ob = open_ob(1 << 20);
    assert_int_equal(outbox_twin_get(ob, &json, &v), KEEL_CLOUD_OK);
    assert_int_equal(v, 4);
    assert_string_equal(json, "{\"a\":1,\"$version\":4}");
    free(json);
    outbox_close(ob);
}

static void test_outbox_delete_unordered_runs_removes_exactly_those(void **state)
{
    (void)state;
    outbox *ob = open_ob(1 << 20);
    uint64_t id[10];
    for (int i = 0; i < 10; i++) {
        id[i] = put(ob, OUTBOX_TELEMETRY, "ab");
    }
    uint64_t del[] = {id[2], id[0], id[1], id[6], id[8], id[7], id[8] + 1000};
    assert_int_equal(outbox_delete(ob, del, sizeof del / sizeof del[0]), KEEL_CLOUD_OK);
    assert_int_equal(outbox_count(ob), 4);
    assert_int_equal(outbox_bytes(ob), 8);
    outbox_row rows[8];
    size_t n = 0;
    assert_int_equal(outbox_next_batch(ob, 0, rows, 8, &n), KEEL_CLOUD_OK);
    assert_int_equal(n, 4);
    uint64_t want[] = {id[3], id[4], id[5], id[9]};
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rows[i].id, want[i]);
        outbox_row_free(&rows[i]);
    }
    outbox_close(ob);
}

static void test_outbox_open_bad_path_says_where(void **state)
{
    (void)state;
    outbox *ob = NULL;
    char err[256];
    assert_int_equal(outbox_open("/nonexistent-dir/x.db", 100, &ob, err, sizeof err),
                     KEEL_CLOUD_ERR_DB);
    assert_null(ob);
    assert_non_null(strstr(err, "/nonexistent-dir/x.db"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_outbox_order_kept_and_ids_not_reused_after_reopen, setup),
        cmocka_unit_test_setup(test_outbox_full_evicts_oldest_telemetry_never_properties, setup),
        cmocka_unit_test_setup(test_outbox_batch_commit_and_rollback, setup),
        cmocka_unit_test_setup(test_outbox_twin_cache_survives_reopen, setup),
        cmocka_unit_test_setup(test_outbox_delete_unordered_runs_removes_exactly_those, setup),
        cmocka_unit_test_setup(test_outbox_open_bad_path_says_where, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

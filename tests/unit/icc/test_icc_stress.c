/* Concurrent producer and consumer on one channel, each in its own thread, for the
 * ThreadSanitizer build (label tsan) as well as ASan: the data race detector checks the
 * acquire/release protocol, the test checks that every message arrives once, in order, intact,
 * through wrap-around and back-pressure, with sleeping (doorbell) and spinning waiters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <pthread.h>

#include "keel/icc.h"
#include "keel/manifest.h"

enum { MESSAGES = 100000, MAXLEN = 700 };

static void fill(uint8_t *p, size_t n, uint32_t i)
{
    for (size_t k = 0; k < n; k++)
        p[k] = (uint8_t)(i ^ (k * 13u));
}

static size_t len_of(uint32_t i)
{
    return (i * 2654435761u) % MAXLEN;
}

typedef struct side {
    keel_icc *c;
    int errors;
    uint32_t done;
} side;

static void *producer(void *arg)
{
    side *s = arg;
    uint8_t buf[MAXLEN];
    for (uint32_t i = 0; i < MESSAGES; i++) {
        size_t n = len_of(i);
        fill(buf, n, i);
        if (keel_icc_send(s->c, (uint16_t)i, buf, n, 10000) != KEEL_ICC_OK) {
            s->errors++;
            break;
        }
        s->done++;
    }
    return NULL;
}

static void *consumer(void *arg)
{
    side *s = arg;
    uint8_t buf[MAXLEN], want[MAXLEN];
    for (uint32_t i = 0; i < MESSAGES; i++) {
        keel_icc_msg m;
        if (keel_icc_recv(s->c, &m, buf, sizeof buf, 10000) != KEEL_ICC_OK) {
            s->errors++;
            break;
        }
        size_t n = len_of(i);
        fill(want, n, i);
        if (m.seq != i + 1 || m.type != (uint16_t)i || m.len != n || memcmp(buf, want, n) != 0) {
            s->errors++;
            break;
        }
        s->done++;
    }
    return NULL;
}

static void run(uint32_t spin_ns, uint32_t ring)
{
    keel_manifest a, b;
    keel_manifest_error err;
    const char *ta = "{\"schema\":1,\"id\":\"11111111-2222-3333-4444-555555555555\",\"name\":\"a\","
                     "\"version\":\"1.0.0\",\"kind\":\"app\",\"capabilities\":{\"intercore\":"
                     "[\"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\"]}}";
    const char *tb = "{\"schema\":1,\"id\":\"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\",\"name\":\"b\","
                     "\"version\":\"1.0.0\",\"kind\":\"rt\",\"capabilities\":{\"intercore\":"
                     "[\"11111111-2222-3333-4444-555555555555\"]}}";
    assert_int_equal(keel_manifest_parse("a", ta, strlen(ta), &a, &err), KEEL_MANIFEST_OK);
    assert_int_equal(keel_manifest_parse("b", tb, strlen(tb), &b, &err), KEEL_MANIFEST_OK);
    keel_icc_end ea, eb;
    keel_icc_config cfg = {.ring_bytes = ring, .max_msg = 1024};
    assert_int_equal(keel_icc_pair(&a, &b, &cfg, &ea, &eb, NULL), KEEL_ICC_OK);
    keel_icc_open_opts opts = {.spin_ns = spin_ns};
    side p = {0}, c = {0};
    assert_int_equal(keel_icc_open(&ea, &opts, &p.c), KEEL_ICC_OK);
    assert_int_equal(keel_icc_open(&eb, &opts, &c.c), KEEL_ICC_OK);
    pthread_t tp, tc;
    assert_int_equal(pthread_create(&tc, NULL, consumer, &c), 0);
    assert_int_equal(pthread_create(&tp, NULL, producer, &p), 0);
    pthread_join(tp, NULL);
    pthread_join(tc, NULL);
    assert_int_equal(p.errors, 0);
    assert_int_equal(c.errors, 0);
    assert_int_equal(c.done, MESSAGES);
    keel_icc_close(p.c);
    keel_icc_close(c.c);
}

static void test_stress_sleeping_waiters_small_ring_all_delivered(void **state)
{
    (void)state;
    run(0, 2048); /* a tiny ring: constant back-pressure and doorbells both ways */
}

static void test_stress_spinning_waiters_all_delivered(void **state)
{
    (void)state;
    run(50000, 65536);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress_sleeping_waiters_small_ring_all_delivered),
        cmocka_unit_test(test_stress_spinning_waiters_all_delivered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

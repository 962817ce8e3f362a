/* The Linux channel in one process: pairing by manifest (and refusal), send/receive through
 * the pollable fd, back-pressure with and without a timeout, request/response with the
 * messages that arrive meanwhile kept in order, peer death, regions that must be refused, and
 * the SCM_RIGHTS record. Two-process behaviour is in tests/integration/icc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "keel/icc.h"
#include "keel/manifest.h"

#define HL_ID "11111111-2222-3333-4444-555555555555"
#define RT_ID "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"

static keel_manifest manifest(const char *id, const char *name, const char *partner)
{
    char text[512];
    snprintf(text, sizeof text,
             "{\"schema\":1,\"id\":\"%s\",\"name\":\"%s\",\"version\":\"1.0.0\",\"kind\":\"app\","
             "\"capabilities\":{\"intercore\":[%s%s%s]}}",
             id, name, partner ? "\"" : "", partner ? partner : "", partner ? "\"" : "");
    keel_manifest m;
    keel_manifest_error err;
    assert_int_equal(keel_manifest_parse("t", text, strlen(text), &m, &err), KEEL_MANIFEST_OK);
    return m;
}

typedef struct pair {
    keel_icc *a, *b;
} pair;

static int setup(void **state)
{
    keel_manifest hl = manifest(HL_ID, "hl", RT_ID), rt = manifest(RT_ID, "rt", HL_ID);
    keel_icc_end ea, eb;
    keel_icc_config cfg = {.ring_bytes = 4096, .max_msg = 1024};
    assert_int_equal(keel_icc_pair(&hl, &rt, &cfg, &ea, &eb, NULL), KEEL_ICC_OK);
    pair *p = calloc(1, sizeof *p);
    assert_int_equal(keel_icc_open(&ea, NULL, &p->a), KEEL_ICC_OK);
    assert_int_equal(keel_icc_open(&eb, NULL, &p->b), KEEL_ICC_OK);
    assert_int_equal(ea.mem, -1); /* open took the fds */
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    pair *p = *state;
    keel_icc_close(p->a);
    keel_icc_close(p->b);
    free(p);
    return 0;
}

static bool readable(keel_icc *c, int ms)
{
    struct pollfd pfd = {.fd = keel_icc_fd(c), .events = POLLIN};
    return poll(&pfd, 1, ms) == 1;
}

static void test_pair_one_sided_manifest_denied(void **state)
{
    (void)state;
    keel_manifest hl = manifest(HL_ID, "hl", RT_ID), rt = manifest(RT_ID, "rt", NULL);
    keel_icc_end ea, eb;
    keel_manifest_error why = {{0}};
    assert_int_equal(keel_icc_pair(&hl, &rt, NULL, &ea, &eb, &why), KEEL_ICC_ERR_DENIED);
    assert_non_null(strstr(why.msg, "rt (" RT_ID ") does not name hl"));
    assert_int_equal(ea.mem, -1);
    assert_int_equal(eb.mem, -1);
}

static void test_send_recv_through_pollable_fd(void **state)
{
    pair *p = *state;
    keel_icc_msg m;
    char buf[64];
    assert_int_equal(keel_icc_recv(p->b, &m, buf, sizeof buf, 0), KEEL_ICC_ERR_WOULD_BLOCK);
    assert_false(readable(p->b, 0));
    assert_int_equal(keel_icc_send(p->a, 3, "ping", 4, 0), KEEL_ICC_OK);
    assert_true(readable(p->b, 1000)); /* the doorbell woke the fd */
    assert_int_equal(keel_icc_recv(p->b, &m, buf, sizeof buf, 0), KEEL_ICC_OK);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(m.type, 3);
    assert_int_equal(keel_icc_recv(p->b, &m, buf, sizeof buf, 0), KEEL_ICC_ERR_WOULD_BLOCK);
    assert_false(readable(p->b, 0)); /* drained: quiet again */
    assert_int_equal(keel_icc_send(p->a, 3, "again", 5, 0), KEEL_ICC_OK);
    assert_true(readable(p->b, 1000));
}

static void test_recv_timeout_on_empty_channel(void **state)
{
    pair *p = *state;
    keel_icc_msg m;
    char buf[8];
    assert_int_equal(keel_icc_recv(p->b, &m, buf, sizeof buf, 30), KEEL_ICC_ERR_TIMEOUT);
}

typedef struct drainer {
    keel_icc *c;
    int n;
    int got;
} drainer;

static void *drain_thread(void *arg)
{
    drainer *d = arg;
    keel_icc_msg m;
    char buf[1024];
    while (d->got < d->n) {
        if (keel_icc_recv(d->c, &m, buf, sizeof buf, 5000) != KEEL_ICC_OK)
            break;
        d->got++;
    }
    return NULL;
}

static void test_send_full_ring_backpressure_then_wakes(void **state)
{
    pair *p = *state;
    char big[1000] = {0};
    int queued = 0;
    while (keel_icc_send(p->a, 1, big, sizeof big, 0) == KEEL_ICC_OK)
        queued++;
    assert_int_equal(queued, 4096 / keel_icc_frame_bytes(sizeof big));
    assert_int_equal(keel_icc_send(p->a, 1, big, sizeof big, 0), KEEL_ICC_ERR_WOULD_BLOCK);
    assert_int_equal(keel_icc_send(p->a, 1, big, sizeof big, 20), KEEL_ICC_ERR_TIMEOUT);
    /* A consumer frees space: a blocked sender wakes up and gets through. */
    drainer d = {.c = p->b, .n = queued + 10};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, drain_thread, &d), 0);
    int sent = 0;
    for (int i = 0; i < 10; i++) {
        sent += keel_icc_send(p->a, 1, big, sizeof big, 5000) == KEEL_ICC_OK;
    }
    pthread_join(t, NULL);
    assert_int_equal(sent, 10);
    assert_int_equal(d.got, queued + 10);
}

static void test_send_too_big_refused(void **state)
{
    pair *p = *state;
    char big[1025] = {0};
    assert_int_equal(keel_icc_send(p->a, 1, big, sizeof big, 0), KEEL_ICC_ERR_TOO_BIG);
}

static void *responder(void *arg)
{
    keel_icc *c = arg;
    keel_icc_msg m;
    char buf[64];
    for (int i = 0; i < 2; i++) {
        if (keel_icc_recv(c, &m, buf, sizeof buf, 5000) != KEEL_ICC_OK)
            return NULL;
        /* Something unrelated first: the requester must keep it, not drop it. */
        if (keel_icc_send(c, 50, "note", 4, 5000) != KEEL_ICC_OK)
            return NULL;
        buf[0] = (char)(buf[0] + 1);
        if (keel_icc_reply(c, &m, 51, buf, m.len, 5000) != KEEL_ICC_OK)
            return NULL;
    }
    return NULL;
}

static void test_request_reply_keeps_other_messages_in_order(void **state)
{
    pair *p = *state;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, responder, p->b), 0);
    keel_icc_msg m;
    char buf[64];
    assert_int_equal(keel_icc_request(p->a, 10, "a", 1, &m, buf, sizeof buf, 5000), KEEL_ICC_OK);
    assert_int_equal(m.type, 51);
    assert_true(m.flags & KEEL_ICC_F_REPLY);
    assert_int_equal(buf[0], 'b');
    assert_int_equal(keel_icc_request(p->a, 10, "x", 1, &m, buf, sizeof buf, 5000), KEEL_ICC_OK);
    assert_int_equal(buf[0], 'y');
    pthread_join(t, NULL);
    assert_true(readable(p->a, 0)); /* the kept messages wake an event loop */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(keel_icc_recv(p->a, &m, buf, sizeof buf, 0), KEEL_ICC_OK);
        assert_int_equal(m.type, 50);
        assert_memory_equal(buf, "note", 4);
    }
    assert_int_equal(keel_icc_recv(p->a, &m, buf, sizeof buf, 0), KEEL_ICC_ERR_WOULD_BLOCK);
}

static void test_request_no_answer_times_out(void **state)
{
    pair *p = *state;
    keel_icc_msg m;
    char buf[8];
    assert_int_equal(keel_icc_request(p->a, 10, "q", 1, &m, buf, sizeof buf, 30),
                     KEEL_ICC_ERR_TIMEOUT);
    assert_int_equal(keel_icc_request(p->a, 10, "q", 1, &m, buf, sizeof buf, 0), KEEL_ICC_ERR_ARG);
}

static void test_peer_closed_detected_after_queued_messages(void **state)
{
    pair *p = *state;
    assert_int_equal(keel_icc_send(p->b, 1, "last words", 10, 0), KEEL_ICC_OK);
    keel_icc_close(p->b);
    p->b = NULL;
    keel_icc_msg m;
    char buf[16];
    /* What the peer sent before it went is still delivered, then the loss is reported. */
    assert_int_equal(keel_icc_recv(p->a, &m, buf, sizeof buf, 1000), KEEL_ICC_OK);
    assert_memory_equal(buf, "last words", 10);
    assert_int_equal(keel_icc_recv(p->a, &m, buf, sizeof buf, 1000), KEEL_ICC_ERR_PEER_GONE);
    assert_true(keel_icc_peer_gone(p->a));
    assert_true(readable(p->a, 0)); /* an event loop sees it too */
    char big[1000] = {0};
    keel_icc_err rc;
    while ((rc = keel_icc_send(p->a, 1, big, sizeof big, 1000)) == KEEL_ICC_OK) {
    }
    assert_int_equal(rc, KEEL_ICC_ERR_PEER_GONE); /* full, and nobody will ever drain it */
}

static void test_open_refuses_unsealed_small_or_foreign_regions(void **state)
{
    (void)state;
    keel_manifest hl = manifest(HL_ID, "hl", RT_ID), rt = manifest(RT_ID, "rt", HL_ID);
    keel_icc_end ea, eb;
    assert_int_equal(keel_icc_pair(&hl, &rt, NULL, &ea, &eb, NULL), KEEL_ICC_OK);
    keel_icc *c;
    /* IDs that are not the region's. */
    keel_icc_end wrong = eb;
    wrong.self.b[3] ^= 1;
    assert_int_equal(keel_icc_open(&wrong, NULL, &c), KEEL_ICC_ERR_REGION);
    /* An unsealed memfd: its owner could shrink it under us. */
    int fd = memfd_create("t", MFD_CLOEXEC);
    assert_int_equal(ftruncate(fd, keel_icc_region_bytes(4096)), 0);
    keel_icc_end unsealed = eb;
    unsealed.mem = fd;
    assert_int_equal(keel_icc_open(&unsealed, NULL, &c), KEEL_ICC_ERR_REGION);
    close(fd);
    /* Sealed but too small to hold even the header. */
    fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    assert_int_equal(ftruncate(fd, 100), 0);
    assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), 0);
    keel_icc_end tiny = eb;
    tiny.mem = fd;
    assert_int_equal(keel_icc_open(&tiny, NULL, &c), KEEL_ICC_ERR_REGION);
    close(fd);
    keel_icc_end_close(&ea);
    keel_icc_end_close(&eb);
}

static void test_end_handover_record_round_trip_and_garbage(void **state)
{
    (void)state;
    keel_manifest hl = manifest(HL_ID, "hl", RT_ID), rt = manifest(RT_ID, "rt", HL_ID);
    keel_icc_end ea, eb, got;
    assert_int_equal(keel_icc_pair(&hl, &rt, NULL, &ea, &eb, NULL), KEEL_ICC_OK);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(keel_icc_end_send(sv[0], &eb), KEEL_ICC_OK);
    assert_int_equal(keel_icc_end_recv(sv[1], &got), KEEL_ICC_OK);
    assert_int_equal(got.side, KEEL_ICC_SIDE_B);
    assert_memory_equal(got.self.b, eb.self.b, 16);
    assert_memory_equal(got.peer.b, eb.peer.b, 16);
    keel_icc *a, *b;
    assert_int_equal(keel_icc_open(&ea, NULL, &a), KEEL_ICC_OK);
    assert_int_equal(keel_icc_open(&got, NULL, &b), KEEL_ICC_OK);
    keel_icc_msg m;
    char buf[8];
    assert_int_equal(keel_icc_send(a, 1, "hi", 2, 0), KEEL_ICC_OK);
    assert_int_equal(keel_icc_recv(b, &m, buf, sizeof buf, 1000), KEEL_ICC_OK);
    /* A record without descriptors is refused. */
    assert_int_equal(write(sv[0], "garbage-garbage-garbage-garbage-garbage!", 40), 40);
    assert_int_equal(keel_icc_end_recv(sv[1], &got), KEEL_ICC_ERR_IO);
    assert_int_equal(got.mem, -1);
    close(sv[0]);
    assert_int_equal(keel_icc_end_recv(sv[1], &got), KEEL_ICC_ERR_PEER_GONE);
    close(sv[1]);
    keel_icc_end_close(&eb);
    keel_icc_close(a);
    keel_icc_close(b);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pair_one_sided_manifest_denied),
        T(test_send_recv_through_pollable_fd),
        T(test_recv_timeout_on_empty_channel),
        T(test_send_full_ring_backpressure_then_wakes),
        T(test_send_too_big_refused),
        T(test_request_reply_keeps_other_messages_in_order),
        T(test_request_no_answer_times_out),
        T(test_peer_closed_detected_after_queued_messages),
        cmocka_unit_test(test_open_refuses_unsealed_small_or_foreign_regions),
        cmocka_unit_test(test_end_handover_record_round_trip_and_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Intercore channels between processes: the test plays the supervisor. It pairs two
 * components by manifest, hands each end to a plain process over SCM_RIGHTS, and checks what
 * comes out: request/response between two processes, and a peer that crashes and is restarted
 * without losing or duplicating any acknowledged message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "icc_peer.h"
#include "keel/icc.h"
#include "keel/manifest.h"

#define HL_ID "11111111-2222-3333-4444-555555555555"
#define RT_ID "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"

static keel_manifest manifest(const char *id, const char *partner)
{
    char text[512];
    snprintf(text, sizeof text,
             "{\"schema\":1,\"id\":\"%s\",\"name\":\"p\",\"version\":\"1.0.0\",\"kind\":\"app\","
             "\"capabilities\":{\"intercore\":[\"%s\"]}}",
             id, partner);
    keel_manifest m;
    keel_manifest_error err;
    assert_int_equal(keel_manifest_parse("t", text, strlen(text), &m, &err), KEEL_MANIFEST_OK);
    return m;
}

static void make_pair(keel_icc_end *a, keel_icc_end *b)
{
    keel_manifest hl = manifest(HL_ID, RT_ID), rt = manifest(RT_ID, HL_ID);
    assert_int_equal(keel_icc_pair(&hl, &rt, NULL, a, b, NULL), KEEL_ICC_OK);
}

/* Starts icc_peer with `mode` args and hands it `e` over a fresh socket. */
static void spawn_peer(kf_proc *p, const char *name, const keel_icc_end *e, const char *mode,
                       const char *arg)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    assert_int_equal(fcntl(sv[0], F_SETFD, FD_CLOEXEC), 0);
    char path[1024], fd[16];
    snprintf(path, sizeof path, "%s/tests/integration/icc/icc_peer", kf_build_dir());
    snprintf(fd, sizeof fd, "%d", sv[1]);
    char *argv[] = {path, fd, (char *)mode, (char *)arg, NULL};
    assert_int_equal(kf_spawn(p, name, argv, NULL), 0);
    close(sv[1]);
    assert_int_equal(keel_icc_end_send(sv[0], e), KEEL_ICC_OK);
    close(sv[0]);
}

static int exit_code(kf_proc *p)
{
    int st = kf_wait_exit(p, 30000);
    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        kf_dump_log(p, 20);
    }
    return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_two_processes_request_response_after_handover(void **state)
{
    (void)state;
    keel_icc_end a, b;
    make_pair(&a, &b);
    static kf_proc server, client; /* the fixture tracks them until exit */
    spawn_peer(&server, "echo", &b, "echo", NULL);
    spawn_peer(&client, "client", &a, "client", "2000");
    /* The supervisor keeps nothing: the components hold their ends alone. */
    keel_icc_end_close(&a);
    keel_icc_end_close(&b);
    assert_int_equal(exit_code(&client), 0);
    assert_int_equal(exit_code(&server), 0);
}

static keel_icc_end end_dup(const keel_icc_end *e)
{
    keel_icc_end d = *e;
    d.mem = fcntl(e->mem, F_DUPFD_CLOEXEC, 0);
    d.bell_in = fcntl(e->bell_in, F_DUPFD_CLOEXEC, 0);
    d.bell_out = fcntl(e->bell_out, F_DUPFD_CLOEXEC, 0);
    d.link = -1;
    return d;
}

static void expect_echo(keel_icc *c, uint32_t value)
{
    keel_icc_msg m;
    uint32_t v[2];
    keel_icc_err rc = keel_icc_recv(c, &m, v, sizeof v, 20000);
    if (rc != KEEL_ICC_OK || v[0] != value || v[1] != value + 1) {
        fail_msg("echo %u: %s, got value %u seq %u", value, keel_icc_err_name(rc), v[0], v[1]);
    }
}

static void test_peer_crash_and_restart_loses_and_repeats_nothing(void **state)
{
    (void)state;
    enum { N = 1000, K = 300, MORE = 200 };
    keel_icc_end a, b;
    make_pair(&a, &b);
    keel_icc_end keep = end_dup(&b); /* the supervisor keeps the region and bells to restart B */
    static kf_proc peer;
    char k[16];
    snprintf(k, sizeof k, "%d", K);
    spawn_peer(&peer, "echo1", &b, "echo", k);
    keel_icc_end_close(&b);
    keel_icc *c;
    assert_int_equal(keel_icc_open(&a, NULL, &c), KEEL_ICC_OK);
    for (uint32_t i = 0; i < N; i++) {
        assert_int_equal(keel_icc_send(c, PEER_DATA, &i, sizeof i, 20000), KEEL_ICC_OK);
    }
    /* B echoes K messages and dies; its echoes, sent before it died, all arrive. */
    for (uint32_t i = 0; i < K; i++)
        expect_echo(c, i);
    keel_icc_msg m;
    uint32_t v[2];
    assert_int_equal(keel_icc_recv(c, &m, v, sizeof v, 20000), KEEL_ICC_ERR_PEER_GONE);
    int st = kf_wait_exit(&peer, 20000);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    /* While B is down, A keeps queueing. */
    for (uint32_t i = N; i < N + MORE; i++) {
        assert_int_equal(keel_icc_send(c, PEER_DATA, &i, sizeof i, 0), KEEL_ICC_OK);
    }
    /* Restart B on the same region with a new link. */
    keel_icc_end a_link = {.link = -1};
    assert_int_equal(keel_icc_relink(&a_link, &keep), KEEL_ICC_OK);
    assert_int_equal(keel_icc_set_link(c, a_link.link), KEEL_ICC_OK);
    assert_false(keel_icc_peer_gone(c));
    spawn_peer(&peer, "echo2", &keep, "echo", NULL);
    keel_icc_end_close(&keep);
    /* Everything B had not consumed, exactly once, in order, with unbroken sequence numbers. */
    for (uint32_t i = K; i < N + MORE; i++)
        expect_echo(c, i);
    assert_int_equal(keel_icc_send(c, PEER_QUIT, NULL, 0, 20000), KEEL_ICC_OK);
    assert_int_equal(exit_code(&peer), 0);
    assert_int_equal(keel_icc_recv(c, &m, v, sizeof v, 0), KEEL_ICC_ERR_PEER_GONE);
    keel_icc_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_processes_request_response_after_handover),
        cmocka_unit_test(test_peer_crash_and_restart_loses_and_repeats_nothing),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    kf_cleanup();
    return rc;
}

/* A Linux process and the real-time firmware on the RTOS sim port exchange a million
 * messages each way over one intercore channel, with nothing lost, reordered or duplicated.
 * The test is the connected core: it pairs the two components by manifest, hands the RT end to
 * the sim process (firmware/apps/icc_echo, SCM_RIGHTS), and keeps the send window full while
 * checking every echo's value, length, payload and sequence number. Then it checks that the
 * sim notices the connected core going away. */
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
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "keel/icc.h"
#include "keel/manifest.h"

enum { T_DATA = 1, T_QUIT = 2, T_ECHO = 3 };
#define MESSAGES 1000000u

static keel_manifest manifest(const char *id, const char *kind, const char *partner)
{
    char text[512];
    snprintf(text, sizeof text,
             "{\"schema\":1,\"id\":\"%s\",\"name\":\"%s\",\"version\":\"1.0.0\",\"kind\":\"%s\","
             "\"capabilities\":{\"intercore\":[\"%s\"]}}",
             id, kind, kind, partner);
    keel_manifest m;
    keel_manifest_error err;
    assert_int_equal(keel_manifest_parse("t", text, strlen(text), &m, &err), KEEL_MANIFEST_OK);
    return m;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Message i: its index, then a few bytes derived from it (4..36 bytes in all). */
static size_t make(uint8_t *p, uint32_t i)
{
    size_t n = 4 + (i % 33);
    memcpy(p, &i, 4);
    for (size_t k = 4; k < n; k++)
        p[k] = (uint8_t)(i * 31u + k);
    return n;
}

static void pair(keel_icc_end *ea, keel_icc_end *eb)
{
    keel_manifest hl = manifest("11111111-2222-3333-4444-555555555555", "app",
                                "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
    keel_manifest rt = manifest("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "rt",
                                "11111111-2222-3333-4444-555555555555");
    keel_icc_config cfg = {.ring_bytes = 256 * 1024, .max_msg = 1024};
    assert_int_equal(keel_icc_pair(&hl, &rt, &cfg, ea, eb, NULL), KEEL_ICC_OK);
}

/* Starts the sim firmware and hands it `eb` (as keeld would); closes our copy of eb. */
static void spawn_sim(kf_proc *sim, const char *name, keel_icc_end *eb)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    assert_int_equal(fcntl(sv[0], F_SETFD, FD_CLOEXEC), 0);
    char exe[1024], fd[16];
    snprintf(exe, sizeof exe, "%s/firmware/apps/icc_echo/fw_icc_echo", kf_build_dir());
    snprintf(fd, sizeof fd, "%d", sv[1]);
    char *argv[] = {exe, fd, NULL};
    assert_int_equal(kf_spawn(sim, name, argv, NULL), 0);
    close(sv[1]);
    assert_int_equal(keel_icc_end_send(sv[0], eb), KEEL_ICC_OK);
    close(sv[0]);
    keel_icc_end_close(eb);
    assert_int_equal(kf_wait_log(sim, "icc_echo: attached", 20000), 0);
}

static keel_icc *start_sim(kf_proc *sim, const char *name)
{
    keel_icc_end ea, eb;
    pair(&ea, &eb);
    spawn_sim(sim, name, &eb);
    keel_icc *c;
    keel_icc_open_opts opts = {.spin_ns = 20000};
    assert_int_equal(keel_icc_open(&ea, &opts, &c), KEEL_ICC_OK);
    return c;
}

static void test_million_messages_no_loss_reorder_or_duplicate(void **state)
{
    (void)state;
    static kf_proc sim;
    keel_icc *c = start_sim(&sim, "rt-sim");
    uint8_t out[64], in[64], want[64];
    uint32_t sent = 0, got = 0;
    int64_t deadline = now_ms() + 150000;
    while (got < MESSAGES) {
        bool progress = false;
        while (sent < MESSAGES && sent - got < 4096) {
            size_t n = make(out, sent);
            keel_icc_err rc = keel_icc_send(c, T_DATA, out, n, 0);
            if (rc == KEEL_ICC_ERR_WOULD_BLOCK)
                break;
            assert_int_equal(rc, KEEL_ICC_OK);
            sent++;
            progress = true;
        }
        for (;;) {
            keel_icc_msg m;
            keel_icc_err rc = keel_icc_recv(c, &m, in, sizeof in, 0);
            if (rc == KEEL_ICC_ERR_WOULD_BLOCK)
                break;
            if (rc != KEEL_ICC_OK) {
                kf_dump_log(&sim, 10);
                fail_msg("recv after %u echoes: %s", got, keel_icc_err_name(rc));
            }
            size_t n = make(want, got);
            if (m.type != T_ECHO || m.seq != got + 1 || m.len != n || memcmp(in, want, n) != 0) {
                uint32_t v;
                memcpy(&v, in, 4);
                fail_msg("echo %u: got value %u seq %u len %u", got, v, m.seq, m.len);
            }
            got++;
            progress = true;
        }
        if (!progress) {
            if (now_ms() > deadline)
                fail_msg("stalled: sent %u, echoed %u", sent, got);
            struct pollfd p = {.fd = keel_icc_fd(c), .events = POLLIN};
            (void)poll(&p, 1, 1000);
        }
    }
    assert_int_equal(keel_icc_send(c, T_QUIT, NULL, 0, 5000), KEEL_ICC_OK);
    int st = kf_wait_exit(&sim, 30000);
    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        kf_dump_log(&sim, 10);
        fail_msg("sim exit status %d", st);
    }
    assert_int_equal(kf_wait_log(&sim, "icc_echo: echoed 1000000", 1000), 0);
    /* The sim's own acknowledgement is in the region: every message consumed, none twice. */
    keel_icc_msg m;
    assert_int_equal(keel_icc_recv(c, &m, in, sizeof in, 5000), KEEL_ICC_ERR_PEER_GONE);
    assert_int_equal(atomic_load(&keel_icc_ring_of(c)->tx_ctrl->tail_seq), MESSAGES + 1);
    keel_icc_close(c);
}

static void test_sim_stops_when_connected_core_goes(void **state)
{
    (void)state;
    static kf_proc sim;
    keel_icc *c = start_sim(&sim, "rt-sim-orphan");
    uint8_t out[64];
    assert_int_equal(keel_icc_send(c, T_DATA, out, make(out, 0), 1000), KEEL_ICC_OK);
    keel_icc_msg m;
    assert_int_equal(keel_icc_recv(c, &m, out, sizeof out, 10000), KEEL_ICC_OK);
    keel_icc_close(c); /* the connected core's end goes away */
    int st = kf_wait_exit(&sim, 20000);
    assert_true(st >= 0 && WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 4);
    assert_int_equal(kf_wait_log(&sim, "KEEL_ICC_ERR_PEER_GONE after 1", 1000), 0);
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

/* The sim is killed (SIGKILL) mid-stream and restarted on the same region: every echo after
 * the restart continues the sequence, no message is echoed twice, and at most the one message
 * the dead sim had taken but not yet answered is missing. */
static void test_sim_killed_and_restarted_resumes(void **state)
{
    (void)state;
    enum { TOTAL = 200000, KILL_AT = 50000 };
    static kf_proc sim;
    keel_icc_end ea, eb;
    pair(&ea, &eb);
    keel_icc_end keep = end_dup(&eb); /* the supervisor keeps the region to restart the core */
    spawn_sim(&sim, "rt-sim-1", &eb);
    keel_icc *c;
    assert_int_equal(keel_icc_open(&ea, NULL, &c), KEEL_ICC_OK);
    uint8_t out[64], in[64];
    uint32_t sent = 0, got = 0, next_value = 0, gaps = 0, next_seq = 1;
    bool restarted = false;
    int64_t deadline = now_ms() + 120000;
    while (next_value < TOTAL) {
        while (sent < TOTAL && sent - next_value < 4096 &&
               keel_icc_send(c, T_DATA, out, make(out, sent), 0) == KEEL_ICC_OK) {
            sent++;
        }
        keel_icc_msg m;
        keel_icc_err rc = keel_icc_recv(c, &m, in, sizeof in, 1000);
        if (rc == KEEL_ICC_OK) {
            uint32_t v;
            memcpy(&v, in, 4);
            if (m.seq != next_seq || v < next_value || v > next_value + 1) {
                fail_msg("echo seq %u value %u: expected seq %u value %u", m.seq, v, next_seq,
                         next_value);
            }
            gaps += v - next_value;
            next_value = v + 1;
            next_seq++;
            got++;
            if (got == KILL_AT && !restarted) {
                assert_int_equal(kf_signal(&sim, SIGKILL), 0);
            }
        } else if (rc == KEEL_ICC_ERR_PEER_GONE && !restarted) {
            (void)kf_wait_exit(&sim, 10000);
            keel_icc_end mine = {.link = -1};
            assert_int_equal(keel_icc_relink(&mine, &keep), KEEL_ICC_OK);
            assert_int_equal(keel_icc_set_link(c, mine.link), KEEL_ICC_OK);
            spawn_sim(&sim, "rt-sim-2", &keep);
            restarted = true;
        } else if (rc != KEEL_ICC_ERR_TIMEOUT) {
            fail_msg("recv: %s", keel_icc_err_name(rc));
        }
        if (now_ms() > deadline)
            fail_msg("stalled at %u echoes", got);
    }
    assert_true(restarted);
    assert_true(gaps <= 1);
    assert_int_equal(keel_icc_send(c, T_QUIT, NULL, 0, 5000), KEEL_ICC_OK);
    int st = kf_wait_exit(&sim, 30000);
    assert_true(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    keel_icc_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_million_messages_no_loss_reorder_or_duplicate),
        cmocka_unit_test(test_sim_stops_when_connected_core_goes),
        cmocka_unit_test(test_sim_killed_and_restarted_resumes),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    kf_cleanup();
    return rc;
}

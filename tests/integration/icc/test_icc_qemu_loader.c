/* keel-qemu, the RT loader for Cortex-M firmware under QEMU, driven as keeld drives it: the RT
 * end of a channel paired from two manifests arrives on $KEEL_RT_CHANNEL_FD, heartbeats are
 * records on $KEEL_APP_FD. The firmware is the echo (firmware/apps/icc_echo, fw tree, on Keel's
 * RTOS), which finds its channel through the loader's table and beats from a watchdog thread.
 * Checked: echoes through the bridge (payloads, correlation, order); beats while it is healthy
 * and none once its serving thread stalls (QEMU still running); a HardFault is QEMU's exit 122,
 * which is the loader's exit status, and the app sees its peer gone; a firmware that corrupts
 * its ring ends the run (exit 6) without anything reaching the app; usage errors.
 * argv[1] is keel-qemu. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "keel/icc.h"
#include "keel/manifest.h"

enum { T_DATA = 1, T_REPLY = 3, T_STALL = 4, T_FAULT = 5, T_CORRUPT = 6 };

static const char *loader_exe;
static const char *tmp; /* one directory for every run's logs and PSRAM files */
static char elf[1024];

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct run {
    kf_proc loader;
    keel_icc *app;
    int beats; /* our side of the heartbeat socket */
} run;

static void parse(const char *name, const char *json, keel_manifest *m)
{
    keel_manifest_error why;
    if (keel_manifest_parse(name, json, strlen(json), m, &why) != KEEL_MANIFEST_OK) {
        fail_msg("%s: %s", name, why.msg);
    }
}

/* Pairs an app with the RT component, starts the loader with the RT end, opens the app's end. */
static void start_with(run *r, const char *tag, bool icount)
{
    if (access(elf, R_OK) != 0) {
        fail_msg("%s missing: build the fw tree first (make fw)", elf);
    }
    keel_manifest app, rt;
    parse("app",
          "{\"schema\":1,\"id\":\"00000000-0000-4000-8000-0000000000a1\",\"name\":\"app\","
          "\"version\":\"1.0.0\",\"kind\":\"app\",\"exec\":\"a\",\"capabilities\":{\"intercore\":"
          "[\"00000000-0000-4000-8000-0000000000b1\"]}}",
          &app);
    parse("rt",
          "{\"schema\":1,\"id\":\"00000000-0000-4000-8000-0000000000b1\",\"name\":\"rt\","
          "\"version\":\"1.0.0\",\"kind\":\"rt\",\"exec\":\"b\",\"capabilities\":"
          "{\"intercore\":[\"00000000-0000-4000-8000-0000000000a1\"]}}",
          &rt);
    keel_icc_end hl, rte;
    keel_icc_config cfg = {.ring_bytes = 16384, .max_msg = 1024};
    assert_int_equal(keel_icc_pair(&app, &rt, &cfg, &hl, &rte, NULL), KEEL_ICC_OK);
    int cp[2], bp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, cp), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, bp), 0);
    assert_int_equal(keel_icc_end_send(cp[0], &rte), KEEL_ICC_OK);
    keel_icc_end_close(&rte); /* as keeld: only the loader holds the RT end */
    close(cp[0]);
    /* the loader's heartbeat socket must be inheritable: clear CLOEXEC on its end */
    int child_beat = dup(bp[1]);
    close(bp[1]);
    r->beats = bp[0];
    char chan_fd[16], beat_fd[16], log[700];
    snprintf(chan_fd, sizeof chan_fd, "%d", cp[1]);
    snprintf(beat_fd, sizeof beat_fd, "%d", child_beat);
    snprintf(log, sizeof log, "%s/%s.log", tmp, tag);
    assert_int_equal(setenv("KEEL_RT_CHANNEL_FD", chan_fd, 1), 0);
    assert_int_equal(setenv("KEEL_APP_FD", beat_fd, 1), 0);
    char *argv[] = {(char *)loader_exe, "--shm-dir", (char *)tmp, elf, NULL, NULL};
    if (icount) { /* options go before the image */
        argv[4] = elf;
        argv[3] = "--icount";
    }
    assert_int_equal(kf_spawn(&r->loader, "keel-qemu", argv, log), 0);
    unsetenv("KEEL_RT_CHANNEL_FD");
    unsetenv("KEEL_APP_FD");
    close(cp[1]);
    close(child_beat);
    if (kf_wait_log(&r->loader, "firmware attached its channels", 30000) != 0) {
        kf_dump_log(&r->loader, 30);
        fail_msg("the firmware did not attach");
    }
    assert_int_equal(kf_wait_log(&r->loader, "icc_echo: attached (channel table, 1 channel)", 1000),
                     0);
    assert_int_equal(keel_icc_open(&hl, NULL, &r->app), KEEL_ICC_OK);
}

static void start(run *r, const char *tag)
{
    start_with(r, tag, false);
}

/* Heartbeat records that arrive within ms. */
static int beats_within(run *r, int ms)
{
    int n = 0;
    int64_t end = now_ms() + ms;
    for (int64_t left = ms; left > 0; left = end - now_ms()) {
        struct pollfd p = {.fd = r->beats, .events = POLLIN};
        if (poll(&p, 1, (int)left) == 1) {
            char b[16];
            if (recv(r->beats, b, sizeof b, MSG_DONTWAIT) > 0) {
                n++;
            }
        }
    }
    return n;
}

static void finish(run *r)
{
    keel_icc_close(r->app);
    close(r->beats);
    if (kf_running(&r->loader)) {
        (void)kf_stop(&r->loader, 5000);
    }
}

static void test_loader_bridges_echoes_and_forwards_the_firmware_heartbeat(void **state)
{
    (void)state;
    run r;
    start(&r, "echo");
    for (uint32_t i = 0; i < 300; i++) {
        uint8_t req[200], resp[1024];
        size_t len = (i * 37u) % sizeof req;
        for (size_t k = 0; k < len; k++) {
            req[k] = (uint8_t)(i + k * 3u);
        }
        keel_icc_msg m;
        keel_icc_err rc = keel_icc_request(r.app, T_DATA, req, len, &m, resp, sizeof resp, 5000);
        if (rc != KEEL_ICC_OK) {
            kf_dump_log(&r.loader, 20);
            fail_msg("request %u: %s", i, keel_icc_err_name(rc));
        }
        assert_int_equal(m.type, T_REPLY);
        assert_int_equal(m.len, len);
        assert_memory_equal(resp, req, len);
    }
    /* a healthy firmware beats (its watchdog every 50 ms; forwarded at most every 50 ms) */
    assert_true(beats_within(&r, 1000) >= 3);

    /* the serving thread blocks for ever: QEMU and the watchdog run on, the beats stop */
    assert_int_equal(keel_icc_send(r.app, T_STALL, NULL, 0, 2000), KEEL_ICC_OK);
    assert_int_equal(kf_wait_log(&r.loader, "icc_echo: stalling", 5000), 0);
    (void)beats_within(&r, 200); /* one already in flight may still come */
    assert_int_equal(beats_within(&r, 1000), 0);
    assert_true(kf_running(&r.loader));
    finish(&r);
}

static void test_a_hardfault_ends_qemu_and_the_loader_with_its_code(void **state)
{
    (void)state;
    run r;
    start(&r, "fault");
    uint8_t resp[64];
    keel_icc_msg m;
    assert_int_equal(keel_icc_request(r.app, T_DATA, "x", 1, &m, resp, sizeof resp, 5000),
                     KEEL_ICC_OK);
    assert_int_equal(keel_icc_send(r.app, T_FAULT, NULL, 0, 2000), KEEL_ICC_OK);
    int st = kf_wait_exit(&r.loader, 20000);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 122)) {
        kf_dump_log(&r.loader, 30);
        fail_msg("loader status %d", st);
    }
    assert_int_equal(kf_wait_log(&r.loader, "QEMU exited with status 122", 1000), 0);
    assert_int_equal(kf_wait_log(&r.loader, "thread: icc_echo", 1000), 0); /* the fault dump */
    /* the app learns it: its peer is gone */
    assert_int_equal(keel_icc_request(r.app, T_DATA, "y", 1, &m, resp, sizeof resp, 5000),
                     KEEL_ICC_ERR_PEER_GONE);
    finish(&r);
}

/* The guest's memory is not trusted: an impossible index on its reply ring ends the run with
 * exit 6 (keeld then reports and restarts the component); nothing reaches the app. */
static void test_a_firmware_that_corrupts_its_ring_ends_the_run(void **state)
{
    (void)state;
    run r;
    start(&r, "corrupt");
    assert_int_equal(keel_icc_send(r.app, T_CORRUPT, NULL, 0, 2000), KEEL_ICC_OK);
    int st = kf_wait_exit(&r.loader, 20000);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 6)) {
        kf_dump_log(&r.loader, 30);
        fail_msg("loader status %d", st);
    }
    assert_int_equal(
        kf_wait_log(&r.loader, "the firmware broke its ring: KEEL_ICC_ERR_CORRUPT", 1000), 0);
    uint8_t buf[64];
    keel_icc_msg m;
    assert_int_equal(keel_icc_recv(r.app, &m, buf, sizeof buf, 2000), KEEL_ICC_ERR_PEER_GONE);
    finish(&r);
}

/* --icount: deterministic guest time (one instruction = 1 ns), about 3x slower; the bridge and
 * the heartbeat work the same. */
static void test_loader_with_icount_bridges_and_beats(void **state)
{
    (void)state;
    run r;
    start_with(&r, "icount", true);
    assert_int_equal(kf_wait_log(&r.loader, "deterministic guest time", 1000), 0);
    for (uint32_t i = 0; i < 50; i++) {
        uint8_t req[64], resp[64];
        for (size_t k = 0; k < sizeof req; k++) {
            req[k] = (uint8_t)(i * 5u + k);
        }
        keel_icc_msg m;
        assert_int_equal(
            keel_icc_request(r.app, T_DATA, req, sizeof req, &m, resp, sizeof resp, 5000),
            KEEL_ICC_OK);
        assert_memory_equal(resp, req, sizeof req);
    }
    assert_true(beats_within(&r, 1000) >= 2);
    finish(&r);
}

static void test_loader_usage_errors(void **state)
{
    (void)state;
    struct {
        char *args[4];
        int code;
    } cases[] = {
        {{"--help", NULL}, 0},
        {{NULL}, 2},
        {{"--poll-ms", "0", elf, NULL}, 2},
        {{"/nonexistent/fw.elf", NULL}, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[6] = {(char *)loader_exe};
        for (int k = 0; k < 4 && cases[i].args[k]; k++) {
            argv[1 + k] = cases[i].args[k];
        }
        kf_proc p;
        char log[700];
        snprintf(log, sizeof log, "%s/usage-%zu.log", tmp, i);
        assert_int_equal(kf_spawn(&p, "keel-qemu", argv, log), 0);
        int st = kf_wait_exit(&p, 10000);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), cases[i].code);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        return 2;
    }
    loader_exe = argv[1];
    tmp = kf_tmpdir("icc-qemu-loader");
    snprintf(elf, sizeof elf, "%s/firmware/apps/icc_echo/fw_icc_echo.elf", KEEL_FW_DIR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loader_bridges_echoes_and_forwards_the_firmware_heartbeat),
        cmocka_unit_test(test_a_hardfault_ends_qemu_and_the_loader_with_its_code),
        cmocka_unit_test(test_a_firmware_that_corrupts_its_ring_ends_the_run),
        cmocka_unit_test(test_loader_with_icount_bridges_and_beats),
        cmocka_unit_test(test_loader_usage_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    kf_cleanup();
    return rc;
}

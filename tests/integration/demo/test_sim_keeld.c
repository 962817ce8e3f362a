/* keel-sim under keeld: keeld pairs the envmon app with the RT component and sends the RT end
 * over $KEEL_RT_CHANNEL_FD (src/supervisor/broker.c, sv_channels_rt_start). This test plays
 * keeld's part with the real pairing and hand-over calls (keel_icc_pair, keel_icc_end_send),
 * starts the real keel-sim and asks its RT core for the environment over the app's end, as
 * keel-envmon does. keel-sim runs outside keeld's sandbox here because this tree's binaries
 * carry sanitizer runtimes, which the sandbox does not allow; the sandboxed hand-over itself is
 * tested in integration.supervisor (rtping/rtpong).
 * argv[1] is keel-sim. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "envmon_proto.h"
#include "fixture.h"
#include "keel/icc.h"
#include "keel/manifest.h"

static const char *sim_exe;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Starts keel-sim with KEEL_RT_CHANNEL_FD naming sock (inherited). */
static void start_sim(kf_proc *p, int sock, const char *log)
{
    char fdtxt[16];
    snprintf(fdtxt, sizeof fdtxt, "%d", sock);
    assert_int_equal(setenv("KEEL_RT_CHANNEL_FD", fdtxt, 1), 0);
    char *argv[] = {(char *)sim_exe, "--speed", "60", "--temp", "19", "--noise", "0", NULL};
    assert_int_equal(kf_spawn(p, "keel-sim", argv, log), 0);
    unsetenv("KEEL_RT_CHANNEL_FD");
}

static void test_sim_takes_its_end_from_keeld_and_answers_the_app(void **state)
{
    (void)state;
    char path[2][600];
    snprintf(path[0], sizeof path[0], "%s/apps/envmon/app_manifest.json", kf_source_dir());
    snprintf(path[1], sizeof path[1], "%s/firmware/apps/envmon/app_manifest.json",
             kf_source_dir());
    keel_manifest app, rt;
    keel_manifest_error why;
    assert_int_equal(keel_manifest_load(path[0], &app, &why), KEEL_MANIFEST_OK);
    assert_int_equal(keel_manifest_load(path[1], &rt, &why), KEEL_MANIFEST_OK);
    keel_icc_end hl_end, rt_end;
    assert_int_equal(keel_icc_pair(&app, &rt, NULL, &hl_end, &rt_end, &why), KEEL_ICC_OK);
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp), 0);
    assert_int_equal(keel_icc_end_send(sp[0], &rt_end), KEEL_ICC_OK);
    keel_icc_end_close(&rt_end); /* as keeld does: only the loader holds the RT end */
    close(sp[0]);
    char log[700];
    snprintf(log, sizeof log, "%s/sim.log", kf_tmpdir("sim-keeld"));
    kf_proc sim;
    start_sim(&sim, sp[1], log);
    close(sp[1]);
    assert_int_equal(kf_wait_log(&sim, "channel end from keeld", 10000), 0);

    keel_icc *c;
    assert_int_equal(keel_icc_open(&hl_end, NULL, &c), KEEL_ICC_OK);
    /* the first sample comes 2 s of virtual time after start: ask until there is one */
    envmon_env e = {0};
    int64_t deadline = now_ms() + 10000;
    while (e.seq == 0 && now_ms() < deadline) {
        uint8_t buf[128];
        keel_icc_msg resp;
        assert_int_equal(keel_icc_request(c, ENVMON_MSG_ENV_GET, NULL, 0, &resp, buf, sizeof buf,
                                          2000),
                         KEEL_ICC_OK);
        assert_int_equal(resp.type, ENVMON_MSG_ENV_DATA);
        assert_int_equal(envmon_env_decode(buf, resp.len, &e), ENVMON_PROTO_OK);
    }
    assert_true(e.seq > 0);
    assert_true(e.sensor_ok);
    /* the room started at 19 C with no noise; paced at 60x it has drifted little by the
     * first sample (2 s of virtual time) */
    assert_true(e.temp_mc > 17000 && e.temp_mc < 21000);

    /* the loader's death reaches the app as a hang-up, which is how keel-envmon knows to
     * re-open through keeld */
    assert_int_equal(kf_signal(&sim, SIGKILL), 0);
    (void)kf_wait_exit(&sim, 5000);
    uint8_t buf[128];
    keel_icc_msg resp;
    assert_int_equal(keel_icc_request(c, ENVMON_MSG_ENV_GET, NULL, 0, &resp, buf, sizeof buf,
                                      5000),
                     KEEL_ICC_ERR_PEER_GONE);
    keel_icc_close(c);
}

static void test_sim_refuses_to_run_without_an_end(void **state)
{
    (void)state;
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp), 0);
    close(sp[0]); /* keeld had nothing to send */
    char log[700];
    snprintf(log, sizeof log, "%s/sim-noend.log", kf_tmpdir("sim-keeld"));
    kf_proc sim;
    start_sim(&sim, sp[1], log);
    close(sp[1]);
    int st = kf_wait_exit(&sim, 10000);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 5);
    assert_int_equal(kf_wait_log(&sim, "no channel end from keeld", 1000), 0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        return 2;
    }
    sim_exe = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sim_takes_its_end_from_keeld_and_answers_the_app),
        cmocka_unit_test(test_sim_refuses_to_run_without_an_end),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    kf_cleanup();
    return rc;
}

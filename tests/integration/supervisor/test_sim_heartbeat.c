/* keel-sim's heartbeat is its firmware's: the environment monitor's sensor thread calls
 * board_heartbeat() once per 2 s sample, and the sim board turns that into a record on the
 * socket keeld hands the loader ($KEEL_APP_FD). keel-sim itself never beats. This test plays
 * keeld's part (the pairing and hand-over calls, a SEQPACKET socket as fd 3's stand-in) with
 * the real keel-sim, outside keeld's sandbox because this tree's binaries carry sanitizers.
 * Checked: beats arrive at the firmware's pace in virtual time (keel-sim at 60x: a sample every
 * ~33 ms of wall time, so many beats a second; at 1x, one per 2 s). argv[1] is keel-sim. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "keel/icc.h"
#include "keel/manifest.h"

static const char *sim_exe;
static const char *tmp;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Starts keel-sim at `speed` with its RT end on $KEEL_RT_CHANNEL_FD and, if beats is not NULL,
 * a heartbeat socket on $KEEL_APP_FD (our end in *beats). Returns the app's endpoint. */
static keel_icc *start_sim(kf_proc *p, const char *speed, int *beats, const char *tag)
{
    char path[2][600];
    snprintf(path[0], sizeof path[0], "%s/apps/envmon/app_manifest.json", kf_source_dir());
    snprintf(path[1], sizeof path[1], "%s/firmware/apps/envmon/app_manifest.json", kf_source_dir());
    keel_manifest app, rt;
    keel_manifest_error why;
    assert_int_equal(keel_manifest_load(path[0], &app, &why), KEEL_MANIFEST_OK);
    assert_int_equal(keel_manifest_load(path[1], &rt, &why), KEEL_MANIFEST_OK);
    keel_icc_end hl, rte;
    assert_int_equal(keel_icc_pair(&app, &rt, NULL, &hl, &rte, &why), KEEL_ICC_OK);
    int cp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, cp), 0);
    assert_int_equal(keel_icc_end_send(cp[0], &rte), KEEL_ICC_OK);
    keel_icc_end_close(&rte);
    close(cp[0]);
    char chan_fd[16], beat_fd[16], log[700];
    snprintf(chan_fd, sizeof chan_fd, "%d", cp[1]);
    assert_int_equal(setenv("KEEL_RT_CHANNEL_FD", chan_fd, 1), 0);
    int bp[2] = {-1, -1};
    if (beats) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, bp), 0);
        snprintf(beat_fd, sizeof beat_fd, "%d", bp[1]);
        assert_int_equal(setenv("KEEL_APP_FD", beat_fd, 1), 0);
        *beats = bp[0];
    } else {
        unsetenv("KEEL_APP_FD");
    }
    snprintf(log, sizeof log, "%s/%s.log", tmp, tag);
    char *argv[] = {(char *)sim_exe, "--speed", (char *)speed, "--noise", "0", NULL};
    assert_int_equal(kf_spawn(p, "keel-sim", argv, log), 0);
    unsetenv("KEEL_RT_CHANNEL_FD");
    unsetenv("KEEL_APP_FD");
    close(cp[1]);
    if (bp[1] >= 0) {
        close(bp[1]);
    }
    assert_int_equal(kf_wait_log(p, "channel end from keeld", 10000), 0);
    keel_icc *c;
    assert_int_equal(keel_icc_open(&hl, NULL, &c), KEEL_ICC_OK);
    return c;
}

static int beats_within(int fd, int ms)
{
    int n = 0;
    int64_t end = now_ms() + ms;
    for (int64_t left = ms; left > 0; left = end - now_ms()) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) == 1) {
            char b[16];
            if (recv(fd, b, sizeof b, MSG_DONTWAIT) > 0) {
                n++;
            }
        }
    }
    return n;
}

static void test_keel_sim_beats_at_its_firmwares_pace(void **state)
{
    (void)state;
    kf_proc fast, slow;
    int fast_beats, slow_beats;
    keel_icc *c1 = start_sim(&fast, "60", &fast_beats, "fast");
    keel_icc *c2 = start_sim(&slow, "1", &slow_beats, "slow");
    /* over 3 s of wall time: at 60x, 90 samples (beats rate-limited to one per 20 ms: >= 10
     * is far above what a 1x firmware could send); at 1x one at start, one at 2 s */
    int nf = beats_within(fast_beats, 3000);
    int ns = 0; /* the slow one's beats queued meanwhile */
    char b[16];
    while (recv(slow_beats, b, sizeof b, MSG_DONTWAIT) > 0) {
        ns++;
    }
    print_message("beats in 3 s: %d at 60x, %d at 1x\n", nf, ns);
    assert_true(nf >= 10);
    /* a loader beating on a timer of its own would send many; the firmware sent its samples */
    assert_true(ns >= 1 && ns <= 3);
    keel_icc_close(c1);
    keel_icc_close(c2);
    (void)kf_stop(&fast, 5000);
    (void)kf_stop(&slow, 5000);
    close(fast_beats);
    close(slow_beats);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        return 2;
    }
    sim_exe = argv[1];
    tmp = kf_tmpdir("sim-heartbeat");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keel_sim_beats_at_its_firmwares_pace),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    kf_cleanup();
    return rc;
}

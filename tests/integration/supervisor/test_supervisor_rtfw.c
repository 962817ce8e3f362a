/* Real-time firmware under keeld, with its channels and its own heartbeat. The firmware is the
 * echo (firmware/apps/icc_echo), whose watchdog thread beats (board_heartbeat) only while its
 * serving thread is waiting or making progress; each RT component is paired with an app
 * (apps/rtclient.c) that talks to it through keel_app_channel_open. Three RT components:
 *  - rtsim: the sim-port build, a host process whose beats go straight to keeld's socket;
 *  - rtqemu: the Cortex-M build under QEMU, loaded by keel-qemu (tools/keel-qemu), which
 *    bridges the channel into the guest and forwards the guest's heartbeat counter;
 *  - rtfault: the same under QEMU, made to HardFault.
 * Also rtsimfault: the sim-port echo made to execute an undefined instruction (SIGILL).
 * Checked: the app's echoes go through; a stalled serving thread (process and QEMU alive) is
 * "heartbeat missed", a crash report and a restart; a HardFault is QEMU's exit 122, a crash
 * report with the fault dump, and a restart; each time the app re-opens and is answered again.
 * Needs root (the sandbox) and the fw tree's fw_icc_echo.elf (QEMU cases). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "world.h"

static sv_world W;
static char out[65536];
static char fw_elf[700], env_elf[700];
static bool have_qemu;

static int copy(const char *from, const char *to)
{
    char cmd[4000];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && chmod 755 '%s'", from, to, to);
    return system(cmd) == 0 ? 0 : -1;
}

/* An RT package: `exe` (a path in the build tree) as bin/<its name>, optionally the firmware
 * image as fw.elf, and a manifest naming `partner` as its intercore partner. */
static int rt_package(const char *store, const char *name, const char *exe, const char *elf,
                      const char *partner, const char *json)
{
    char p[1200], bin[1200];
    snprintf(p, sizeof p, "%s/%s", store, name);
    if (mkdir(p, 0755) < 0) {
        return -1;
    }
    snprintf(p, sizeof p, "%s/%s/bin", store, name);
    if (mkdir(p, 0755) < 0) {
        return -1;
    }
    const char *base = strrchr(exe, '/') + 1;
    snprintf(bin, sizeof bin, "%s/%s/bin/%s", store, name, base);
    if (copy(exe, bin) < 0) {
        return -1;
    }
    if (elf) {
        snprintf(p, sizeof p, "%s/%s/fw.elf", store, name);
        if (copy(elf, p) < 0) {
            return -1;
        }
    }
    /* partner: one app's name, or two separated by a comma */
    char partner_ids[100], first[40];
    const char *comma = strchr(partner, ',');
    snprintf(first, sizeof first, "%.*s", comma ? (int)(comma - partner) : 39, partner);
    snprintf(partner_ids, sizeof partner_ids, "\"%s\"", sv_world_id(first));
    if (comma) {
        size_t n = strlen(partner_ids);
        snprintf(partner_ids + n, sizeof partner_ids - n, ", \"%s\"", sv_world_id(comma + 1));
    }
    snprintf(p, sizeof p, "%s/%s/app_manifest.json", store, name);
    FILE *f = fopen(p, "w");
    if (!f) {
        return -1;
    }
    fprintf(f,
            "{\"schema\": 1, \"kind\": \"rt\", \"id\": \"%s\", \"name\": \"%s\", "
            "\"version\": \"1.0.0\", \"exec\": \"bin/%s\", %s, \"capabilities\": "
            "{\"intercore\": [%s], \"limits\": {\"memory_mb\": 2048, \"processes\": 64}}}\n",
            sv_world_id(name), name, base, json, partner_ids);
    return fclose(f);
}

static int client_package(const char *store, const char *name, const char *rt, const char *action)
{
    char json[300];
    char rt_id[40];
    snprintf(rt_id, sizeof rt_id, "%s", sv_world_id(rt));
    snprintf(json, sizeof json,
             "\"args\": [\"%s\", \"%s\"], \"capabilities\": {\"intercore\": [\"%s\"]}", rt_id,
             action, rt_id);
    return sv_world_package(store, name, "sv_rtclient", json);
}

static int setup(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        return 0;
    }
    if (sv_world_init(&W, "supervisor-rtfw", "\"backoff_initial_ms\": 10") < 0) {
        return -1;
    }
    const char *st = sv_world_store(&W);
    char exe[700];
    snprintf(exe, sizeof exe, "%s/firmware/apps/icc_echo/fw_icc_echo_rt", kf_build_dir());
    if (rt_package(st, "rtsim", exe, NULL, "simclient", "\"heartbeat_ms\": 500") < 0 ||
        client_package(st, "simclient", "rtsim", "stall") < 0 ||
        rt_package(st, "rtsimfault", exe, NULL, "simfaultc", "\"heartbeat_ms\": 500") < 0 ||
        client_package(st, "simfaultc", "rtsimfault", "fault") < 0) {
        return -1;
    }
    snprintf(fw_elf, sizeof fw_elf, "%s/firmware/apps/icc_echo/fw_icc_echo.elf", KEEL_FW_DIR);
    snprintf(env_elf, sizeof env_elf, "%s/firmware/apps/envmon_qemu/fw_envmon_qemu.elf",
             KEEL_FW_DIR);
    have_qemu = access(fw_elf, R_OK) == 0 && access(env_elf, R_OK) == 0;
    if (have_qemu) {
        snprintf(exe, sizeof exe, "%s/bin/keel-qemu", kf_build_dir());
        /* QEMU boots in well under a second here; keeld's start grace covers it anyway */
        if (rt_package(st, "rtqemu", exe, fw_elf, "qemuclient",
                       "\"heartbeat_ms\": 1000, \"args\": [\"/app/fw.elf\"]") < 0 ||
            client_package(st, "qemuclient", "rtqemu", "stall") < 0 ||
            rt_package(st, "rtfault", exe, fw_elf, "faultclient",
                       "\"heartbeat_ms\": 1000, \"args\": [\"/app/fw.elf\"]") < 0 ||
            client_package(st, "faultclient", "rtfault", "fault") < 0 ||
            /* envmon samples every 2 s and beats once per sample */
            rt_package(st, "rtenv", exe, env_elf, "envclient",
                       "\"heartbeat_ms\": 5000, \"args\": [\"/app/fw.elf\"]") < 0 ||
            client_package(st, "envclient", "rtenv", "env") < 0 ||
            /* one firmware, two apps: two channels in the table, one doorbell UART */
            rt_package(st, "rtmulti", exe, fw_elf, "multia,multib",
                       "\"heartbeat_ms\": 1000, \"args\": [\"/app/fw.elf\"]") < 0 ||
            client_package(st, "multia", "rtmulti", "none") < 0 ||
            client_package(st, "multib", "rtmulti", "none") < 0) {
            return -1;
        }
    }
    return sv_world_start(&W);
}

static int teardown(void **state)
{
    (void)state;
    if (geteuid() == 0) {
        kf_stop(&W.keeld, 5000);
    }
    return 0;
}

#define NEED_ROOT()                                                                                \
    do {                                                                                           \
        if (geteuid() != 0) {                                                                      \
            print_message("skipped: the sandbox needs root\n");                                    \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* The crash report names why; the RT component boots again after it; the app re-opens. */
static void expect_recovery(const char *rt, const char *client, const char *why, int timeout_ms)
{
    char req[100];
    snprintf(req, sizeof req, "crashes %s 1", rt);
    if (!sv_world_wait(&W, req, why, timeout_ms)) {
        sv_world_ctl(&W, req, out, sizeof out);
        print_message("%s\n", out);
        snprintf(req, sizeof req, "logs %s 60", rt);
        sv_world_ctl(&W, req, out, sizeof out);
        print_message("%s\n", out);
        fail_msg("%s: no crash report saying \"%s\"", rt, why);
    }
    snprintf(req, sizeof req, "logs %s 200", rt);
    assert_true(sv_world_wait(&W, req, "crash report 1", 5000));
    snprintf(req, sizeof req, "logs %s 200", client);
    assert_true(sv_world_wait(&W, req, "rtclient: peer gone; re-opening", 10000));
    /* an app that re-opens while keeld is still reaping the old loader may get the old end
     * once more: it sees that peer gone at once and re-opens again (open 3) */
    if (!sv_world_wait(&W, req, "rtclient: echo ok after reopen (open ", 20000)) {
        sv_world_ctl(&W, req, out, sizeof out);
        print_message("%s\n", out);
        fail();
    }
    assert_true(kf_running(&W.keeld));
}

static void test_sim_firmware_that_stops_beating_is_restarted_and_answers_again(void **state)
{
    (void)state;
    NEED_ROOT();
    assert_true(sv_world_wait(&W, "logs simclient 50", "rtclient: echo ok (open 1)", 15000));
    assert_true(
        sv_world_wait(&W, "logs simclient 50", "rtclient: sent stall -> KEEL_ICC_OK", 5000));
    assert_true(sv_world_wait(&W, "logs rtsim 50", "icc_echo: stalling", 5000));
    expect_recovery("rtsim", "simclient", "heartbeat missed", 10000);
    assert_int_equal(sv_world_ctl(&W, "crashes rtsim 1", out, sizeof out), 0);
    assert_non_null(strstr(out, "icc_echo: stalling")); /* the last console lines */
}

static void test_sim_firmware_fault_is_a_crash_report_and_a_restart(void **state)
{
    (void)state;
    NEED_ROOT();
    assert_true(
        sv_world_wait(&W, "logs simfaultc 50", "rtclient: sent fault -> KEEL_ICC_OK", 15000));
    expect_recovery("rtsimfault", "simfaultc", "killed by SIGILL", 10000);
    assert_int_equal(sv_world_ctl(&W, "crashes rtsimfault 1", out, sizeof out), 0);
    assert_non_null(strstr(out, "icc_echo: faulting"));
    assert_null(strstr(out, "heartbeat missed"));
}

static void test_qemu_firmware_that_stops_beating_is_restarted_and_answers_again(void **state)
{
    (void)state;
    NEED_ROOT();
    if (!have_qemu) {
        print_message("skipped: %s missing (make fw)\n", fw_elf);
        skip();
    }
    assert_true(sv_world_wait(&W, "logs rtqemu 50", "1 channel end handed to the RT loader", 5000));
    assert_true(sv_world_wait(&W, "logs qemuclient 50", "rtclient: echo ok (open 1)", 20000));
    assert_true(sv_world_wait(&W, "logs rtqemu 50", "icc_echo: stalling", 10000));
    expect_recovery("rtqemu", "qemuclient", "heartbeat missed", 15000);
}

static void test_qemu_firmware_hardfault_is_a_crash_report_and_a_restart(void **state)
{
    (void)state;
    NEED_ROOT();
    if (!have_qemu) {
        print_message("skipped: %s missing (make fw)\n", fw_elf);
        skip();
    }
    assert_true(
        sv_world_wait(&W, "logs faultclient 50", "rtclient: sent fault -> KEEL_ICC_OK", 20000));
    expect_recovery("rtfault", "faultclient", "exited with status 122", 15000);
    assert_int_equal(sv_world_ctl(&W, "crashes rtfault 1", out, sizeof out), 0);
    assert_non_null(strstr(out, "thread: icc_echo")); /* the firmware's fault dump */
    assert_null(strstr(out, "heartbeat missed"));
}

static void test_envmon_rt_firmware_on_qemu_answers_env_get(void **state)
{
    (void)state;
    NEED_ROOT();
    if (!have_qemu) {
        print_message("skipped: %s missing (make fw)\n", env_elf);
        skip();
    }
    assert_true(
        sv_world_wait(&W, "logs rtenv 50", "envmon: RT firmware running on channel 0", 20000));
    if (!sv_world_wait(&W, "logs envclient 50", "rtclient: env seq=", 20000)) {
        sv_world_ctl(&W, "logs envclient 50", out, sizeof out);
        print_message("%s\n", out);
        fail();
    }
    sv_world_ctl(&W, "logs envclient 50", out, sizeof out);
    /* the synthetic room: 21.5 C and up, 45 %, a good read */
    const char *line = strstr(out, "rtclient: env seq=");
    unsigned seq, hum, ok;
    int temp;
    assert_int_equal(sscanf(line, "rtclient: env seq=%u temp_mc=%d humidity_cp=%u sensor_ok=%u",
                            &seq, &temp, &hum, &ok),
                     4);
    assert_true(seq >= 1);
    assert_true(temp >= 21500 && temp < 22000);
    assert_int_equal(hum, 4500);
    assert_int_equal(ok, 1);
    assert_null(strstr(out, "env answer bad"));
    /* beating once per 2 s sample keeps it within its 5 s heartbeat */
    assert_int_equal(sv_world_ctl(&W, "crashes rtenv 1", out, sizeof out) < 0, 0);
    assert_null(strstr(out, "heartbeat missed"));
}

static void test_qemu_firmware_serves_two_apps_on_two_channels(void **state)
{
    (void)state;
    NEED_ROOT();
    if (!have_qemu) {
        print_message("skipped: %s missing (make fw)\n", fw_elf);
        skip();
    }
    assert_true(
        sv_world_wait(&W, "logs rtmulti 50", "2 channel ends handed to the RT loader", 5000));
    assert_true(
        sv_world_wait(&W, "logs rtmulti 50", "icc_echo: attached (channel table, 2", 20000));
    /* both apps get their echoes (the client logs its first three), over their own channel */
    for (int i = 0; i < 2; i++) {
        const char *req = i ? "logs multib 50" : "logs multia 50";
        int n = 0;
        for (int tries = 0; tries < 1000 && n < 3; tries++) { /* polls with a 20 s deadline */
            assert_true(sv_world_ctl(&W, req, out, sizeof out) >= 0);
            n = 0;
            for (const char *p = out; (p = strstr(p, "rtclient: echo ok (open 1)")) != NULL; p++) {
                n++;
            }
            if (n < 3) {
                usleep(20000);
            }
        }
        if (n < 3) {
            print_message("%s\n", out);
            fail_msg("%s: %d echoes", req, n);
        }
        assert_null(strstr(out, "WRONG"));
    }
    assert_int_equal(sv_world_ctl(&W, "crashes rtmulti 1", out, sizeof out) < 0, 0);
    assert_null(strstr(out, "heartbeat missed"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sim_firmware_that_stops_beating_is_restarted_and_answers_again),
        cmocka_unit_test(test_sim_firmware_fault_is_a_crash_report_and_a_restart),
        cmocka_unit_test(test_qemu_firmware_that_stops_beating_is_restarted_and_answers_again),
        cmocka_unit_test(test_qemu_firmware_hardfault_is_a_crash_report_and_a_restart),
        cmocka_unit_test(test_envmon_rt_firmware_on_qemu_answers_env_get),
        cmocka_unit_test(test_qemu_firmware_serves_two_apps_on_two_channels),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* The sensor update profile over real MODBUS TCP, as a user runs it: keel-sim-sensor (its flash
 * in a file) and `keel image push`, each its own process.
 *
 * - a push updates the sensor and it reports the new version over FC 43/14;
 * - killing the sensor mid-transfer (kill -9: a power cut) and starting it again: the push
 *   resumes from the record the sensor reports and resends at most one erase block;
 * - firmware that does not start: the sensor falls back and the push says so (exit 1);
 * - an image signed by an untrusted key never leaves the gateway (exit 5);
 * - the same push over RTU framing on TCP, and on a serial line (a socat pty pair).
 *
 * argv[1] is keel, argv[2] keel-sim-sensor.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "fixture.h"
#include "keel/image.h"

#define COMPONENT "5e4e5e4e-0000-4000-8000-000000000001"
#define PAYLOAD 60000u

static const char *keel, *sim;
static char dir[512], pubp[700], flash[700];
static keel_image_seckey sec, other_sec;
static kf_proc sensor, push;
static uint16_t port;
static bool rtu; /* the sensor speaks RTU framing (with CRC) over TCP */

static char *path(const char *name)
{
    static char bufs[8][700];
    static int i;
    char *b = bufs[i++ % 8];
    snprintf(b, 700, "%s/%s", dir, name);
    return b;
}

static void make(const char *name, uint16_t major, const char *head, const keel_image_seckey *k)
{
    uint8_t *p = malloc(PAYLOAD);
    for (uint32_t i = 0; i < PAYLOAD; i++) {
        p[i] = (uint8_t)(i * 11u + major);
    }
    memcpy(p, head, strlen(head));
    keel_image_header h = {.version = {major, 0, 0}, .security_counter = major,
                           .payload_size = PAYLOAD};
    assert_true(keel_image_uuid_parse(COMPONENT, h.component));
    size_t cap = keel_image_size(PAYLOAD), n;
    uint8_t *img = malloc(cap);
    assert_int_equal(keel_image_sign(&h, p, k, img, cap, &n), KEEL_IMAGE_OK);
    keel_image_error err;
    assert_int_equal(keel_image_write_file(path(name), img, n, &err), KEEL_IMAGE_OK);
    free(p);
    free(img);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s", kf_tmpdir("sensor-modbus"));
    keel_image_pubkey pub, other;
    assert_int_equal(keel_image_keygen(&pub, &sec), KEEL_IMAGE_OK);
    assert_int_equal(keel_image_keygen(&other, &other_sec), KEEL_IMAGE_OK);
    keel_image_error err;
    snprintf(pubp, sizeof pubp, "%s", path("release.pub"));
    assert_int_equal(keel_image_key_save(pubp, path("release.sec"), &pub, &sec, &err),
                     KEEL_IMAGE_OK);
    snprintf(flash, sizeof flash, "%s", path("flash.bin"));
    make("v1.kimg", 1, "KEEL-SENSOR-FW one", &sec);
    make("v2.kimg", 2, "KEEL-SENSOR-FW two", &sec);
    make("v3.kimg", 3, "this one hangs at start", &sec);
    make("evil.kimg", 9, "KEEL-SENSOR-FW evil", &other_sec);
    return 0;
}

/* Runs a program to completion; returns its exit code, output in `out`. */
static int run(char *const argv[], char *out, size_t cap)
{
    static kf_proc p;
    char *log = path("run.log");
    remove(log);
    assert_int_equal(kf_spawn(&p, "run", argv, log), 0);
    int st = kf_wait_exit(&p, 60000);
    assert_true(st != -1 && WIFEXITED(st));
    FILE *f = fopen(log, "r");
    size_t n = f ? fread(out, 1, cap - 1, f) : 0;
    out[n] = '\0';
    if (f) {
        fclose(f);
    }
    return WEXITSTATUS(st);
}

static void provision(void)
{
    char out[1024];
    char *argv[] = {(char *)sim, "--flash", flash, "--provision", path("v1.kimg"), "--slot-size",
                    "131072", NULL};
    assert_int_equal(run(argv, out, sizeof out), 0);
}

/* Starts the sensor on `port` (chosen on the first start, kept across restarts). */
static void start_sensor(const char *log)
{
    char p[16];
    if (!port) {
        port = kf_free_port();
    }
    snprintf(p, sizeof p, "%u", port);
    char *argv[] = {(char *)sim, "--flash", flash, "--key", pubp, "--component", COMPONENT,
                    "--port", p, "--slot-size", "131072", rtu ? "--rtu-over-tcp" : NULL, NULL};
    assert_int_equal(kf_spawn(&sensor, "sensor", argv, path(log)), 0);
    if (kf_wait_tcp(&sensor, port, 10000) != 0) {
        kf_dump_log(&sensor, 20);
        fail_msg("the sensor did not start");
    }
}

static int teardown_each(void **state)
{
    (void)state;
    if (kf_running(&sensor)) {
        kf_stop(&sensor, 2000);
    }
    if (kf_running(&push)) {
        kf_stop(&push, 2000);
    }
    return 0;
}

static int fresh(void **state)
{
    (void)state;
    provision();
    start_sensor("sensor.log");
    return 0;
}

static char *sensor_addr(void)
{
    static char a[64];
    snprintf(a, sizeof a, "127.0.0.1:%u", port);
    return a;
}

static void test_sensor_push_over_modbus_runs_v2(void **state)
{
    (void)state;
    char out[8192];
    char *argv[] = {(char *)keel, "image", "push", "--key", pubp, "--sensor", sensor_addr(),
                    path("v2.kimg"), NULL};
    int rc = run(argv, out, sizeof out);
    if (rc != 0) {
        fail_msg("push failed (%d): %s", rc, out);
    }
    assert_non_null(strstr(out, "sensor runs 2.0.0"));
    assert_int_equal(kf_wait_log(&sensor, "running 2.0.0", 10000), 0);
}

static void test_sensor_killed_mid_transfer_push_resumes(void **state)
{
    (void)state;
    char *argv[] = {(char *)keel, "image", "push", "--key", pubp, "--sensor", sensor_addr(),
                    path("v2.kimg"), NULL};
    assert_int_equal(kf_spawn(&push, "push", argv, path("push.log")), 0);
    /* Pull the plug once the transfer is well under way. */
    if (kf_wait_log(&push, "pushed  40%", 30000) != 0) {
        kf_dump_log(&push, 20);
        fail_msg("the push did not get under way");
    }
    kf_signal(&sensor, SIGKILL);
    assert_true(kf_wait_exit(&sensor, 10000) != -1);
    start_sensor("sensor2.log");
    int st = kf_wait_exit(&push, 60000);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        kf_dump_log(&push, 30);
        fail_msg("the push did not finish after the sensor came back");
    }
    FILE *f = fopen(path("push.log"), "r");
    char out[8192];
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    fclose(f);
    assert_non_null(strstr(out, "sensor runs 2.0.0"));
    const char *sent = strstr(out, "bytes sent");
    assert_non_null(sent);
    unsigned long long bytes = strtoull(strstr(out, "pushed 2.0.0: ") + 14, NULL, 10);
    size_t image = keel_image_size(PAYLOAD);
    printf("# image %zu bytes, sent %llu across a power cut\n", image, bytes);
    assert_true(bytes >= image);
    assert_true(bytes <= image + 1 + 1024 + 240); /* one erase block + one request again */
    assert_non_null(strstr(out, "unanswered"));
    assert_null(strstr(out, "(0 unanswered"));
}

static void test_sensor_firmware_not_starting_falls_back(void **state)
{
    (void)state;
    char out[8192];
    char *argv[] = {(char *)keel, "image", "push", "--key", pubp, "--sensor", sensor_addr(),
                    path("v3.kimg"), NULL};
    assert_int_equal(run(argv, out, sizeof out), 1);
    assert_non_null(strstr(out, "fell back"));
    assert_non_null(strstr(out, "runs 1.0.0"));
}

static void test_sensor_push_rtu_framing_runs_v2(void **state)
{
    (void)state;
    /* The same over RTU framing (as on RS485, CRC-16 and all), carried over TCP. */
    kf_stop(&sensor, 2000);
    rtu = true;
    start_sensor("sensor-rtu.log");
    rtu = false;
    char out[8192];
    char *argv[] = {(char *)keel, "image", "push", "--key", pubp, "--sensor", sensor_addr(),
                    "--rtu-over-tcp", "--unit", "1", path("v2.kimg"), NULL};
    int rc = run(argv, out, sizeof out);
    if (rc != 0) {
        fail_msg("push over RTU failed (%d): %s", rc, out);
    }
    assert_non_null(strstr(out, "sensor runs 2.0.0"));
}

static void test_sensor_push_serial_line_runs_v2(void **state)
{
    (void)state;
    /* RTU on a serial line: a socat pty pair stands for the RS485 bus (8N2; a pty has no
     * parity). The sensor keeps its end open across its restart, as a wired UART would. */
    kf_stop(&sensor, 2000);
    static kf_proc socat;
    char pa[800], pb[800], a[700], b[700];
    snprintf(a, sizeof a, "%s", path("pty-sensor"));
    snprintf(b, sizeof b, "%s", path("pty-gateway"));
    snprintf(pa, sizeof pa, "pty,raw,echo=0,link=%s", a);
    snprintf(pb, sizeof pb, "pty,raw,echo=0,link=%s", b);
    char *sargv[] = {"socat", pa, pb, NULL};
    assert_int_equal(kf_spawn(&socat, "socat", sargv, path("socat.log")), 0);
    assert_int_equal(kf_wait_file(&socat, a, 10000), 0);
    assert_int_equal(kf_wait_file(&socat, b, 10000), 0);
    char *argv[] = {(char *)sim, "--flash", flash, "--key", pubp, "--component", COMPONENT,
                    "--device", a, "--baud", "115200", "--parity", "N", "--slot-size", "131072",
                    NULL};
    assert_int_equal(kf_spawn(&sensor, "sensor", argv, path("sensor-serial.log")), 0);
    assert_int_equal(kf_wait_log(&sensor, "listening on the serial line", 10000), 0);
    char out[8192];
    char *pargv[] = {(char *)keel, "image", "push", "--key", pubp, "--serial", b, "--baud",
                     "115200", "--parity", "N", path("v2.kimg"), NULL};
    int rc = run(pargv, out, sizeof out);
    if (rc != 0) {
        kf_dump_log(&sensor, 20);
        fail_msg("push over the serial line failed (%d): %s", rc, out);
    }
    assert_non_null(strstr(out, "sensor runs 2.0.0"));
    kf_stop(&sensor, 2000);
    kf_stop(&socat, 2000);
}

static void test_sensor_untrusted_image_never_sent(void **state)
{
    (void)state;
    char out[8192];
    char *argv[] = {(char *)keel, "image", "push", "--key", pubp, "--sensor", sensor_addr(),
                    path("evil.kimg"), NULL};
    assert_int_equal(run(argv, out, sizeof out), 5);
    assert_non_null(strstr(out, "not trusted"));
    assert_null(strstr(out, "pushed"));
}

#define T(f) cmocka_unit_test_setup_teardown(f, fresh, teardown_each)
int main(int argc, char **argv)
{
    if (argc < 3) {
        return 2;
    }
    keel = argv[1];
    sim = argv[2];
    const struct CMUnitTest tests[] = {
        T(test_sensor_push_over_modbus_runs_v2),
        T(test_sensor_killed_mid_transfer_push_resumes),
        T(test_sensor_firmware_not_starting_falls_back),
        T(test_sensor_untrusted_image_never_sent),
        T(test_sensor_push_rtu_framing_runs_v2),
        T(test_sensor_push_serial_line_runs_v2),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}

/* The sensor update profile against software Keel did not write: pymodbus (Debian's
 * python3-pymodbus) updates keel-sim-sensor by following docs/updates.md, FC 16, 21, 3, 6 and
 * 43/14, with no Keel code on the gateway side. argv[1] is keel-sim-sensor. */
#include <setjmp.h>
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

#define COMPONENT "5e4e5e4e-0000-4000-8000-0000000000b0"

static const char *sim;
static char dir[512];

static char *path(const char *name)
{
    static char bufs[8][700];
    static int i;
    char *b = bufs[i++ % 8];
    snprintf(b, 700, "%s/%s", dir, name);
    return b;
}

static void make(const char *name, uint16_t major, const keel_image_seckey *k)
{
    uint32_t size = 45001; /* odd: the last record is padded */
    uint8_t *p = malloc(size);
    for (uint32_t i = 0; i < size; i++) {
        p[i] = (uint8_t)(i * 5u + major);
    }
    memcpy(p, "KEEL-SENSOR-FW", 14);
    keel_image_header h = {.version = {major, 0, 0}, .security_counter = major,
                           .payload_size = size};
    assert_true(keel_image_uuid_parse(COMPONENT, h.component));
    size_t cap = keel_image_size(size), n;
    uint8_t *img = malloc(cap);
    assert_int_equal(keel_image_sign(&h, p, k, img, cap, &n), KEEL_IMAGE_OK);
    keel_image_error err;
    assert_int_equal(keel_image_write_file(path(name), img, n, &err), KEEL_IMAGE_OK);
    free(p);
    free(img);
}

static void test_pymodbus_gateway_updates_keel_sensor(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s", kf_tmpdir("peer-update"));
    keel_image_pubkey pub;
    keel_image_seckey sec;
    keel_image_error err;
    assert_int_equal(keel_image_keygen(&pub, &sec), KEEL_IMAGE_OK);
    assert_int_equal(keel_image_key_save(path("k.pub"), path("k.sec"), &pub, &sec, &err),
                     KEEL_IMAGE_OK);
    make("v1.kimg", 1, &sec);
    make("v2.kimg", 2, &sec);

    static kf_proc prov, sensor, py;
    char *pargv[] = {(char *)sim, "--flash", path("flash.bin"), "--provision", path("v1.kimg"),
                     NULL};
    assert_int_equal(kf_spawn(&prov, "provision", pargv, NULL), 0);
    int st = kf_wait_exit(&prov, 20000);
    assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    uint16_t port = kf_free_port();
    char ps[16];
    snprintf(ps, sizeof ps, "%u", port);
    char *sargv[] = {(char *)sim, "--flash", path("flash.bin"), "--key", path("k.pub"),
                     "--component", COMPONENT, "--port", ps, NULL};
    assert_int_equal(kf_spawn(&sensor, "sensor", sargv, NULL), 0);
    assert_int_equal(kf_wait_tcp(&sensor, port, 10000), 0);

    char script[600];
    snprintf(script, sizeof script, "%s/tests/peers/update/pymodbus_update.py", kf_source_dir());
    char *yargv[] = {"/usr/bin/python3", script, ps, path("v2.kimg"), "2.0.0", NULL};
    assert_int_equal(kf_spawn(&py, "pymodbus", yargv, NULL), 0);
    st = kf_wait_exit(&py, 60000);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        kf_dump_log(&py, 20);
        kf_dump_log(&sensor, 20);
        fail_msg("pymodbus could not update the sensor");
    }
    assert_int_equal(kf_wait_log(&py, "sensor runs 2.0.0", 1000), 0);
    assert_int_equal(kf_wait_log(&sensor, "running 2.0.0", 5000), 0);
    kf_stop(&sensor, 2000);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        return 2;
    }
    sim = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pymodbus_gateway_updates_keel_sensor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

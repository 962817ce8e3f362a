/* The simulated world with the environment monitor firmware, in virtual time: the sensor
 * thread's 2-second period, the service thread's answers over a real intercore channel (the
 * test plays the connected core with the ring core and the eventfd doorbells), the HVAC
 * actuator driving the room, the closed loop with the thermostat, and the room persisting
 * across a restart of the world. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "envmon_proto.h"
#include "hvac_control.h"
#include "keel/icc.h"
#include "keel/manifest.h"
#include "world.h"

#define SEC 1000000ull

/* The connected core's side of the channel. */
static keel_icc_end hl_end;
static void *hl_map;
static size_t hl_len;
static keel_icc_ring hl;
static uint32_t next_corr = 1;

static void load(const char *rel, keel_manifest *m)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", getenv("KEEL_SOURCE_DIR"), rel);
    keel_manifest_error err;
    assert_int_equal(keel_manifest_load(path, m, &err), KEEL_MANIFEST_OK);
}

static void world_with_channel(const world_config *wc)
{
    keel_manifest app, rt;
    load("apps/envmon/app_manifest.json", &app);
    load("firmware/apps/envmon/app_manifest.json", &rt);
    keel_icc_end rt_end;
    keel_icc_config cfg = {.ring_bytes = 16384, .max_msg = 1024};
    assert_int_equal(keel_icc_pair(&app, &rt, &cfg, &hl_end, &rt_end, NULL), KEEL_ICC_OK);
    struct stat st;
    assert_int_equal(fstat(hl_end.mem, &st), 0);
    hl_len = (size_t)st.st_size;
    hl_map = mmap(NULL, hl_len, PROT_READ | PROT_WRITE, MAP_SHARED, hl_end.mem, 0);
    assert_true(hl_map != MAP_FAILED);
    assert_int_equal(keel_icc_ring_attach(&hl, hl_map, hl_len, hl_end.side), KEEL_ICC_OK);
    assert_int_equal(world_create(wc, &rt_end), WORLD_OK);
    assert_int_equal(rt_end.mem, -1); /* the world took the RT end */
    world_run_until_us(SEC);          /* the firmware boots and takes its first sample */
}

static int teardown(void **state)
{
    (void)state;
    world_destroy();
    if (hl_map) {
        munmap(hl_map, hl_len);
        hl_map = NULL;
        keel_icc_end_close(&hl_end);
    }
    return 0;
}

/* Sends a request, lets the world run 20 ms, returns the reply's payload length. */
static size_t request(uint16_t type, const void *data, size_t len, uint16_t want_type, uint8_t *out,
                      size_t cap)
{
    uint32_t corr = next_corr++;
    bool ring = false;
    assert_int_equal(
        keel_icc_ring_send(&hl, type, KEEL_ICC_F_REQUEST, corr, data, len, NULL, &ring),
        KEEL_ICC_OK);
    if (ring) {
        uint64_t one = 1;
        assert_int_equal(write(hl_end.bell_out, &one, sizeof one), (ssize_t)sizeof one);
    }
    world_run_until_us(world_now_us() + 20000);
    keel_icc_msg m;
    assert_int_equal(keel_icc_ring_recv(&hl, &m, out, cap, &ring), KEEL_ICC_OK);
    assert_int_equal(m.type, want_type);
    assert_int_equal(m.corr, corr);
    assert_true(m.flags & KEEL_ICC_F_REPLY);
    return m.len;
}

static envmon_env get_env(void)
{
    uint8_t buf[64];
    size_t n = request(ENVMON_MSG_ENV_GET, NULL, 0, ENVMON_MSG_ENV_DATA, buf, sizeof buf);
    envmon_env e;
    assert_int_equal(envmon_env_decode(buf, n, &e), ENVMON_PROTO_OK);
    return e;
}

static envmon_hvac_ack set_hvac(uint8_t mode)
{
    uint8_t req[ENVMON_HVAC_SET_BYTES], buf[64];
    envmon_hvac_set_encode(mode, req);
    size_t n = request(ENVMON_MSG_HVAC_SET, req, sizeof req, ENVMON_MSG_HVAC_ACK, buf, sizeof buf);
    envmon_hvac_ack a;
    assert_int_equal(envmon_hvac_ack_decode(buf, n, &a), ENVMON_PROTO_OK);
    return a;
}

static void test_sensor_thread_samples_every_two_seconds(void **state)
{
    (void)state;
    world_config wc = world_config_default();
    assert_int_equal(world_create(&wc, NULL), WORLD_OK);
    world_run_until_us(60 * SEC + 1000);
    world_status s;
    world_status_get(&s);
    /* one sample at start, then one per 2 s beat: 0, 2, ..., 60 */
    assert_int_equal(s.latest.seq, 31);
    assert_int_equal(s.latest.time_us / 1000, 60 * 1000 + 0); /* taken at 60 s (+ read time) */
    assert_true(s.latest.sensor_ok);
    assert_int_equal(s.latest.temp_mc,
                     (int32_t)(s.room_temp_c * 1000.0 + (s.room_temp_c > 0 ? 0.5 : -0.5)));
}

static void test_env_get_answers_with_latest_sample(void **state)
{
    (void)state;
    world_config wc = world_config_default();
    wc.start_temp_c = 19.5;
    world_with_channel(&wc);
    world_run_until_us(5 * SEC);
    envmon_env e = get_env();
    assert_int_equal(e.seq, 3); /* 0, 2, 4 s */
    assert_true(e.temp_mc > 19000 && e.temp_mc <= 19500);
    assert_true(e.humidity_cp > 4000 && e.humidity_cp < 6000);
    assert_true(e.pressure_pa > 100000 && e.pressure_pa < 103000);
    assert_int_equal(e.hvac, ENVMON_HVAC_OFF);
    world_status s;
    world_status_get(&s);
    assert_int_equal(s.requests, 1);
    assert_int_equal(s.bad_requests, 0);
}

static void test_hvac_heating_warms_the_room(void **state)
{
    (void)state;
    world_config wc = world_config_default();
    world_with_channel(&wc);
    envmon_env before = get_env();
    envmon_hvac_ack a = set_hvac(ENVMON_HVAC_HEATING);
    assert_int_equal(a.status, 0);
    assert_int_equal(a.hvac, ENVMON_HVAC_HEATING);
    world_run_until_us(world_now_us() + 600 * SEC);
    envmon_env after = get_env();
    assert_int_equal(after.hvac, ENVMON_HVAC_HEATING);
    /* ten minutes of heating: a couple of degrees, as a real unit would */
    assert_true(after.temp_mc - before.temp_mc > 1500);
    assert_true(after.temp_mc - before.temp_mc < 5000);
    a = set_hvac(ENVMON_HVAC_OFF);
    world_run_until_us(world_now_us() + 600 * SEC);
    envmon_env cooled = get_env();
    assert_true(cooled.temp_mc < after.temp_mc); /* the outside pulls it back */
    world_status s;
    world_status_get(&s);
    assert_int_equal(s.hvac_changes, 2);
}

static void test_hvac_set_unknown_mode_is_refused(void **state)
{
    (void)state;
    world_config wc = world_config_default();
    world_with_channel(&wc);
    assert_int_equal(set_hvac(ENVMON_HVAC_COOLING).status, 0);
    envmon_hvac_ack a = set_hvac(7);
    assert_int_equal(a.status, 1);
    assert_int_equal(a.hvac, ENVMON_HVAC_COOLING); /* unchanged */
    /* a message that is not a request is dropped, and the next request still answered */
    bool ring;
    assert_int_equal(keel_icc_ring_send(&hl, ENVMON_MSG_ENV_GET, 0, 0, NULL, 0, NULL, &ring),
                     KEEL_ICC_OK);
    if (ring) {
        uint64_t one = 1;
        assert_int_equal(write(hl_end.bell_out, &one, sizeof one), (ssize_t)sizeof one);
    }
    envmon_env e = get_env();
    assert_int_equal(e.hvac, ENVMON_HVAC_COOLING);
    world_status s;
    world_status_get(&s);
    assert_int_equal(s.bad_requests, 2);
    assert_int_equal(s.chan_err, KEEL_ICC_OK);
}

static void test_closed_loop_settles_at_setpoint(void **state)
{
    (void)state;
    world_config wc = world_config_default();
    wc.sensor_noise_c = 0.05;
    world_with_channel(&wc);
    hvac_control c;
    hvac_control_init(&c, 0.25);
    assert_true(hvac_control_set_target(&c, 22.0));
    hvac_mode applied = HVAC_OFF;
    double worst_late = 0.0;
    for (uint64_t t = 2 * SEC; t <= 60 * 60 * SEC; t += 2 * SEC) {
        world_run_until_us(t);
        envmon_env e = get_env();
        hvac_mode m = hvac_control_update(&c, e.temp_mc / 1000.0);
        if (m != applied) {
            assert_int_equal(set_hvac((uint8_t)m).hvac, (uint8_t)m);
            applied = m;
        }
        world_status s;
        world_status_get(&s);
        if (t > 30 * 60 * SEC) {
            double d = s.room_temp_c > 22.0 ? s.room_temp_c - 22.0 : 22.0 - s.room_temp_c;
            worst_late = d > worst_late ? d : worst_late;
        }
    }
    /* from 18 °C the room reaches 22 °C within half an hour and then stays in the band */
    assert_true(worst_late < 0.5);
    world_status s;
    world_status_get(&s);
    assert_true(s.hvac_changes >= 3); /* it cycles, rather than heating for ever */
}

static void test_room_state_survives_a_restart(void **state)
{
    (void)state;
    char dir[] = "/tmp/keel-world-XXXXXX";
    assert_non_null(mkdtemp(dir));
    world_config wc = world_config_default();
    wc.state_dir = dir;
    wc.start_temp_c = 26.0;
    assert_int_equal(world_create(&wc, NULL), WORLD_OK);
    world_run_until_us(60 * SEC);
    world_status s1;
    world_status_get(&s1);
    world_destroy();        /* saves */
    wc.start_temp_c = 10.0; /* ignored: the saved room wins */
    assert_int_equal(world_create(&wc, NULL), WORLD_OK);
    world_status s2;
    world_status_get(&s2);
    assert_true(s2.room_temp_c > s1.room_temp_c - 0.01 && s2.room_temp_c < s1.room_temp_c + 0.01);
    world_destroy();
    char path[256];
    snprintf(path, sizeof path, "%s/room.state", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_sensor_thread_samples_every_two_seconds, teardown),
        cmocka_unit_test_teardown(test_env_get_answers_with_latest_sample, teardown),
        cmocka_unit_test_teardown(test_hvac_heating_warms_the_room, teardown),
        cmocka_unit_test_teardown(test_hvac_set_unknown_mode_is_refused, teardown),
        cmocka_unit_test_teardown(test_closed_loop_settles_at_setpoint, teardown),
        cmocka_unit_test_teardown(test_room_state_survives_a_restart, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

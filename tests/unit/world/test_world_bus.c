/* The world's RS485 bus in virtual time (unit.sim_world_bus): the gateway's channel to the RT
 * core's bridge, the firmware's line driver and the two sensors on the bit-exact bus. The
 * test plays the gateway at the ring level (no blocking: the world runs in this process), and
 * checks what the sensors answer against the world's own state, the line timing against the
 * baud rate, and that the environment service keeps answering while the bus is busy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bridge_proto.h"
#include "envmon_proto.h"
#include "fieldbus.h"
#include "keel/icc.h"
#include "keel/manifest.h"
#include "keel/modbus.h"
#include "world.h"

#define SEC 1000000ull

/* The connected core's side of one channel. */
typedef struct side {
    keel_icc_end end;
    void *map;
    size_t len;
    keel_icc_ring ring;
} side;

static side env, gw;
static fieldbus *bus;
static uint32_t next_corr = 1;

static void load(const char *rel, keel_manifest *m)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", getenv("KEEL_SOURCE_DIR"), rel);
    keel_manifest_error err;
    assert_int_equal(keel_manifest_load(path, m, &err), KEEL_MANIFEST_OK);
}

static void pair_side(const char *app_manifest, side *s, keel_icc_end *rt_end)
{
    keel_manifest app, rt;
    load(app_manifest, &app);
    load("firmware/apps/envmon/app_manifest.json", &rt);
    keel_icc_config cfg = {.ring_bytes = 16384, .max_msg = 1024};
    assert_int_equal(keel_icc_pair(&app, &rt, &cfg, &s->end, rt_end, NULL), KEEL_ICC_OK);
    struct stat st;
    assert_int_equal(fstat(s->end.mem, &st), 0);
    s->len = (size_t)st.st_size;
    s->map = mmap(NULL, s->len, PROT_READ | PROT_WRITE, MAP_SHARED, s->end.mem, 0);
    assert_true(s->map != MAP_FAILED);
    assert_int_equal(keel_icc_ring_attach(&s->ring, s->map, s->len, s->end.side), KEEL_ICC_OK);
}

static void unpair_side(side *s)
{
    if (s->map) {
        munmap(s->map, s->len);
        s->map = NULL;
        keel_icc_end_close(&s->end);
    }
}

static int setup(void **state)
{
    (void)state;
    keel_icc_end env_rt, gw_rt;
    pair_side("apps/envmon/app_manifest.json", &env, &env_rt);
    pair_side("apps/gateway/app_manifest.json", &gw, &gw_rt);
    bus = fieldbus_new();
    assert_non_null(bus);
    world_config wc = world_config_default();
    wc.start_temp_c = 19.25;
    wc.bus = bus;
    wc.bridge_end = &gw_rt;
    assert_int_equal(world_create(&wc, &env_rt), WORLD_OK);
    assert_int_equal(gw_rt.mem, -1); /* the world took the bridge's end */
    world_run_until_us(SEC);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    world_destroy();
    fieldbus_close(bus);
    unpair_side(&env);
    unpair_side(&gw);
    return 0;
}

static uint32_t send_req(side *s, uint16_t type, const void *data, size_t len)
{
    uint32_t corr = next_corr++;
    bool ring = false;
    assert_int_equal(
        keel_icc_ring_send(&s->ring, type, KEEL_ICC_F_REQUEST, corr, data, len, NULL, &ring),
        KEEL_ICC_OK);
    if (ring) {
        uint64_t one = 1;
        assert_int_equal(write(s->end.bell_out, &one, sizeof one), (ssize_t)sizeof one);
    }
    return corr;
}

/* The reply to corr if it is there (false if not yet). */
static bool take_reply(side *s, uint32_t corr, uint16_t want, uint8_t *out, size_t cap, size_t *len)
{
    keel_icc_msg m;
    bool ring = false;
    keel_icc_err e = keel_icc_ring_recv(&s->ring, &m, out, cap, &ring);
    if (e == KEEL_ICC_ERR_WOULD_BLOCK) {
        return false;
    }
    assert_int_equal(e, KEEL_ICC_OK);
    assert_int_equal(m.type, want);
    assert_int_equal(m.corr, corr);
    *len = m.len;
    return true;
}

/* One MODBUS read through the bridge: sends the ADU, runs the world until the RESULT. */
static bridge_result xfer(uint8_t unit, const uint8_t *pdu, size_t pdu_len, uint16_t timeout_ms,
                          uint8_t *out, size_t cap)
{
    uint8_t adu[KEEL_MODBUS_MAX_RTU_ADU], msg[BRIDGE_XFER_MAX];
    size_t adu_len = 0, len = 0;
    assert_int_equal(keel_modbus_rtu_frame(unit, pdu, pdu_len, adu, sizeof adu, &adu_len),
                     KEEL_MODBUS_OK);
    bridge_xfer x = {.timeout_ms = timeout_ms, .frame = adu, .frame_len = adu_len};
    size_t n = bridge_xfer_encode(&x, msg, sizeof msg);
    uint32_t corr = send_req(&gw, BRIDGE_MSG_XFER, msg, n);
    uint64_t limit = world_now_us() + 2 * SEC;
    while (!take_reply(&gw, corr, BRIDGE_MSG_RESULT, out, cap, &len)) {
        assert_true(world_now_us() < limit);
        world_run_until_us(world_now_us() + 1000);
    }
    bridge_result r;
    assert_int_equal(bridge_result_decode(out, len, &r), BRIDGE_PROTO_OK);
    return r;
}

static uint16_t reg(const uint8_t *pdu, int i)
{
    return (uint16_t)(pdu[2 + 2 * i] << 8 | pdu[3 + 2 * i]);
}

static void test_room_sensor_answers_the_world_through_the_line_driver(void **state)
{
    (void)state;
    static uint8_t out[BRIDGE_RESULT_MAX];
    const uint8_t pdu[] = {0x04, 0x00, 0x00, 0x00, 0x03};
    bridge_result r = xfer(1, pdu, sizeof pdu, 200, out, sizeof out);
    assert_int_equal(r.status, BRIDGE_STATUS_OK);
    uint8_t unit;
    const uint8_t *rp;
    size_t rl;
    assert_int_equal(keel_modbus_rtu_parse(r.frame, r.frame_len, &unit, &rp, &rl), KEEL_MODBUS_OK);
    assert_int_equal(unit, 1);
    world_status s;
    world_status_get(&s);
    /* the room drifts slowly: what the sensor read milliseconds ago is within 0.01 C */
    assert_true(fabs((int16_t)reg(rp, 0) / 100.0 - s.room_temp_c) <= 0.011);
    assert_true(fabs(reg(rp, 1) / 100.0 - s.room_humidity_pct) <= 0.02);
    assert_true(fabs(reg(rp, 2) / 10.0 - s.room_pressure_hpa) <= 0.11);
    /* 8 characters out at 115200 8E1 (11 bits each), unit 1 answers 1.5 ms later */
    uint64_t char_ns = 11ull * 1000000000ull / 115200;
    assert_true(r.t.tx_done_ns - r.t.de_on_ns >= 8 * char_ns - 1000);
    assert_true(r.t.tx_done_ns - r.t.de_on_ns <= 8 * char_ns + 20000);
    assert_true(r.t.first_rx_ns - r.t.tx_done_ns >= 1500000);
    assert_true(r.t.first_rx_ns - r.t.tx_done_ns <= 1500000 + 2 * char_ns);
    assert_int_equal(s.bus_collisions, 0);
    assert_int_equal(s.room_replies, 1);
    assert_int_equal(s.bridge_sent, 1);
}

static void test_supply_sensor_and_an_absent_unit(void **state)
{
    (void)state;
    static uint8_t out[BRIDGE_RESULT_MAX];
    const uint8_t pdu[] = {0x04, 0x00, 0x00, 0x00, 0x01};
    bridge_result r = xfer(2, pdu, sizeof pdu, 200, out, sizeof out);
    assert_int_equal(r.status, BRIDGE_STATUS_OK);
    /* 4 ms latency for unit 2 */
    assert_true(r.t.first_rx_ns - r.t.tx_done_ns >= 4000000);
    uint8_t unit;
    const uint8_t *rp;
    size_t rl;
    assert_int_equal(keel_modbus_rtu_parse(r.frame, r.frame_len, &unit, &rp, &rl), KEEL_MODBUS_OK);
    world_status s;
    world_status_get(&s);
    assert_true(fabs((int16_t)reg(rp, 0) / 100.0 - s.room_temp_c) <= 0.011); /* HVAC off */

    uint64_t t0 = world_now_us();
    r = xfer(7, pdu, sizeof pdu, 30, out, sizeof out);
    assert_int_equal(r.status, BRIDGE_STATUS_TIMEOUT);
    assert_int_equal(r.frame_len, 0);
    assert_true(world_now_us() - t0 >= 30000);
    world_status_get(&s);
    assert_int_equal(s.bridge_timeouts, 1);
}

static void test_environment_service_answers_while_the_bus_is_busy(void **state)
{
    (void)state;
    /* a long request: read 1 holding register of unit 2 whose reply comes 4 ms later */
    uint8_t adu[KEEL_MODBUS_MAX_RTU_ADU], msg[BRIDGE_XFER_MAX];
    const uint8_t pdu[] = {0x03, 0x00, 0x00, 0x00, 0x01};
    size_t adu_len = 0, len = 0;
    assert_int_equal(keel_modbus_rtu_frame(2, pdu, sizeof pdu, adu, sizeof adu, &adu_len),
                     KEEL_MODBUS_OK);
    bridge_xfer x = {.timeout_ms = 200, .frame = adu, .frame_len = adu_len};
    size_t n = bridge_xfer_encode(&x, msg, sizeof msg);
    uint32_t bc = send_req(&gw, BRIDGE_MSG_XFER, msg, n);
    uint32_t ec = send_req(&env, ENVMON_MSG_ENV_GET, NULL, 0);
    world_run_until_us(world_now_us() + 1000);
    static uint8_t out[BRIDGE_RESULT_MAX];
    assert_true(take_reply(&env, ec, ENVMON_MSG_ENV_DATA, out, sizeof out, &len));
    assert_false(take_reply(&gw, bc, BRIDGE_MSG_RESULT, out, sizeof out, &len));
    world_run_until_us(world_now_us() + 20000);
    assert_true(take_reply(&gw, bc, BRIDGE_MSG_RESULT, out, sizeof out, &len));
    bridge_result r;
    assert_int_equal(bridge_result_decode(out, len, &r), BRIDGE_PROTO_OK);
    assert_int_equal(r.status, BRIDGE_STATUS_OK);
}

static void test_malformed_xfer_is_refused_without_touching_the_line(void **state)
{
    (void)state;
    world_status before, after;
    world_status_get(&before);
    const uint8_t bad[BRIDGE_XFER_HDR + 2] = {BRIDGE_PROTO_VERSION, 0, 100, 0};
    uint32_t corr = send_req(&gw, BRIDGE_MSG_XFER, bad, sizeof bad);
    world_run_until_us(world_now_us() + 5000);
    static uint8_t out[BRIDGE_RESULT_MAX];
    size_t len = 0;
    assert_true(take_reply(&gw, corr, BRIDGE_MSG_RESULT, out, sizeof out, &len));
    bridge_result r;
    assert_int_equal(bridge_result_decode(out, len, &r), BRIDGE_PROTO_OK);
    assert_int_equal(r.status, BRIDGE_STATUS_REFUSED);
    world_status_get(&after);
    assert_int_equal(after.bus_chars, before.bus_chars);
    assert_int_equal(after.bridge_refused, before.bridge_refused + 1);
}

/* keel-sim's TCP port: the serial server is a second master node on the same wire */
static void test_serial_server_reaches_the_sensors_on_the_wire(void **state)
{
    (void)state;
    uint8_t adu[KEEL_MODBUS_MAX_RTU_ADU], out[KEEL_MODBUS_MAX_RTU_ADU];
    const uint8_t pdu[] = {0x04, 0x00, 0x00, 0x00, 0x03};
    size_t adu_len = 0, n = 0;
    int st = -1;
    assert_int_equal(keel_modbus_rtu_frame(1, pdu, sizeof pdu, adu, sizeof adu, &adu_len),
                     KEEL_MODBUS_OK);
    world_status before;
    world_status_get(&before);
    assert_true(world_serial_submit(adu, adu_len, 100000));
    assert_false(world_serial_submit(adu, adu_len, 100000));   /* one at a time */
    assert_false(world_serial_take(out, sizeof out, &n, &st)); /* not on the line yet */
    uint64_t t0 = world_now_us();
    while (!world_serial_take(out, sizeof out, &n, &st)) {
        assert_true(world_now_us() - t0 < SEC);
        world_run_until_us(world_now_us() + 500);
    }
    assert_int_equal(st, 0);
    uint8_t unit;
    const uint8_t *rp;
    size_t rl;
    assert_int_equal(keel_modbus_rtu_parse(out, n, &unit, &rp, &rl), KEEL_MODBUS_OK);
    world_status s;
    world_status_get(&s);
    assert_true(fabs((int16_t)reg(rp, 0) / 100.0 - s.room_temp_c) <= 0.011);
    /* on the wire: 8 request + 11 reply characters, and 1.5 ms of latency at least */
    assert_int_equal(s.bus_chars - before.bus_chars, 19);
    assert_true(world_now_us() - t0 >= 1500 + 19 * 95);
    assert_int_equal(s.room_replies, before.room_replies + 1);
    assert_int_equal(s.serial_frames, before.serial_frames + 1);
    /* nobody at unit 9: a timeout, and the next frame goes out */
    assert_int_equal(keel_modbus_rtu_frame(9, pdu, sizeof pdu, adu, sizeof adu, &adu_len),
                     KEEL_MODBUS_OK);
    assert_true(world_serial_submit(adu, adu_len, 20000));
    t0 = world_now_us();
    while (!world_serial_take(out, sizeof out, &n, &st)) {
        assert_true(world_now_us() - t0 < SEC);
        world_run_until_us(world_now_us() + 1000);
    }
    assert_int_equal(st, 1);
    assert_int_equal(n, 0);
    assert_true(world_now_us() - t0 >= 20000);
}

static void test_a_bridge_without_a_bus_is_refused(void **state)
{
    (void)state;
    world_destroy();
    keel_icc_end rt_end;
    side extra = {0};
    pair_side("apps/gateway/app_manifest.json", &extra, &rt_end);
    world_config wc = world_config_default();
    wc.bridge_end = &rt_end;
    assert_int_equal(world_create(&wc, NULL), WORLD_ERR_CHANNEL);
    assert_int_equal(rt_end.mem, -1); /* taken and closed all the same */
    unpair_side(&extra);
    /* teardown destroys again: give it a world */
    world_config plain = world_config_default();
    assert_int_equal(world_create(&plain, NULL), WORLD_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_room_sensor_answers_the_world_through_the_line_driver,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_supply_sensor_and_an_absent_unit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_environment_service_answers_while_the_bus_is_busy,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_xfer_is_refused_without_touching_the_line,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_serial_server_reaches_the_sensors_on_the_wire, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_bridge_without_a_bus_is_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

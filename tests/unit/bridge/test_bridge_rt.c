/* The RT core's RS485 bridge service on a simulated bus (sim/rs485 + sim/devices): the same
 * firmware code that runs in keel-sim and on the Cortex-M, with the line driver and a real
 * MODBUS slave device on the wire, in virtual time. What the gateway would send arrives as an
 * XFER payload; what comes back must be the sensor's reply frame, with line timestamps that
 * match the bit timing, or the right status when no one answers or the request is bad. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bridge_rt.h"
#include "rs485_world.h"

static world W;
static bridge_rt B;

typedef struct job {
    uint8_t req[BRIDGE_XFER_MAX], out[BRIDGE_RESULT_MAX];
    size_t req_len, out_len;
    bool done;
} job;

static bool job_done(void *arg)
{
    return ((job *)arg)->done;
}

static job *volatile pending; /* handed from the host to the worker thread */

/* One RTOS thread runs the jobs, as the bridge's own thread would. */
static void worker(void *arg)
{
    (void)arg;
    for (;;) {
        job *j = pending;
        if (!j) {
            (void)keel_rtos_thread_sleep(1);
            continue;
        }
        j->out_len = bridge_rt_handle(&B, j->req, j->req_len, j->out, sizeof j->out);
        pending = NULL;
        j->done = true;
    }
}

static void submit(job *j)
{
    j->done = false;
    pending = j;
    (void)keel_sim_run_until_cond(job_done, j, keel_sim_now_ns() + 2000000000ull);
    assert_true(j->done);
}

/* One XFER through the bridge; returns the decoded RESULT (pointing into j->out). */
static bridge_result transact(job *j, uint8_t unit, const uint8_t *pdu, size_t pdu_len,
                              uint16_t timeout_ms)
{
    uint8_t adu[BRIDGE_MAX_FRAME];
    size_t adu_len = 0;
    assert_int_equal(keel_modbus_rtu_frame(unit, pdu, pdu_len, adu, sizeof adu, &adu_len),
                     KEEL_MODBUS_OK);
    bridge_xfer x = {.timeout_ms = timeout_ms, .frame = adu, .frame_len = adu_len};
    j->req_len = bridge_xfer_encode(&x, j->req, sizeof j->req);
    assert_true(j->req_len > 0);
    submit(j);
    bridge_result r;
    assert_int_equal(bridge_result_decode(j->out, j->out_len, &r), BRIDGE_PROTO_OK);
    return r;
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(world_create(&W, 115200), 0);
    sim_sensor *s = world_add_sensor(&W, 1, 2000000, NULL); /* answers 2 ms after a request */
    assert_non_null(s);
    sim_sensor_set(s, 22.5, 41.0, 1009.9);
    B.drv = &W.drv;
    return world_start(&W, worker, NULL);
}

static int teardown(void **state)
{
    (void)state;
    world_destroy(&W);
    return 0;
}

static void test_reply_frame_comes_back_with_line_times(void **state)
{
    (void)state;
    static job j;
    const uint8_t pdu[] = {0x04, 0x00, 0x00, 0x00, 0x03}; /* read input 0..2 */
    bridge_result r = transact(&j, 1, pdu, sizeof pdu, 200);
    assert_int_equal(r.status, BRIDGE_STATUS_OK);
    uint8_t unit = 0;
    const uint8_t *rp;
    size_t rl;
    assert_int_equal(keel_modbus_rtu_parse(r.frame, r.frame_len, &unit, &rp, &rl), KEEL_MODBUS_OK);
    assert_int_equal(unit, 1);
    assert_int_equal(rl, 8); /* fc, byte count, 3 registers */
    assert_int_equal((rp[2] << 8 | rp[3]), 2250);
    assert_int_equal((rp[4] << 8 | rp[5]), 4100);
    assert_int_equal((rp[6] << 8 | rp[7]), 10099);
    /* 8 request characters of 11 bits at 115200 baud leave the wire in ~764 us; the sensor
     * answers 2 ms after the last stop bit; the 11 reply characters follow back to back */
    uint64_t char_ns = 11ull * 1000000000ull / 115200;
    uint64_t tx = r.t.tx_done_ns - r.t.de_on_ns;
    assert_true(tx >= 8 * char_ns - 1000 && tx <= 8 * char_ns + 20000);
    uint64_t gap = r.t.first_rx_ns - r.t.tx_done_ns;
    assert_true(gap >= 2000000 && gap <= 2000000 + 2 * char_ns);
    assert_true(r.t.last_rx_ns - r.t.first_rx_ns >= 10 * char_ns - 1000);
    assert_true(r.t.last_rx_ns - r.t.first_rx_ns <= 10 * char_ns + 20000);
    assert_true(r.t.frame_end_ns > r.t.last_rx_ns);
    assert_int_equal(B.sent, 1);
}

static void test_absent_unit_times_out_after_its_timeout(void **state)
{
    (void)state;
    static job j;
    const uint8_t pdu[] = {0x03, 0x00, 0x00, 0x00, 0x01};
    uint64_t t0 = keel_sim_now_ns();
    bridge_result r = transact(&j, 9, pdu, sizeof pdu, 50);
    assert_int_equal(r.status, BRIDGE_STATUS_TIMEOUT);
    assert_int_equal(r.frame_len, 0);
    assert_int_equal(r.t.first_rx_ns, 0);
    assert_true(keel_sim_now_ns() - t0 >= 50000000ull);
    assert_true(keel_sim_now_ns() - t0 < 80000000ull);
    assert_true(B.timeouts >= 1);
}

static void test_malformed_request_is_refused_and_nothing_is_sent(void **state)
{
    (void)state;
    static job j;
    uint64_t chars = W.bus.stats.chars;
    uint32_t refused = B.refused;
    const uint8_t bad[BRIDGE_XFER_HDR + 2] = {BRIDGE_PROTO_VERSION, 0, 100, 0};
    memcpy(j.req, bad, sizeof bad);
    j.req_len = sizeof bad; /* a 2-byte frame */
    submit(&j);
    bridge_result r;
    assert_int_equal(bridge_result_decode(j.out, j.out_len, &r), BRIDGE_PROTO_OK);
    assert_int_equal(r.status, BRIDGE_STATUS_REFUSED);
    assert_int_equal(B.refused, refused + 1);
    assert_int_equal(W.bus.stats.chars, chars);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_frame_comes_back_with_line_times),
        cmocka_unit_test(test_absent_unit_times_out_after_its_timeout),
        cmocka_unit_test(test_malformed_request_is_refused_and_nothing_is_sent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

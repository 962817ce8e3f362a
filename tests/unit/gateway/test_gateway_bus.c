/* The gateway's bridge backend against an RT peer that says exactly what a test wants: the
 * checks the gateway's master applies to whatever the RT core sends back (a good reply, a
 * reply with a bad CRC, a truncated one, one from another unit, an exception, the RT core's
 * timeout and line-error statuses, a malformed RESULT), the peer's death, and two threads
 * sharing the bus (a firmware push beside the poll loop) each getting their own answers.
 * The peer is a thread on the RT end of a real channel (keel_icc_pair of the two manifests). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge_proto.h"
#include "gateway_bus.h"
#include "keel/icc.h"
#include "keel/manifest.h"
#include "keel/modbus.h"

/* What the peer does with the next XFER. */
typedef enum mode {
    M_GOOD,      /* the slave's proper reply: input registers = unit * 1000 + address */
    M_BAD_CRC,   /* the same with one bit flipped */
    M_TRUNCATED, /* the first 5 bytes of it */
    M_OTHER_UNIT,
    M_EXCEPTION, /* exception 2 */
    M_TIMEOUT,   /* status TIMEOUT, no frame */
    M_LINE,      /* status LINE with a garbled frame */
    M_MALFORMED, /* a RESULT whose length field lies */
    M_WRONG_TYPE,
    M_DIE, /* the RT core dies holding the request */
} mode;

static keel_icc *rt;
static _Atomic int next_mode;
static pthread_t peer;

static size_t good_reply(const uint8_t *req, size_t len, uint8_t unit, uint8_t *out)
{
    (void)len;
    uint16_t addr = (uint16_t)(req[2] << 8 | req[3]), count = (uint16_t)(req[4] << 8 | req[5]);
    uint8_t pdu[KEEL_MODBUS_MAX_PDU];
    pdu[0] = req[1];
    pdu[1] = (uint8_t)(2 * count);
    for (uint16_t i = 0; i < count; i++) {
        uint16_t v = (uint16_t)(unit * 1000u + addr + i);
        pdu[2 + 2 * i] = (uint8_t)(v >> 8);
        pdu[3 + 2 * i] = (uint8_t)v;
    }
    size_t n = 0;
    assert_int_equal(keel_modbus_rtu_frame(unit, pdu, 2u + 2u * count, out, 256, &n),
                     KEEL_MODBUS_OK);
    return n;
}

static void *peer_main(void *arg)
{
    (void)arg;
    static uint8_t in[KEEL_ICC_MIN_MSG], out[BRIDGE_RESULT_MAX], frame[256];
    for (;;) {
        keel_icc_msg m;
        if (keel_icc_recv(rt, &m, in, sizeof in, -1) != KEEL_ICC_OK) {
            return NULL; /* closed */
        }
        bridge_xfer x;
        assert_int_equal(bridge_xfer_decode(in, m.len, &x), BRIDGE_PROTO_OK);
        uint8_t unit = x.frame[0];
        bridge_result r = {.status = BRIDGE_STATUS_OK, .t = {1000, 2000, 3000, 4000, 5000}};
        size_t n = good_reply(x.frame, x.frame_len, unit, frame);
        r.frame = frame;
        r.frame_len = n;
        int md = next_mode;
        if (md == M_DIE) {
            keel_icc_close(rt);
            rt = NULL;
            return NULL;
        }
        uint16_t type = BRIDGE_MSG_RESULT;
        switch (md) {
        case M_BAD_CRC:
            frame[3] ^= 0x01;
            break;
        case M_TRUNCATED:
            r.frame_len = 5;
            break;
        case M_OTHER_UNIT:
            r.frame_len = good_reply(x.frame, x.frame_len, (uint8_t)(unit + 1), frame);
            break;
        case M_EXCEPTION: {
            uint8_t pdu[2] = {(uint8_t)(x.frame[1] | 0x80), 2};
            assert_int_equal(keel_modbus_rtu_frame(unit, pdu, 2, frame, sizeof frame, &n),
                             KEEL_MODBUS_OK);
            r.frame_len = n;
            break;
        }
        case M_TIMEOUT:
            r.status = BRIDGE_STATUS_TIMEOUT;
            r.frame_len = 0;
            r.t = (bridge_times){1000, 2000, 0, 0, 0};
            break;
        case M_LINE:
            r.status = BRIDGE_STATUS_LINE;
            frame[2] = (uint8_t)~frame[2];
            break;
        case M_WRONG_TYPE:
            type = 0x0101;
            break;
        default:
            break;
        }
        size_t len = bridge_result_encode(&r, out, sizeof out);
        assert_true(len > 0);
        if (md == M_MALFORMED) {
            out[2] ^= 0x10; /* the frame length field no longer matches */
        }
        if (keel_icc_reply(rt, &m, type, out, len, 1000) != KEEL_ICC_OK) {
            return NULL;
        }
    }
}

static gateway_bus *bus;

static int setup(void **state)
{
    (void)state;
    char p[2][1024];
    snprintf(p[0], sizeof p[0], "%s/apps/gateway/app_manifest.json", getenv("KEEL_SOURCE_DIR"));
    snprintf(p[1], sizeof p[1], "%s/firmware/apps/envmon/app_manifest.json",
             getenv("KEEL_SOURCE_DIR"));
    keel_manifest gw, rtm;
    keel_manifest_error err;
    assert_int_equal(keel_manifest_load(p[0], &gw, &err), KEEL_MANIFEST_OK);
    assert_int_equal(keel_manifest_load(p[1], &rtm, &err), KEEL_MANIFEST_OK);
    keel_icc_end a, b;
    assert_int_equal(keel_icc_pair(&gw, &rtm, NULL, &a, &b, &err), KEEL_ICC_OK);
    keel_icc *hl;
    assert_int_equal(keel_icc_open(&a, NULL, &hl), KEEL_ICC_OK);
    assert_int_equal(keel_icc_open(&b, NULL, &rt), KEEL_ICC_OK);
    bus = gateway_bus_bridge(hl, NULL);
    assert_non_null(bus);
    next_mode = M_GOOD;
    assert_int_equal(pthread_create(&peer, NULL, peer_main, NULL), 0);
    return 0;
}

static keel_modbus_err read_with(mode m, uint8_t unit, uint16_t *regs)
{
    next_mode = m;
    return gateway_bus_read_registers(bus, unit, 4, 10, 2, regs);
}

static void test_the_master_judges_what_the_rt_core_sends(void **state)
{
    (void)state;
    uint16_t r[2] = {0};
    assert_int_equal(read_with(M_GOOD, 3, r), KEEL_MODBUS_OK);
    assert_int_equal(r[0], 3010);
    assert_int_equal(r[1], 3011);
    assert_int_equal(read_with(M_BAD_CRC, 3, r), KEEL_MODBUS_ERR_CRC);
    assert_int_not_equal(read_with(M_TRUNCATED, 3, r), KEEL_MODBUS_OK);
    assert_int_not_equal(read_with(M_OTHER_UNIT, 3, r), KEEL_MODBUS_OK);
    assert_int_equal(read_with(M_EXCEPTION, 3, r), KEEL_MODBUS_ERR_EXCEPTION);
    assert_int_equal(gateway_bus_last_exception(bus), 2);
    assert_int_equal(read_with(M_TIMEOUT, 3, r), KEEL_MODBUS_ERR_TIMEOUT);
    assert_int_not_equal(read_with(M_LINE, 3, r), KEEL_MODBUS_OK);
    assert_int_equal(read_with(M_MALFORMED, 3, r), KEEL_MODBUS_ERR_FRAME);
    assert_int_equal(read_with(M_WRONG_TYPE, 3, r), KEEL_MODBUS_ERR_FRAME);
    /* and after all that, a good transaction is still good */
    assert_int_equal(read_with(M_GOOD, 7, r), KEEL_MODBUS_OK);
    assert_int_equal(r[0], 7010);
    const gateway_bus_stats *st = gateway_bus_get_stats(bus);
    assert_int_equal(st->transactions, 10);
    assert_int_equal(st->timeouts, 1);
    assert_int_equal(st->line_errors, 1);
    assert_int_equal(st->bad_replies, 2);
    assert_int_equal(st->last_line_ns, 4000);
}

typedef struct worker {
    uint8_t unit;
    int bad;
} worker;

static void *hammer(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 300; i++) {
        uint16_t r[2];
        if (gateway_bus_read_registers(bus, w->unit, 4, (uint16_t)i, 2, r) != KEEL_MODBUS_OK ||
            r[0] != w->unit * 1000u + (unsigned)i || r[1] != r[0] + 1u) {
            w->bad++;
        }
    }
    return NULL;
}

static void test_two_threads_share_the_bus(void **state)
{
    (void)state;
    next_mode = M_GOOD;
    worker w[2] = {{.unit = 1}, {.unit = 2}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
    }
    assert_int_equal(w[0].bad, 0);
    assert_int_equal(w[1].bad, 0);
}

static void test_the_rt_core_going_away_closes_the_bus(void **state)
{
    (void)state;
    uint16_t r[2];
    keel_modbus_err e = read_with(M_DIE, 1, r);
    pthread_join(peer, NULL);
    assert_int_equal(e, KEEL_MODBUS_ERR_CLOSED);
    assert_int_equal(gateway_bus_get_stats(bus)->channel_errors, 1);
}

static int teardown_closed(void **state)
{
    (void)state;
    gateway_bus_close(bus);
    return 0;
}

static int teardown_running(void **state)
{
    (void)state;
    gateway_bus_close(bus); /* the peer sees the hang-up */
    pthread_join(peer, NULL);
    keel_icc_close(rt);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_the_master_judges_what_the_rt_core_sends, setup,
                                        teardown_running),
        cmocka_unit_test_setup_teardown(test_two_threads_share_the_bus, setup, teardown_running),
        cmocka_unit_test_setup_teardown(test_the_rt_core_going_away_closes_the_bus, setup,
                                        teardown_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

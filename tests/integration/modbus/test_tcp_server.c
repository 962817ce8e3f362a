/* Keel's TCP server with many connections at once (IPv4 and IPv6), and RTU frames over TCP:
 * `keel modbus serve` against Keel's own client library. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"
#include "keel/modbus.h"

static kf_proc srv;

static void start(const char *mode, uint16_t *port)
{
    *port = kf_free_port();
    char ps[16], keel[512], map[512], log[600];
    snprintf(ps, sizeof ps, "%u", *port);
    snprintf(keel, sizeof keel, "%s/bin/keel", kf_build_dir());
    snprintf(map, sizeof map, "%s/tests/peers/modbus/sensor_map.json", kf_source_dir());
    snprintf(log, sizeof log, "%s/serve.log", kf_tmpdir("modbus-tcp"));
    char *argv[] = {keel, "modbus", "serve", "--map", map, (char *)mode, ps, NULL};
    assert_int_equal(kf_spawn(&srv, "keel-serve", argv, log), 0);
    assert_int_equal(kf_wait_log(&srv, "listening on port", 10000), 0);
}

static void test_server_keeps_forty_connections_apart(void **state)
{
    (void)state;
    uint16_t port;
    start("--tcp", &port);
    char ps[16];
    snprintf(ps, sizeof ps, "%u", port);
    enum { N = 40 };
    keel_modbus_client *c[N];
    for (int i = 0; i < N; i++) {
        /* Half over IPv4, half over IPv6: the server binds "::" for both. */
        assert_int_equal(keel_modbus_client_tcp(i % 2 ? "::1" : "127.0.0.1", ps, false, &c[i]),
                         KEEL_MODBUS_OK);
    }
    /* Every connection writes its own register, interleaved, then all read back. */
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < N; i++) {
            assert_int_equal(keel_modbus_write_register(c[i], 1, (uint16_t)(100 + i),
                                                        (uint16_t)(1000 * round + i)),
                             KEEL_MODBUS_OK);
        }
        for (int i = N - 1; i >= 0; i--) {
            uint16_t v;
            assert_int_equal(keel_modbus_read_registers(c[i], 1, 3, (uint16_t)(100 + i), 1, &v),
                             KEEL_MODBUS_OK);
            assert_int_equal(v, 1000 * round + i);
        }
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(keel_modbus_client_stats(c[i])->replies, 10);
        keel_modbus_client_close(c[i]);
    }
    kf_stop(&srv, 2000);
}

static void test_rtu_over_tcp_round_trip(void **state)
{
    (void)state;
    uint16_t port;
    start("--rtu-over-tcp", &port);
    char ps[16];
    snprintf(ps, sizeof ps, "%u", port);
    keel_modbus_client *c;
    assert_int_equal(keel_modbus_client_tcp("127.0.0.1", ps, true, &c), KEEL_MODBUS_OK);
    uint16_t regs[4];
    assert_int_equal(keel_modbus_read_registers(c, 1, 3, 0, 4, regs), KEEL_MODBUS_OK);
    assert_int_equal(regs[2], 1013);
    const uint16_t w[3] = {9, 8, 7};
    assert_int_equal(keel_modbus_write_registers(c, 1, 50, 3, w), KEEL_MODBUS_OK);
    assert_int_equal(keel_modbus_read_registers(c, 1, 4, 0, 3, regs), KEEL_MODBUS_OK);
    assert_int_equal(regs[1], 4800);
    assert_int_equal(keel_modbus_read_registers(c, 1, 3, 199, 2, regs), KEEL_MODBUS_ERR_EXCEPTION);
    /* Another unit on the RTU link: not ours, no answer, a timeout. */
    keel_modbus_client_set_timeout(c, 200000);
    assert_int_equal(keel_modbus_read_registers(c, 9, 3, 0, 1, regs), KEEL_MODBUS_ERR_TIMEOUT);
    keel_modbus_client_set_timeout(c, 5000000);
    assert_int_equal(keel_modbus_read_registers(c, 1, 3, 50, 3, regs), KEEL_MODBUS_OK);
    assert_int_equal(regs[2], 7);
    keel_modbus_client_close(c);
    kf_stop(&srv, 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_keeps_forty_connections_apart),
        cmocka_unit_test(test_rtu_over_tcp_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

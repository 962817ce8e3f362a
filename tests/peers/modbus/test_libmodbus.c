/* Keel against libmodbus (Debian's libmodbus): Keel's master against a libmodbus server, and
 * a libmodbus client checking Keel's slave, over TCP and over RTU on a socat pty pair. The
 * libmodbus side is libmodbus_peer.c, built by this tree. */
#include "peer_common.h"

static kf_proc socat, srv;

static const char *peer_bin(void)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/tests/peers/modbus/libmodbus_peer", kf_build_dir());
    return p;
}

static void test_keel_master_vs_libmodbus_server_tcp(void **state)
{
    (void)state;
    uint16_t port = kf_free_port();
    char ps[16];
    snprintf(ps, sizeof ps, "%u", port);
    char *argv[] = {(char *)peer_bin(), "server", "tcp", ps, NULL};
    assert_int_equal(kf_spawn(&srv, "libmodbus-server", argv, peer_log("libmodbus-server")), 0);
    if (kf_wait_tcp(&srv, port, 10000) != 0) {
        kf_dump_log(&srv, 20);
        fail_msg("libmodbus server did not listen");
    }
    keel_modbus_client *c;
    /* kf_wait_tcp's probe connection used up the peer's single accept; it accepts again
     * when that one closes. */
    assert_int_equal(keel_modbus_client_tcp("127.0.0.1", ps, false, &c), KEEL_MODBUS_OK);
    check_reference_server(c);
    keel_modbus_client_close(c);
    kf_stop(&srv, 2000);
}

static void test_keel_master_vs_libmodbus_server_rtu_pty(void **state)
{
    (void)state;
    char a[512], b[512];
    start_pty_pair(&socat, a, b, sizeof a);
    char *argv[] = {(char *)peer_bin(), "server", "rtu", a, NULL};
    assert_int_equal(kf_spawn(&srv, "libmodbus-server", argv, peer_log("libmodbus-server")), 0);
    assert_int_equal(kf_wait_log(&srv, "ready", 10000), 0);
    keel_modbus_client *c;
    keel_modbus_serial_opts o = serial_19200_8n2();
    assert_int_equal(keel_modbus_client_serial(b, &o, &c), KEEL_MODBUS_OK);
    keel_modbus_client_set_timeout(c, 3000000);
    check_reference_server(c);
    keel_modbus_client_close(c);
    kf_stop(&srv, 2000);
    kf_stop(&socat, 2000);
}

static void test_libmodbus_client_vs_keel_slave_tcp(void **state)
{
    (void)state;
    uint16_t port;
    start_keel_tcp(&srv, &port);
    char ps[16];
    snprintf(ps, sizeof ps, "%u", port);
    char *argv[] = {(char *)peer_bin(), "client", "tcp", ps, NULL};
    run_peer_client("libmodbus-client", argv);
    kf_stop(&srv, 2000);
}

static void test_libmodbus_client_vs_keel_slave_rtu_pty(void **state)
{
    (void)state;
    char a[512], b[512];
    start_pty_pair(&socat, a, b, sizeof a);
    start_keel_rtu(&srv, a);
    char *argv[] = {(char *)peer_bin(), "client", "rtu", b, NULL};
    run_peer_client("libmodbus-client", argv);
    kf_stop(&srv, 2000);
    kf_stop(&socat, 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keel_master_vs_libmodbus_server_tcp),
        cmocka_unit_test(test_keel_master_vs_libmodbus_server_rtu_pty),
        cmocka_unit_test(test_libmodbus_client_vs_keel_slave_tcp),
        cmocka_unit_test(test_libmodbus_client_vs_keel_slave_rtu_pty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

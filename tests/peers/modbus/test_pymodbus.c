/* Keel against pymodbus (Debian's python3-pymodbus): Keel's master reads and writes a
 * pymodbus server, and pymodbus's client checks Keel's slave, over TCP and over RTU on a
 * socat pty pair. */
#include "peer_common.h"

/* The fixture keeps pointers to these until exit: they must outlive each test. */
static kf_proc socat, srv;

static char *py(void)
{
    return "/usr/bin/python3";
}

static void test_keel_master_vs_pymodbus_server_tcp(void **state)
{
    (void)state;
    uint16_t port = kf_free_port();
    char ps[16];
    snprintf(ps, sizeof ps, "%u", port);
    char *argv[] = {py(), (char *)peer_path("tests/peers/modbus/pymodbus_server.py"), "tcp", ps,
                    NULL};
    assert_int_equal(kf_spawn(&srv, "pymodbus-server", argv, peer_log("pymodbus-server")), 0);
    if (kf_wait_tcp(&srv, port, 20000) != 0) {
        kf_dump_log(&srv, 30);
        fail_msg("pymodbus server did not listen");
    }
    keel_modbus_client *c;
    assert_int_equal(keel_modbus_client_tcp("127.0.0.1", ps, false, &c), KEEL_MODBUS_OK);
    check_reference_server(c);
    keel_modbus_client_close(c);
    kf_stop(&srv, 2000);
}

static void test_keel_master_vs_pymodbus_server_rtu_pty(void **state)
{
    (void)state;
    char a[512], b[512];
    start_pty_pair(&socat, a, b, sizeof a);
    char *argv[] = {py(), (char *)peer_path("tests/peers/modbus/pymodbus_server.py"), "rtu", a,
                    NULL};
    assert_int_equal(kf_spawn(&srv, "pymodbus-server", argv, peer_log("pymodbus-server")), 0);
    assert_int_equal(kf_wait_log(&srv, "ready", 20000), 0);
    keel_modbus_client *c;
    keel_modbus_serial_opts o = serial_19200_8n2();
    assert_int_equal(keel_modbus_client_serial(b, &o, &c), KEEL_MODBUS_OK);
    keel_modbus_client_set_timeout(c, 3000000); /* a loaded machine, a Python peer */
    check_reference_server(c);
    keel_modbus_client_close(c);
    kf_stop(&srv, 2000);
    kf_stop(&socat, 2000);
}

static void test_pymodbus_client_vs_keel_slave_tcp(void **state)
{
    (void)state;
    uint16_t port;
    start_keel_tcp(&srv, &port);
    char ps[16];
    snprintf(ps, sizeof ps, "%u", port);
    char *argv[] = {py(), (char *)peer_path("tests/peers/modbus/pymodbus_client.py"), "tcp", ps,
                    NULL};
    run_peer_client("pymodbus-client", argv);
    kf_stop(&srv, 2000);
}

static void test_pymodbus_client_vs_keel_slave_rtu_pty(void **state)
{
    (void)state;
    char a[512], b[512];
    start_pty_pair(&socat, a, b, sizeof a);
    start_keel_rtu(&srv, a);
    char *argv[] = {py(), (char *)peer_path("tests/peers/modbus/pymodbus_client.py"), "rtu", b,
                    NULL};
    run_peer_client("pymodbus-client", argv);
    kf_stop(&srv, 2000);
    kf_stop(&socat, 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keel_master_vs_pymodbus_server_tcp),
        cmocka_unit_test(test_keel_master_vs_pymodbus_server_rtu_pty),
        cmocka_unit_test(test_pymodbus_client_vs_keel_slave_tcp),
        cmocka_unit_test(test_pymodbus_client_vs_keel_slave_rtu_pty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

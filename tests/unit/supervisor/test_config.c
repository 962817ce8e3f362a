/* keeld's device config: defaults, keys, and errors that say which key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <stdlib.h>
#include <unistd.h>

#include "supervisor.h"

static char path[] = "/tmp/keel-sv-config-XXXXXX";

static sv_err load_text(sv_config *c, const char *text, char *msg, size_t cap)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    sv_err e = sv_config_load(c, path, msg, cap);
    unlink(path);
    memcpy(path + strlen(path) - 6, "XXXXXX", 6);
    return e;
}

static void test_defaults_under_state_dir(void **state)
{
    (void)state;
    sv_config c;
    assert_int_equal(sv_config_defaults(&c, "/var/lib/keel"), SV_OK);
    assert_string_equal(c.store_dir, "/var/lib/keel/apps");
    assert_string_equal(c.socket_path, "/var/lib/keel/keeld.sock");
    assert_int_equal(c.max_crash_reports, 10);
    assert_true(c.backoff_initial_ms < 100); /* the crash-to-running goal is 100 ms */
}

static void test_load_keys_override_defaults(void **state)
{
    (void)state;
    sv_config c;
    char msg[256];
    assert_int_equal(sv_config_defaults(&c, "/x"), SV_OK);
    assert_int_equal(load_text(&c, "{\"state_dir\":\"/s\",\"base_uid\":50000,"
                                   "\"max_crash_reports\":4,\"broker\":\"127.0.0.1:1883\","
                                   "\"release_ca\":\"/etc/keel/release-ca.pem\"}",
                               msg, sizeof msg),
                     SV_OK);
    assert_string_equal(c.state_dir, "/s");
    assert_string_equal(c.store_dir, "/s/apps");
    assert_int_equal(c.base_uid, 50000);
    assert_int_equal(c.max_crash_reports, 4);
    assert_string_equal(c.broker, "127.0.0.1:1883");
    assert_string_equal(c.release_ca, "/etc/keel/release-ca.pem");
}

static void test_load_base_uid_in_system_range_refused(void **state)
{
    (void)state;
    sv_config c;
    char msg[256];
    assert_int_equal(sv_config_defaults(&c, "/x"), SV_OK);
    assert_int_equal(load_text(&c, "{\"base_uid\":0}", msg, sizeof msg), SV_ERR_CONFIG);
    assert_non_null(strstr(msg, "base_uid"));
}

static void test_load_broker_without_port_refused(void **state)
{
    (void)state;
    sv_config c;
    char msg[256];
    assert_int_equal(sv_config_defaults(&c, "/x"), SV_OK);
    assert_int_equal(load_text(&c, "{\"broker\":\"localhost\"}", msg, sizeof msg), SV_ERR_CONFIG);
    assert_non_null(strstr(msg, "broker"));
}

static void test_serial_and_gpio_sections(void **state)
{
    (void)state;
    sv_config c;
    char msg[256];
    assert_int_equal(sv_config_defaults(&c, "/x"), SV_OK);
    assert_int_equal(
        load_text(&c,
                  "{\"serial\":{\"rs485\":{\"path\":\"/dev/ttyUSB0\",\"baud\":9600,"
                  "\"parity\":\"even\",\"stop_bits\":1,\"rs485\":true},\"console\":{\"path\":\"/dev/ttyS0\"}},"
                  "\"gpio\":{\"relay\":{\"chip\":\"/dev/gpiochip0\",\"line\":17,"
                  "\"direction\":\"output\",\"active_low\":true,\"initial\":true},"
                  "\"button\":{\"chip\":\"/dev/gpiochip1\",\"line\":0}}}",
                  msg, sizeof msg),
        SV_OK);
    assert_int_equal(c.nserial, 2);
    assert_string_equal(c.serial[0].name, "rs485");
    assert_string_equal(c.serial[0].path, "/dev/ttyUSB0");
    assert_int_equal(c.serial[0].baud, 9600);
    assert_int_equal(c.serial[0].parity, 'E');
    assert_int_equal(c.serial[0].data_bits, 8);
    assert_int_equal(c.serial[0].stop_bits, 1);
    assert_true(c.serial[0].rs485);
    assert_int_equal(c.serial[1].baud, 0); /* no baud: keeld leaves the line settings alone */
    assert_false(c.serial[1].rs485);
    assert_int_equal(c.ngpio, 2);
    assert_string_equal(c.gpio[0].chip, "/dev/gpiochip0");
    assert_int_equal(c.gpio[0].line, 17);
    assert_true(c.gpio[0].output && c.gpio[0].active_low && c.gpio[0].initial);
    assert_false(c.gpio[1].output);
    assert_int_equal(c.gpio[1].line, 0);
}

static void test_serial_and_gpio_mistakes_named(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"{\"serial\":{\"rs485\":{\"path\":\"/dev/ttyUSB0\",\"parity\":\"mark\"}}}", "parity"},
        {"{\"serial\":{\"rs485\":{\"path\":\"/dev/ttyUSB0\",\"baud\":9601}}}", "baud"},
        {"{\"serial\":{\"rs485\":{\"path\":\"/dev/ttyUSB0\",\"parit\":\"odd\"}}}", "parit"},
        {"{\"serial\":{\"rs485\":{\"path\":\"ttyUSB0\"}}}", "path"},
        {"{\"serial\":{\"../x\":{\"path\":\"/dev/ttyUSB0\"}}}", "name"},
        {"{\"serial\":[\"/dev/ttyUSB0\"]}", "serial"},
        {"{\"serial\":{\"rs485\":{\"path\":\"/dev/ttyUSB0\",\"rs485\":1}}}", "rs485"},
        {"{\"gpio\":{\"relay\":{\"chip\":\"/dev/gpiochip0\"}}}", "line"},
        {"{\"gpio\":{\"relay\":{\"chip\":\"/dev/gpiochip0\",\"line\":1,"
         "\"direction\":\"out\"}}}", "direction"},
        {"{\"gpio\":{\"relay\":{\"chip\":\"/dev/gpiochip0\",\"line\":-1}}}", "line"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sv_config c;
        char msg[256] = "";
        assert_int_equal(sv_config_defaults(&c, "/x"), SV_OK);
        assert_int_equal(load_text(&c, bad[i][0], msg, sizeof msg), SV_ERR_CONFIG);
        if (!strstr(msg, bad[i][1])) {
            fail_msg("'%s' not named in: %s", bad[i][1], msg);
        }
    }
}

static void test_err_names_cover_the_enum(void **state)
{
    (void)state;
    for (int e = 0; e < SV_ERR_COUNT; e++) {
        assert_string_not_equal(keel_supervisor_err_name((sv_err)e), "SV_ERR_UNKNOWN");
    }
    assert_string_equal(keel_supervisor_err_name(SV_ERR_COUNT), "SV_ERR_UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_under_state_dir),
        cmocka_unit_test(test_load_keys_override_defaults),
        cmocka_unit_test(test_load_base_uid_in_system_range_refused),
        cmocka_unit_test(test_load_broker_without_port_refused),
        cmocka_unit_test(test_serial_and_gpio_sections),
        cmocka_unit_test(test_serial_and_gpio_mistakes_named),
        cmocka_unit_test(test_err_names_cover_the_enum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

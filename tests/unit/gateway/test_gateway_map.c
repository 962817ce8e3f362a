/* The gateway's poll map: a good map parses with defaults filled in, scaling handles signed
 * registers, and every kind of mistake is refused with a message naming the entry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "gateway_map.h"

static gateway_map m;
static char msg[256];

static gateway_map_err parse(const char *text)
{
    msg[0] = '\0';
    return gateway_map_parse(text, strlen(text), &m, msg, sizeof msg);
}

static void test_parse_good_map_fills_defaults(void **state)
{
    (void)state;
    assert_int_equal(parse("{\"bus\":{\"rtu_over_tcp\":\"127.0.0.1:1502\"},"
                           "\"points\":[{\"name\":\"t\",\"unit\":1,\"function\":4,\"address\":0,"
                           "\"scale\":0.01,\"signed\":true},"
                           "{\"name\":\"p\",\"unit\":2,\"function\":3,\"address\":7}],"
                           "\"cloud\":{}}"),
                     GATEWAY_MAP_OK);
    assert_int_equal(m.bus, GATEWAY_BUS_RTU_OVER_TCP);
    assert_string_equal(m.target, "127.0.0.1:1502");
    assert_int_equal(m.period_ms, 2000);
    assert_int_equal(m.baud, 19200);
    assert_int_equal(m.parity, 'E');
    assert_int_equal(m.n_points, 2);
    assert_int_equal(m.points[1].unit, 2);
    assert_int_equal(m.points[1].function, 3);
    assert_int_equal(m.points[1].address, 7);
    assert_true(m.points[1].scale == 1.0);
    assert_true(gateway_point_value(&m.points[0], 0xf830) == -20.0); /* -2000 * 0.01 */
    assert_true(gateway_point_value(&m.points[1], 0xf830) == 63536.0);
}

static void test_parse_serial_bus_options(void **state)
{
    (void)state;
    assert_int_equal(
        parse("{\"bus\":{\"rtu\":\"/dev/ttyUSB0\",\"baud\":9600,\"parity\":\"none\","
              "\"stop\":2,\"rs485\":true},\"period_ms\":500,"
              "\"points\":[{\"name\":\"x\",\"unit\":247,\"function\":3,\"address\":65535,"
              "\"offset\":-40}]}"),
        GATEWAY_MAP_OK);
    assert_int_equal(m.bus, GATEWAY_BUS_RTU);
    assert_int_equal(m.baud, 9600);
    assert_int_equal(m.parity, 'N');
    assert_int_equal(m.stop_bits, 2);
    assert_true(m.rs485);
    assert_true(gateway_point_value(&m.points[0], 50) == 10.0);
}

static void test_parse_mistakes_are_refused_with_where(void **state)
{
    (void)state;
    struct {
        const char *text, *msg;
    } bad[] = {
        {"{\"bus\":", "not JSON"},
        {"[]", "the config must be a JSON object"},
        {"{\"buss\":{}}", "buss: unknown key"},
        {"{\"bus\":{\"tcp\":\"a:1\",\"rtu\":\"/dev/x\"},\"points\":[]}", "bus: give exactly one"},
        {"{\"bus\":{\"tcp\":\"a:1\",\"bauds\":1},\"points\":[]}", "bus.bauds: unknown key"},
        {"{\"bus\":{\"tcp\":\"a:1\"},\"points\":[]}", "points: an array of 1..64"},
        {"{\"bus\":{\"tcp\":\"a:1\"},\"points\":[{\"name\":\"a\",\"unit\":0,\"function\":3,"
         "\"address\":0}]}",
         "points[0].unit: a slave address"},
        {"{\"bus\":{\"tcp\":\"a:1\"},\"points\":[{\"name\":\"a\",\"unit\":1,\"function\":6,"
         "\"address\":0}]}",
         "points[0].function"},
        {"{\"bus\":{\"tcp\":\"a:1\"},\"points\":[{\"name\":\"a\",\"unit\":1,\"function\":3,"
         "\"address\":1.5}]}",
         "points[0].address"},
        {"{\"bus\":{\"tcp\":\"a:1\"},\"points\":[{\"name\":\"a b\",\"unit\":1,\"function\":3,"
         "\"address\":0}]}",
         "points[0].name: letters"},
        {"{\"bus\":{\"tcp\":\"a:1\"},\"points\":[{\"name\":\"a\",\"unit\":1,\"function\":3,"
         "\"address\":0},{\"name\":\"a\",\"unit\":1,\"function\":3,\"address\":1}]}",
         "points[1].name: \"a\" is already points[0]"},
        {"{\"bus\":{\"tcp\":\"a:1\"},\"points\":[{\"name\":\"a\",\"unit\":1,\"function\":3,"
         "\"address\":0,\"scale\":0}]}",
         "scale (non-zero)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m.n_points = 99;
        assert_int_not_equal(parse(bad[i].text), GATEWAY_MAP_OK);
        if (!strstr(msg, bad[i].msg)) {
            fail_msg("case %zu: \"%s\" does not contain \"%s\"", i, msg, bad[i].msg);
        }
        assert_int_equal(m.n_points, 99); /* the output is untouched on error */
    }
    assert_string_equal(gateway_map_err_name(GATEWAY_MAP_ERR_SYNTAX), "GATEWAY_MAP_ERR_SYNTAX");
}

static void test_parse_rt_bridge_bus(void **state)
{
    (void)state;
    const char *pts = ",\"points\":[{\"name\":\"t\",\"unit\":1,\"function\":4,\"address\":0}]}";
    char text[512];
    snprintf(text, sizeof text,
             "{\"bus\":{\"rt_bridge\":\"9c1b7e22-5f4a-4d83-b0e6-2a7c3d9f8e10\"}%s", pts);
    assert_int_equal(parse(text), GATEWAY_MAP_OK);
    assert_int_equal(m.bus, GATEWAY_BUS_RT_BRIDGE);
    assert_string_equal(m.target, "9c1b7e22-5f4a-4d83-b0e6-2a7c3d9f8e10");
    assert_int_equal(m.baud, 115200); /* the RT core's bus, not a serial port's default */
    snprintf(text, sizeof text, "{\"bus\":{\"rt_bridge\":\"envmon-rt\"}%s", pts);
    assert_int_equal(parse(text), GATEWAY_MAP_ERR_INVALID);
    assert_string_equal(msg, "bus.rt_bridge: the RT component's id, a UUID");
    snprintf(text, sizeof text,
             "{\"bus\":{\"rt_bridge\":\"9c1b7e22-5f4a-4d83-b0e6-2a7c3d9f8e1g\"}%s", pts);
    assert_int_equal(parse(text), GATEWAY_MAP_ERR_INVALID);
    snprintf(text, sizeof text,
             "{\"bus\":{\"rt_bridge\":\"9c1b7e22-5f4a-4d83-b0e6-2a7c3d9f8e10\","
             "\"tcp\":\"h:1\"}%s",
             pts);
    assert_int_equal(parse(text), GATEWAY_MAP_ERR_INVALID);
    assert_string_equal(msg, "bus: give exactly one of rtu_over_tcp, tcp, rtu, rt_bridge");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good_map_fills_defaults),
        cmocka_unit_test(test_parse_serial_bus_options),
        cmocka_unit_test(test_parse_mistakes_are_refused_with_where),
        cmocka_unit_test(test_parse_rt_bridge_bus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

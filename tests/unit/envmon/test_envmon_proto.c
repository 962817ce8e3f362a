/* The envmon intercore protocol: round trips, and refusal of payloads the other core could
 * send by mistake or malice (wrong size, version, values no sensor or actuator produces). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "envmon_proto.h"

static envmon_env sample(void)
{
    return (envmon_env){.seq = 42,
                        .time_us = 0x123456789abull,
                        .temp_mc = -12345,
                        .humidity_cp = 4567,
                        .pressure_pa = 101325,
                        .hvac = ENVMON_HVAC_COOLING,
                        .sensor_ok = 1};
}

static void test_env_decode_of_encoded_round_trips(void **state)
{
    (void)state;
    envmon_env in = sample(), out;
    uint8_t buf[ENVMON_ENV_BYTES];
    envmon_env_encode(&in, buf);
    assert_int_equal(envmon_env_decode(buf, sizeof buf, &out), ENVMON_PROTO_OK);
    assert_int_equal(out.seq, in.seq);
    assert_int_equal(out.time_us, in.time_us);
    assert_int_equal(out.temp_mc, in.temp_mc);
    assert_int_equal(out.humidity_cp, in.humidity_cp);
    assert_int_equal(out.pressure_pa, in.pressure_pa);
    assert_int_equal(out.hvac, in.hvac);
    assert_int_equal(out.sensor_ok, in.sensor_ok);
    assert_int_equal(buf[16], 0xc7); /* -12345 little-endian: c7 cf ff ff */
    assert_int_equal(buf[19], 0xff);
}

static void test_env_decode_bad_payload_is_refused_and_output_untouched(void **state)
{
    (void)state;
    envmon_env in = sample(), out = {.seq = 7};
    uint8_t buf[ENVMON_ENV_BYTES + 1];
    envmon_env_encode(&in, buf);
    assert_int_equal(envmon_env_decode(buf, ENVMON_ENV_BYTES - 1, &out), ENVMON_PROTO_ERR_LENGTH);
    assert_int_equal(envmon_env_decode(buf, ENVMON_ENV_BYTES + 1, &out), ENVMON_PROTO_ERR_LENGTH);
    buf[0] = 2;
    assert_int_equal(envmon_env_decode(buf, ENVMON_ENV_BYTES, &out), ENVMON_PROTO_ERR_VERSION);
    in.temp_mc = 95000; /* hotter than any room */
    envmon_env_encode(&in, buf);
    assert_int_equal(envmon_env_decode(buf, ENVMON_ENV_BYTES, &out), ENVMON_PROTO_ERR_RANGE);
    in = sample();
    in.hvac = 3;
    envmon_env_encode(&in, buf);
    assert_int_equal(envmon_env_decode(buf, ENVMON_ENV_BYTES, &out), ENVMON_PROTO_ERR_RANGE);
    in = sample();
    in.pressure_pa = 0;
    envmon_env_encode(&in, buf);
    assert_int_equal(envmon_env_decode(buf, ENVMON_ENV_BYTES, &out), ENVMON_PROTO_ERR_RANGE);
    assert_int_equal(out.seq, 7);
}

static void test_env_decode_no_sample_yet_is_accepted(void **state)
{
    (void)state;
    envmon_env in = {0}, out;
    uint8_t buf[ENVMON_ENV_BYTES];
    envmon_env_encode(&in, buf);
    assert_int_equal(envmon_env_decode(buf, sizeof buf, &out), ENVMON_PROTO_OK);
    assert_int_equal(out.seq, 0);
    in.sensor_ok = 1; /* "no sample" cannot claim a good read */
    envmon_env_encode(&in, buf);
    assert_int_equal(envmon_env_decode(buf, sizeof buf, &out), ENVMON_PROTO_ERR_RANGE);
}

static void test_hvac_messages_round_trip_and_refuse_garbage(void **state)
{
    (void)state;
    uint8_t buf[ENVMON_HVAC_SET_BYTES];
    uint8_t mode = 0xff;
    envmon_hvac_set_encode(ENVMON_HVAC_HEATING, buf);
    assert_int_equal(envmon_hvac_set_decode(buf, sizeof buf, &mode), ENVMON_PROTO_OK);
    assert_int_equal(mode, ENVMON_HVAC_HEATING);
    assert_int_equal(envmon_hvac_set_decode(buf, 3, &mode), ENVMON_PROTO_ERR_LENGTH);
    envmon_hvac_ack a = {.hvac = ENVMON_HVAC_OFF, .status = 1}, b;
    uint8_t ack[ENVMON_HVAC_ACK_BYTES];
    envmon_hvac_ack_encode(&a, ack);
    assert_int_equal(envmon_hvac_ack_decode(ack, sizeof ack, &b), ENVMON_PROTO_OK);
    assert_int_equal(b.hvac, ENVMON_HVAC_OFF);
    assert_int_equal(b.status, 1);
    ack[2] = 9;
    assert_int_equal(envmon_hvac_ack_decode(ack, sizeof ack, &b), ENVMON_PROTO_ERR_RANGE);
    ack[0] = 0;
    assert_int_equal(envmon_hvac_ack_decode(ack, sizeof ack, &b), ENVMON_PROTO_ERR_VERSION);
    assert_string_equal(envmon_proto_err_name(ENVMON_PROTO_ERR_RANGE), "ENVMON_PROTO_ERR_RANGE");
    assert_string_equal(envmon_proto_err_name((envmon_proto_err)99), "ENVMON_PROTO_ERR_UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_decode_of_encoded_round_trips),
        cmocka_unit_test(test_env_decode_bad_payload_is_refused_and_output_untouched),
        cmocka_unit_test(test_env_decode_no_sample_yet_is_accepted),
        cmocka_unit_test(test_hvac_messages_round_trip_and_refuse_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Encoding and checking of the envmon intercore messages; layouts in envmon_proto.h.
 *
 * ENV_DATA (32 bytes): version u8, hvac u8, sensor_ok u8, reserved u8, seq u32, time_us u64,
 * temp_mc i32, humidity_cp u32, pressure_pa u32, reserved u32.
 * HVAC_SET (4 bytes): version u8, mode u8, reserved u16.
 * HVAC_ACK (4 bytes): version u8, mode u8, status u8, reserved u8. */
#include "envmon_proto.h"

const char *envmon_proto_err_name(envmon_proto_err e)
{
    static const char *const names[ENVMON_PROTO_ERR_COUNT] = {
        [ENVMON_PROTO_OK] = "ENVMON_PROTO_OK",
        [ENVMON_PROTO_ERR_LENGTH] = "ENVMON_PROTO_ERR_LENGTH",
        [ENVMON_PROTO_ERR_VERSION] = "ENVMON_PROTO_ERR_VERSION",
        [ENVMON_PROTO_ERR_RANGE] = "ENVMON_PROTO_ERR_RANGE",
    };
    return (unsigned)e < ENVMON_PROTO_ERR_COUNT ? names[e] : "ENVMON_PROTO_ERR_UNKNOWN";
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void envmon_env_encode(const envmon_env *e, uint8_t out[ENVMON_ENV_BYTES])
{
    out[0] = ENVMON_PROTO_VERSION;
    out[1] = e->hvac;
    out[2] = e->sensor_ok;
    out[3] = 0;
    put32(out + 4, e->seq);
    put32(out + 8, (uint32_t)e->time_us);
    put32(out + 12, (uint32_t)(e->time_us >> 32));
    put32(out + 16, (uint32_t)e->temp_mc);
    put32(out + 20, e->humidity_cp);
    put32(out + 24, e->pressure_pa);
    put32(out + 28, 0);
}

envmon_proto_err envmon_env_decode(const void *buf, size_t len, envmon_env *out)
{
    const uint8_t *p = buf;
    if (len != ENVMON_ENV_BYTES) {
        return ENVMON_PROTO_ERR_LENGTH;
    }
    if (p[0] != ENVMON_PROTO_VERSION) {
        return ENVMON_PROTO_ERR_VERSION;
    }
    envmon_env e = {
        .hvac = p[1],
        .sensor_ok = p[2],
        .seq = get32(p + 4),
        .time_us = (uint64_t)get32(p + 8) | (uint64_t)get32(p + 12) << 32,
        .temp_mc = (int32_t)get32(p + 16),
        .humidity_cp = get32(p + 20),
        .pressure_pa = get32(p + 24),
    };
    if (e.hvac > ENVMON_HVAC_COOLING || e.sensor_ok > 1) {
        return ENVMON_PROTO_ERR_RANGE;
    }
    /* seq 0: no sample yet, the readings are zero and mean nothing (sensor_ok is 0) */
    if (e.seq == 0 ? e.sensor_ok != 0
                   : (e.temp_mc < -60000 || e.temp_mc > 90000 || e.humidity_cp > 10000 ||
                      e.pressure_pa < 30000 || e.pressure_pa > 120000)) {
        return ENVMON_PROTO_ERR_RANGE;
    }
    *out = e;
    return ENVMON_PROTO_OK;
}

void envmon_hvac_set_encode(uint8_t mode, uint8_t out[ENVMON_HVAC_SET_BYTES])
{
    out[0] = ENVMON_PROTO_VERSION;
    out[1] = mode;
    out[2] = out[3] = 0;
}

envmon_proto_err envmon_hvac_set_decode(const void *buf, size_t len, uint8_t *mode)
{
    const uint8_t *p = buf;
    if (len != ENVMON_HVAC_SET_BYTES) {
        return ENVMON_PROTO_ERR_LENGTH;
    }
    if (p[0] != ENVMON_PROTO_VERSION) {
        return ENVMON_PROTO_ERR_VERSION;
    }
    *mode = p[1];
    return ENVMON_PROTO_OK;
}

void envmon_hvac_ack_encode(const envmon_hvac_ack *a, uint8_t out[ENVMON_HVAC_ACK_BYTES])
{
    out[0] = ENVMON_PROTO_VERSION;
    out[1] = a->hvac;
    out[2] = a->status;
    out[3] = 0;
}

envmon_proto_err envmon_hvac_ack_decode(const void *buf, size_t len, envmon_hvac_ack *out)
{
    const uint8_t *p = buf;
    if (len != ENVMON_HVAC_ACK_BYTES) {
        return ENVMON_PROTO_ERR_LENGTH;
    }
    if (p[0] != ENVMON_PROTO_VERSION) {
        return ENVMON_PROTO_ERR_VERSION;
    }
    if (p[1] > ENVMON_HVAC_COOLING || p[2] > 1) {
        return ENVMON_PROTO_ERR_RANGE;
    }
    out->hvac = p[1];
    out->status = p[2];
    return ENVMON_PROTO_OK;
}

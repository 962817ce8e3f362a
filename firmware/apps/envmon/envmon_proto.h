/* The environment monitor's intercore protocol: what the high-level app (apps/envmon) and the
 * real-time firmware (firmware/apps/envmon) say to each other over their channel.
 *
 * Two requests, each answered by one reply carrying the request's correlation id:
 *   ENV_GET  (empty)        -> ENV_DATA  the latest sample the sensor thread took
 *   HVAC_SET (1 byte: mode) -> HVAC_ACK  the mode the actuator now has, and a status
 * Payloads are fixed-size, little-endian, encoded and decoded byte by byte (never by casting a
 * struct), so both cores agree whatever their compilers do. A payload from the other core is
 * untrusted: the decoders check the length, the version and every value's range. No I/O here:
 * this file builds for the host, the simulator and the Cortex-M. */
#ifndef KEEL_ENVMON_PROTO_H
#define KEEL_ENVMON_PROTO_H

#include <stddef.h>
#include <stdint.h>

enum envmon_msg_type {
    ENVMON_MSG_ENV_GET = 0x0101,
    ENVMON_MSG_ENV_DATA = 0x0102,
    ENVMON_MSG_HVAC_SET = 0x0103,
    ENVMON_MSG_HVAC_ACK = 0x0104,
};

#define ENVMON_PROTO_VERSION 1u
#define ENVMON_ENV_BYTES 32u
#define ENVMON_HVAC_SET_BYTES 4u
#define ENVMON_HVAC_ACK_BYTES 4u

/* Operating modes of the HVAC actuator (same numbering as the control law's hvac_mode). */
enum envmon_hvac { ENVMON_HVAC_OFF = 0, ENVMON_HVAC_HEATING = 1, ENVMON_HVAC_COOLING = 2 };

typedef enum envmon_proto_err {
    ENVMON_PROTO_OK = 0,
    ENVMON_PROTO_ERR_LENGTH,  /* payload is not the size this message has */
    ENVMON_PROTO_ERR_VERSION, /* a protocol version this side does not speak */
    ENVMON_PROTO_ERR_RANGE,   /* a value outside what a sensor or actuator can report */
    ENVMON_PROTO_ERR_COUNT
} envmon_proto_err;

const char *envmon_proto_err_name(envmon_proto_err e);

/* One environment sample, in integer units so the RT core needs no floating point. */
typedef struct envmon_env {
    uint32_t seq;         /* samples taken since the firmware started; 0 = none yet (the
                           * readings are then meaningless and sensor_ok is 0) */
    uint64_t time_us;     /* RT core time of the sample */
    int32_t temp_mc;      /* temperature, milli-degrees Celsius, -60000..90000 */
    uint32_t humidity_cp; /* relative humidity, centi-percent, 0..10000 */
    uint32_t pressure_pa; /* pressure, pascal, 30000..120000 */
    uint8_t hvac;         /* envmon_hvac the actuator has now */
    uint8_t sensor_ok;    /* 0 if the last read failed (values are the previous ones) */
} envmon_env;

typedef struct envmon_hvac_ack {
    uint8_t hvac;   /* the mode applied */
    uint8_t status; /* 0 applied, 1 refused (unknown mode) */
} envmon_hvac_ack;

void envmon_env_encode(const envmon_env *e, uint8_t out[ENVMON_ENV_BYTES]);
envmon_proto_err envmon_env_decode(const void *buf, size_t len, envmon_env *out);

void envmon_hvac_set_encode(uint8_t mode, uint8_t out[ENVMON_HVAC_SET_BYTES]);
/* The RT side's parser: the mode is range-checked by the caller's actuator, not here, so a
 * bad mode can be acknowledged as refused. */
envmon_proto_err envmon_hvac_set_decode(const void *buf, size_t len, uint8_t *mode);

void envmon_hvac_ack_encode(const envmon_hvac_ack *a, uint8_t out[ENVMON_HVAC_ACK_BYTES]);
envmon_proto_err envmon_hvac_ack_decode(const void *buf, size_t len, envmon_hvac_ack *out);

#endif

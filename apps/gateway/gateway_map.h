/* The MODBUS gateway's poll map (seed 002): which bus to use and which registers to read,
 * from the app's config file, checked strictly (a misspelt key is an error, not a silent
 * default) with messages that name the entry: `points[2].unit: 0 is not a slave address`.
 *
 *   {"bus": {"rtu_over_tcp": "127.0.0.1:1502"}            (or "tcp": "host:port",
 *                                                          or "rtu": "/dev/ttyUSB0" with
 *                                                          "baud", "parity", "stop", "rs485",
 *                                                          or "rt_bridge": "<RT component id>":
 *                                                          the RT core's line driver over the
 *                                                          intercore channel, gateway_bus.h)
 *    "period_ms": 2000,
 *    "points": [{"name": "roomTemperature", "unit": 1, "function": 4, "address": 0,
 *                "scale": 0.01, "signed": true}, ...]}
 *
 * A point reads one register with FC 3 (holding) or FC 4 (input); value = raw * scale +
 * offset, raw taken as int16 when "signed". No I/O in the parser (fuzzed). */
#ifndef KEEL_GATEWAY_MAP_H
#define KEEL_GATEWAY_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GATEWAY_MAX_POINTS 64
#define GATEWAY_NAME_MAX 48

typedef enum gateway_bus_kind {
    GATEWAY_BUS_RTU_OVER_TCP = 0,
    GATEWAY_BUS_TCP,
    GATEWAY_BUS_RTU,
    GATEWAY_BUS_RT_BRIDGE
} gateway_bus_kind;

typedef struct gateway_point {
    char name[GATEWAY_NAME_MAX];
    uint8_t unit;
    uint8_t function; /* 3 or 4 */
    uint16_t address;
    double scale, offset;
    bool is_signed;
} gateway_point;

typedef struct gateway_map {
    gateway_bus_kind bus;
    char target[128]; /* host:port, device path, or the RT component's id (rt_bridge) */
    uint32_t baud;
    char parity; /* 'N', 'E', 'O' */
    uint8_t stop_bits;
    bool rs485;
    uint32_t period_ms;
    size_t n_points;
    gateway_point points[GATEWAY_MAX_POINTS];
} gateway_map;

typedef enum gateway_map_err {
    GATEWAY_MAP_OK = 0,
    GATEWAY_MAP_ERR_SYNTAX,  /* not JSON */
    GATEWAY_MAP_ERR_INVALID, /* a key missing, unknown, of the wrong type or out of range */
    GATEWAY_MAP_ERR_COUNT
} gateway_map_err;

const char *gateway_map_err_name(gateway_map_err e);

/* Parses the config text (len bytes; keys other than "bus", "period_ms", "points" and "cloud"
 * at the top level are errors). msg gets "where: what" on failure. */
gateway_map_err gateway_map_parse(const char *text, size_t len, gateway_map *out, char *msg,
                                  size_t cap);

/* The value of a point from its raw register. */
double gateway_point_value(const gateway_point *p, uint16_t raw);

#endif

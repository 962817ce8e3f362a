/* MODBUS RTU slave devices on the simulated RS485 bus: a generic device (a register map, its
 * own UART on the bus, its own reply latency and driver-enable release delay), and two
 * products built on it: a temperature/humidity/pressure sensor and a relay/HVAC actuator.
 *
 * A device behaves like a small MCU slave: it frames a request by its length as bytes arrive
 * (t3.5 silence as the fallback), answers after `latency_ns` measured from the request's last
 * stop bit, raises its DE just before its first start bit, and drops DE `de_release_ns` after
 * its own last stop bit. Its holding registers, coils and file records persist in a file, so
 * restarting the simulated world is a power cycle. */
#ifndef KEEL_SIM_MODBUS_DEV_H
#define KEEL_SIM_MODBUS_DEV_H

#include <stdbool.h>
#include <stdint.h>

#include "keel/modbus.h"
#include "sim_rs485.h"
#include "sim_uart.h"

typedef struct sim_modbus_dev {
    const char *name;
    sim_uart uart;
    sim_rs485_bus *bus;
    int node;
    keel_modbus_slave slave;
    keel_modbus_map map;
    uint64_t latency_ns, de_release_ns;
    const char *state_path; /* persistent state (NULL: none) */
    /* receive */
    uint8_t rx[KEEL_MODBUS_MAX_RTU_ADU + 8];
    size_t rx_len;
    bool wait_silence; /* a frame ended by length: skip bytes until t3.5 silence */
    /* transmit */
    uint8_t tx[KEEL_MODBUS_MAX_RTU_ADU];
    size_t tx_len, tx_pos;
    bool sending;
    keel_sim_event reply_ev, de_ev;
    uint64_t replies, ignored;
    /* Optional: called after each request the slave core took (the reply, if any, is already
     * built), e.g. to run a restart a bootloader asked for. */
    void (*after_frame)(void *ctx);
    void *after_ctx;
} sim_modbus_dev;

/* The map is the caller's (the device serves it); state_path may be NULL. Loads persisted
 * state if the file exists. */
int sim_modbus_dev_init(sim_modbus_dev *d, const char *name, sim_rs485_bus *bus,
                        const keel_modbus_line *line, uint8_t unit, const keel_modbus_map *map,
                        uint64_t latency_ns, const char *state_path);
/* Serves another data model instead of the map (e.g. the sensor bootloader's update profile
 * in sim/sensor-boot, whose handlers are keel_modbus_model callbacks). */
void sim_modbus_dev_set_model(sim_modbus_dev *d, const keel_modbus_model *model, void *ctx);
/* Writes the persistent state (called after every write the device accepts). */
int sim_modbus_dev_save(sim_modbus_dev *d);

/* The sensor: input registers 0..2 = temperature (0.01 degC, signed), relative humidity
 * (0.01 %), pressure (0.1 hPa); holding 0..1 = sampling period (s), calibration offset
 * (0.01 degC, signed); file 1 (1000 records) receives firmware images (FC 21). */
typedef struct sim_sensor {
    sim_modbus_dev dev;
    uint8_t coils[1];
    uint16_t holding[2], input[3], file_data[1000];
    keel_modbus_file file;
} sim_sensor;

int sim_sensor_init(sim_sensor *s, sim_rs485_bus *bus, const keel_modbus_line *line, uint8_t unit,
                    uint64_t latency_ns, const char *state_path);
/* The measured room (degC, %, hPa): what the next read returns. */
void sim_sensor_set(sim_sensor *s, double temp_c, double rh, double hpa);

/* The actuator: coils 0..3 = relays (heat, cool, fan, humidifier); holding 0..1 = mode
 * (0 off, 1 heat, 2 cool, 3 auto), setpoint (0.01 degC). */
typedef struct sim_actuator {
    sim_modbus_dev dev;
    uint8_t coils[4];
    uint16_t holding[2];
} sim_actuator;

int sim_actuator_init(sim_actuator *a, sim_rs485_bus *bus, const keel_modbus_line *line,
                      uint8_t unit, uint64_t latency_ns, const char *state_path);

#endif

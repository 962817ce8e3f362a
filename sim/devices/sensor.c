/* The temperature/humidity/pressure sensor and the relay/HVAC actuator: register maps on the
 * generic device (modbus_dev.c). Their identification answers FC 43/14 like a product would. */
#include <math.h>
#include <string.h>

#include "modbus_dev.h"

int sim_sensor_init(sim_sensor *s, sim_rs485_bus *bus, const keel_modbus_line *line, uint8_t unit,
                    uint64_t latency_ns, const char *state_path)
{
    memset(s, 0, sizeof *s);
    s->holding[0] = 10;
    s->file = (keel_modbus_file){1, 1000, s->file_data};
    keel_modbus_map m = {0};
    m.coil_count = 1, m.coils = s->coils;
    m.holding_count = 2, m.holding = s->holding;
    m.input_count = 3, m.input = s->input;
    m.files = &s->file, m.file_count = 1;
    m.ident[0] = "Keel";
    m.ident[1] = "KS-THP";
    m.ident[2] = "1.0";
    m.ident[4] = "temperature/humidity/pressure sensor";
    int rc = sim_modbus_dev_init(&s->dev, "sensor", bus, line, unit, &m, latency_ns, state_path);
    sim_sensor_set(s, 21.5, 45.0, 1013.2);
    return rc;
}

void sim_sensor_set(sim_sensor *s, double temp_c, double rh, double hpa)
{
    int16_t cal = (int16_t)s->dev.map.holding[1];
    s->input[0] = (uint16_t)(int16_t)lround(temp_c * 100.0 + cal);
    s->input[1] = (uint16_t)lround(rh * 100.0);
    s->input[2] = (uint16_t)lround(hpa * 10.0);
}

int sim_actuator_init(sim_actuator *a, sim_rs485_bus *bus, const keel_modbus_line *line,
                      uint8_t unit, uint64_t latency_ns, const char *state_path)
{
    memset(a, 0, sizeof *a);
    a->holding[1] = 2100;
    keel_modbus_map m = {0};
    m.coil_count = 4, m.coils = a->coils;
    m.holding_count = 2, m.holding = a->holding;
    m.ident[0] = "Keel";
    m.ident[1] = "KA-HVAC";
    m.ident[2] = "1.0";
    m.ident[4] = "relay/HVAC actuator";
    return sim_modbus_dev_init(&a->dev, "actuator", bus, line, unit, &m, latency_ns, state_path);
}

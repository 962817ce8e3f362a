/* Thermostat with hysteresis; see hvac_control.h. */
#include "hvac_control.h"

#include <math.h>

#define HVAC_MIN_SETPOINT_C 5.0
#define HVAC_MAX_SETPOINT_C 35.0

const char *hvac_mode_name(hvac_mode m)
{
    switch (m) {
    case HVAC_HEATING:
        return "heating";
    case HVAC_COOLING:
        return "cooling";
    case HVAC_OFF:
    default:
        return "off";
    }
}

void hvac_control_init(hvac_control *c, double band_c)
{
    c->setpoint_c = 0.0;
    c->band_c = band_c > 0.0 ? band_c : 0.25;
    c->has_setpoint = false;
    c->mode = HVAC_OFF;
}

bool hvac_control_set_target(hvac_control *c, double setpoint_c)
{
    if (!isfinite(setpoint_c) || setpoint_c < HVAC_MIN_SETPOINT_C ||
        setpoint_c > HVAC_MAX_SETPOINT_C) {
        return false;
    }
    c->setpoint_c = setpoint_c;
    c->has_setpoint = true;
    return true;
}

hvac_mode hvac_control_update(hvac_control *c, double temp_c)
{
    if (!c->has_setpoint || !isfinite(temp_c)) {
        c->mode = HVAC_OFF; /* no target, or a broken sensor: do nothing rather than guess */
        return c->mode;
    }
    double lo = c->setpoint_c - c->band_c, hi = c->setpoint_c + c->band_c;
    switch (c->mode) {
    case HVAC_HEATING:
        if (temp_c >= c->setpoint_c) {
            c->mode = temp_c > hi ? HVAC_COOLING : HVAC_OFF;
        }
        break;
    case HVAC_COOLING:
        if (temp_c <= c->setpoint_c) {
            c->mode = temp_c < lo ? HVAC_HEATING : HVAC_OFF;
        }
        break;
    case HVAC_OFF:
    default:
        c->mode = temp_c < lo ? HVAC_HEATING : temp_c > hi ? HVAC_COOLING : HVAC_OFF;
        break;
    }
    return c->mode;
}

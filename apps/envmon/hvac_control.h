/* HVAC control law of the environment monitor: a thermostat with hysteresis.
 *
 * The unit starts heating when the room falls `band` below the setpoint and stops at the
 * setpoint; cooling is the mirror image. Stopping at the setpoint (not at setpoint + band)
 * keeps the room inside setpoint +- band, and the band keeps the unit from chattering on the
 * sensor's noise. No I/O: the app feeds readings, gets the mode to apply and report.
 */
#ifndef KEEL_ENVMON_HVAC_CONTROL_H
#define KEEL_ENVMON_HVAC_CONTROL_H

#include <stdbool.h>

typedef enum hvac_mode {
    HVAC_OFF = 0,
    HVAC_HEATING,
    HVAC_COOLING,
} hvac_mode;

typedef struct hvac_control {
    double setpoint_c;
    double band_c;      /* hysteresis half-width, > 0 */
    bool has_setpoint;  /* until the cloud (or the cached twin) sets one, the unit stays off */
    hvac_mode mode;
} hvac_control;

/* "off", "heating", "cooling": the names reported as the hvacMode property. */
const char *hvac_mode_name(hvac_mode m);

void hvac_control_init(hvac_control *c, double band_c);
/* A new setpoint takes effect at the next reading. Returns false for a value outside
 * 5..35 °C (refused, as a writable-property ack with an error status). */
bool hvac_control_set_target(hvac_control *c, double setpoint_c);
/* Feeds a temperature reading; returns the mode to apply now. */
hvac_mode hvac_control_update(hvac_control *c, double temp_c);

#endif

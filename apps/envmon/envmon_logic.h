/* The environment monitor's decisions, without I/O (seed 000, steps 4 to 6): what to do with a
 * sample from the RT core (the HVAC mode to apply, the telemetry to send, the hvacMode property
 * to report) and with a desired-properties document from the cloud (the targetTemperature to
 * adopt, and its IoT Plug and Play acknowledgement: {"targetTemperature": {"value": 21.5,
 * "ac": 200, "av": <version>, "ad": "applied"}}, or ac 400 for a value the thermostat refuses).
 * envmon_main.c does the talking; this file is tested on its own. */
#ifndef KEEL_ENVMON_LOGIC_H
#define KEEL_ENVMON_LOGIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envmon_proto.h"
#include "hvac_control.h"

typedef struct envmon_logic {
    hvac_control ctl;
    int64_t acked_version; /* desired version last acknowledged, -1 none */
    bool mode_reported;    /* hvacMode has been reported at least once */
    hvac_mode reported;    /* ... with this value */
    uint32_t last_seq;     /* RT sample seq last used, so a repeated sample is not resent */
} envmon_logic;

void envmon_logic_init(envmon_logic *l, double band_c);

/* A desired document (JSON object, len bytes) at `version`. If it carries targetTemperature
 * and the version is new, adopts the value (when the thermostat accepts it) and writes the
 * acknowledgement patch into ack (cap bytes): returns 1. Returns 0 when there is nothing to
 * acknowledge (no such member, or a version already acknowledged), -1 when the document is not
 * JSON or the ack does not fit. */
int envmon_logic_desired(envmon_logic *l, const char *json, size_t len, int64_t version, char *ack,
                         size_t cap);

/* A sample from the RT core: returns the HVAC mode to apply now. A sample with seq 0 (none
 * taken yet) or a failed read leaves the mode as it is, except that a failed read stops the
 * HVAC (the control law does nothing rather than guess). */
hvac_mode envmon_logic_sample(envmon_logic *l, const envmon_env *e);

/* Telemetry for a sample: {"temperature":21.53,"humidity":45.21,"pressure":1013.25,
 * "hvacMode":"heating","targetTemperature":22,"sample":17}. Returns the length, or -1 if it
 * does not fit, or 0 if this sample was already sent (same seq) or is not a reading. */
int envmon_logic_telemetry(envmon_logic *l, const envmon_env *e, hvac_mode applied, char *buf,
                           size_t cap);

/* The hvacMode report {"hvacMode":"heating"} when the applied mode differs from the last one
 * reported (or none was): returns its length, 0 when there is nothing new, -1 if no room. */
int envmon_logic_mode_report(envmon_logic *l, hvac_mode applied, char *buf, size_t cap);

#endif

/* The room the environment monitor keeps warm: a first-order thermal model in virtual time.
 *
 *   dT/dt = (T_outside - T) / tau + hvac_rate(mode)
 *
 * Heating and cooling add a constant rate (an HVAC unit of fixed power); the walls pull the room
 * towards the outside temperature with time constant tau. Relative humidity follows
 * temperature (warmer air holds more water, so RH falls as the room heats); pressure drifts
 * slowly around its mean with a seeded random walk. No I/O except room_save/room_load, which
 * persist the state so that restarting the simulator is a power cycle, not a reset of physics.
 */
#ifndef KEEL_SIM_ROOM_H
#define KEEL_SIM_ROOM_H

#include <stdint.h>

typedef enum room_hvac {
    ROOM_HVAC_OFF = 0,
    ROOM_HVAC_HEATING,
    ROOM_HVAC_COOLING,
} room_hvac;

typedef struct room_params {
    double outside_c;       /* temperature outside the walls */
    double tau_s;           /* wall time constant, seconds */
    double heat_c_per_s;    /* heating rate at full power */
    double cool_c_per_s;    /* cooling rate at full power (positive number) */
    double pressure_hpa;    /* mean pressure */
    uint64_t seed;          /* pressure drift; the same seed gives the same run */
} room_params;

typedef struct room_state {
    double temp_c;
    double humidity_pct;
    double pressure_hpa;
    uint64_t time_us;       /* virtual time of this state */
    uint64_t rng;
} room_state;

typedef enum room_err {
    ROOM_OK = 0,
    ROOM_ERR_IO,
    ROOM_ERR_FORMAT,
    ROOM_ERR_COUNT
} room_err;

const char *room_err_name(room_err e);

/* Defaults: a room at 18 °C, 8 °C outside, a one-hour wall constant, an HVAC unit that moves
 * the room about 0.3 °C per minute. */
room_params room_default_params(void);
void room_init(room_state *s, const room_params *p, double temp_c);

/* Advances the room to virtual time `now_us` with the HVAC in `mode` since the last step. */
void room_advance(room_state *s, const room_params *p, room_hvac mode, uint64_t now_us);

/* Persists the state atomically (temp file, fsync, rename) / restores it. */
room_err room_save(const room_state *s, const char *path);
room_err room_load(room_state *s, const char *path);

#endif

/* The simulated world outside the connected core, in one virtual time (DESIGN.md, "The
 * simulated world"): the real-time core running the environment monitor firmware on the RTOS
 * sim port, its peripherals (a temperature/humidity/pressure sensor that reads the room, an
 * HVAC actuator that drives it, the intercore doorbells as virtual interrupts, a UART with a
 * driver-enable GPIO on an RS485 bus) and the room.
 *
 * The RS485 bus (when world_config.bus is given) is bit-exact (sim/uart, sim/rs485): the RT
 * core's UART is one node, driven by the firmware's line driver and the RS485 bridge thread
 * (firmware/apps/envmon/bridge_rt.h) that serves the gateway app on its own channel; the room
 * sensor (unit 1) and the supply-air sensor (unit 2) are the others (sim/devices), each with
 * its own reply latency, answering from fieldbus.h's models.
 *
 * This is the world as a library, so tests drive it in virtual time without a process or a
 * clock; keel-sim (world_main.c) wraps it with pacing, sockets and signals. One world exists
 * at a time (the RTOS sim port is a singleton). The room's state persists in
 * <state_dir>/room.state: restarting the world is a power cycle, not a reset of physics. */
#ifndef KEEL_SIM_WORLD_H
#define KEEL_SIM_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envmon_proto.h"
#include "keel/icc.h"
#include "room.h"

struct fieldbus;

typedef enum world_err {
    WORLD_OK = 0,
    WORLD_ERR_BUSY,    /* a world (or another simulation) already exists */
    WORLD_ERR_CHANNEL, /* the channel end cannot be mapped or attached */
    WORLD_ERR_RTOS,    /* the firmware could not start its threads */
    WORLD_ERR_STATE,   /* the room's state file cannot be written */
    WORLD_ERR_COUNT
} world_err;

const char *world_err_name(world_err e);

typedef struct world_config {
    const char *state_dir; /* room.state lives here; NULL: nothing persists */
    double start_temp_c;   /* the room's temperature when there is no saved state */
    room_params room;      /* room_default_params() unless a test wants another room */
    uint64_t seed;         /* sensor noise and RTOS randomness */
    double sensor_noise_c; /* peak sensor noise, default 0 (set 0.05 for realism) */
    /* The RS485 bus: NULL for none. The sensors' models (not taken: the caller closes it
     * after world_destroy). */
    struct fieldbus *bus;
    uint32_t bus_baud;          /* default 115200 (8E1) */
    uint32_t room_latency_us;   /* unit 1's reply latency, default 1500 */
    uint32_t supply_latency_us; /* unit 2's, default 4000 */
    keel_icc_end *bridge_end;   /* the gateway's channel, RT end (taken); NULL: no bridge */
} world_config;

world_config world_config_default(void);

/* What the world looks like now (from the host, between runs). */
typedef struct world_status {
    uint64_t time_us; /* virtual time */
    double room_temp_c, room_humidity_pct, room_pressure_hpa;
    uint8_t hvac;          /* envmon_hvac the actuator has */
    envmon_env latest;     /* the firmware's latest sample */
    uint32_t requests;     /* intercore requests the firmware took */
    uint32_t bad_requests; /* ... that it refused */
    uint32_t hvac_changes; /* times the actuator changed mode */
    int chan_err;          /* keel_icc_err that stopped the service thread, 0 while it runs */
    /* the RS485 bus and the bridge (zero without them) */
    bool bus, bridge;
    uint32_t bridge_requests, bridge_sent, bridge_timeouts, bridge_line_errors, bridge_refused;
    int bridge_chan_err; /* keel_icc_err that stopped the bridge thread */
    uint64_t bus_chars, bus_collisions, bus_garbled;
    uint64_t room_replies, supply_replies;
    uint32_t serial_frames, serial_timeouts; /* the serial server's (keel-sim's TCP port) */
} world_status;

/* Creates the simulation, restores or initialises the room, maps the channel end `rt_end`
 * (the real-time core's end: its fds are taken and closed at destroy) and starts the firmware.
 * rt_end may be NULL: the firmware then samples but has no one to answer. */
KEEL_NODISCARD world_err world_create(const world_config *cfg, keel_icc_end *rt_end);
/* Runs virtual time up to t_us (absolute). */
void world_run_until_us(uint64_t t_us);
uint64_t world_now_us(void);
void world_status_get(world_status *out);
/* The bus's serial server (a second master node: what keel-sim's --modbus-port puts behind
 * its TCP port, sim/devices/serial_master.h): queues a whole RTU frame, sent once the line is
 * idle, the reply collected until t3.5 of silence or timeout_us. false while one is in
 * progress, or without a bus. take: true once, when it finished (status: sim_serial_status,
 * 0 = a reply of *len bytes). */
bool world_serial_submit(const uint8_t *frame, size_t len, uint32_t timeout_us);
bool world_serial_take(uint8_t *out, size_t cap, size_t *len, int *status);
/* Saves the room (if a state dir was given). */
KEEL_NODISCARD world_err world_save(void);
/* Saves, stops the simulation, unmaps and closes the channel end. */
void world_destroy(void);

#endif

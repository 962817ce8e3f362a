/* The environment monitor's real-time firmware (seed 000, steps 1 and 3), on Keel's RTOS:
 *  - the sensor thread wakes every 2 s (a periodic RTOS timer, so sampling does not drift with
 *    the time the read takes), reads temperature, humidity and pressure through the board's
 *    sensor driver, and keeps the latest sample under a mutex;
 *  - the service thread waits on the intercore channel and answers the high-level app: ENV_GET
 *    with the latest sample, HVAC_SET by driving the HVAC actuator and acknowledging the mode.
 * The hardware is reached only through envmon_rt_hw, which each board supplies (the simulator
 * board's reads the room model; a real board's reads an I2C sensor and drives relays), so this
 * file builds unchanged for the host simulator and the Cortex-M. */
#ifndef KEEL_ENVMON_RT_H
#define KEEL_ENVMON_RT_H

#include <stdbool.h>
#include <stdint.h>

#include "envmon_proto.h"
#include "icc_rt.h"
#include "keel/rtos.h"

#define ENVMON_RT_PERIOD_MS 2000u

/* What the board provides. Called from the envmon threads (never from interrupts). */
typedef struct envmon_rt_hw {
    /* Reads one sample into temp/humidity/pressure fields of *out; false if the sensor failed. */
    bool (*sensor_read)(void *ctx, envmon_env *out);
    /* Drives the actuator; false if the mode is not one it has. */
    bool (*hvac_set)(void *ctx, uint8_t mode);
    /* RT core time in microseconds, for the sample's timestamp. */
    uint64_t (*now_us)(void *ctx);
    void *ctx;
} envmon_rt_hw;

#if defined(__arm__) && !defined(__linux__)
#define ENVMON_RT_STACK 2048u
#else
#define ENVMON_RT_STACK (64u * 1024u) /* sim port: host contexts (and sanitizers) need more */
#endif

typedef struct envmon_rt {
    envmon_rt_hw hw;
    keel_icc_rt *chan;
    keel_rtos_mutex lock; /* guards latest, hvac and the counters */
    keel_rtos_sem tick;   /* the timer's 2-second beat */
    keel_rtos_timer timer;
    keel_rtos_thread sensor_thread, service_thread;
    envmon_env latest;
    uint8_t hvac;
    uint32_t requests, bad_requests, read_failures;
    keel_icc_err chan_err; /* why the service thread stopped, KEEL_ICC_OK while it runs */
    _Alignas(16) uint8_t sensor_stack[ENVMON_RT_STACK];
    _Alignas(16) uint8_t service_stack[ENVMON_RT_STACK];
    uint8_t rx[KEEL_ICC_MIN_MSG];
} envmon_rt;

/* Creates the objects and both threads (no service thread if chan is NULL: a board with no
 * connected core); the first sample is taken at once. The actuator is set to off. Returns the first
 * RTOS error. */
KEEL_NODISCARD keel_rtos_err envmon_rt_start(envmon_rt *e, const envmon_rt_hw *hw,
                                             keel_icc_rt *chan);

/* A copy of the latest sample, for tests and the world's status: call from the host between
 * runs (the simulation is stopped, so the copy is consistent), never from inside it. */
void envmon_rt_latest(envmon_rt *e, envmon_env *out);

#endif

/* The RS485 bridge service on the real-time core (seed 002): a thread takes request frames
 * from the gateway app's intercore channel, sends each on the RS485 line with the line driver
 * (firmware/drivers/rs485: DE switched from the UART's TX-complete interrupt, reply framed by
 * the receiver timeout), and answers with the reply frame, a status and the line timestamps
 * (bridge_proto.h). It does not parse MODBUS: the gateway's master builds and checks every
 * frame, so the RT side stays small and the protocol logic lives in one place.
 *
 * It runs in the environment monitor's image (one RT component serves both apps, each on its
 * own channel). The board owns the UART, initialises the driver and routes the UART
 * interrupt to keel_rs485_isr; this file builds unchanged for the sim board and Cortex-M. */
#ifndef KEEL_BRIDGE_RT_H
#define KEEL_BRIDGE_RT_H

#include <stdint.h>

#include "bridge_proto.h"
#include "icc_rt.h"
#include "keel/rtos.h"
#include "rs485.h"

#if defined(__arm__) && !defined(__linux__)
#define BRIDGE_RT_STACK 2048u
#else
#define BRIDGE_RT_STACK (64u * 1024u) /* sim port: host contexts (and sanitizers) need more */
#endif

typedef struct bridge_rt {
    keel_icc_rt *chan;
    keel_rs485 *drv;
    keel_rtos_thread thread;
    /* counters, read from the host between runs (sim) or a debugger */
    uint32_t requests, refused, sent, timeouts, line_errors, overflows;
    keel_icc_err chan_err; /* why the thread stopped, KEEL_ICC_OK while it runs */
    _Alignas(16) uint8_t stack[BRIDGE_RT_STACK];
    uint8_t rx[KEEL_ICC_MIN_MSG]; /* a channel's smallest maximum message: never BUF_SMALL */
    uint8_t reply[BRIDGE_MAX_FRAME];
    uint8_t out[BRIDGE_RESULT_MAX];
} bridge_rt;

/* Starts the bridge thread on an attached channel and an initialised line driver. */
KEEL_NODISCARD keel_rtos_err bridge_rt_start(bridge_rt *b, keel_icc_rt *chan, keel_rs485 *drv);

/* One request through the line, without a channel: decodes `req` (an XFER payload), runs it
 * on the driver and encodes the RESULT into out. Returns the bytes written to out. From an
 * RTOS thread only (it blocks on the driver). The thread uses it; so can a test. */
size_t bridge_rt_handle(bridge_rt *b, const uint8_t *req, size_t len, uint8_t *out, size_t cap);

#endif

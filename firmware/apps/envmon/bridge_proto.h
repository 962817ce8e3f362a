/* The RS485 bridge's intercore protocol (seed 002): what the MODBUS gateway app on the
 * connected core and the RT core's bridge service (bridge_rt.h) say to each other.
 *
 * The gateway's MODBUS master builds every request frame and checks every reply (CRC,
 * function, unit, values); the RT core only moves frames on the RS485 line, with the driver
 * enable switched from its UART interrupts. One request, one reply with its correlation id:
 *   XFER   (8-byte header + a whole RTU frame)   -> RESULT (48-byte header + the reply frame)
 * XFER:   version u8, flags u8 (bit 0: broadcast, no reply awaited), timeout_ms u16 (how long
 *         to wait for the reply's first byte after the request left the wire; 1..10000, 0 for
 *         a broadcast), reserved u32 (0), then the frame (4..256 bytes).
 * RESULT: version u8, status u8 (bridge_status), frame length u16, reserved u32, then five
 *         u64 timestamps in RT core nanoseconds (DE on, TX complete, first and last reply
 *         byte, end of the reply frame at t3.5 of silence; 0 when it did not happen), then
 *         the reply frame: what arrived on the line, unchecked (0..256 bytes).
 * Little-endian, byte by byte (never a cast struct). Everything from the other core is
 * untrusted: the decoders check lengths, the version and ranges. No I/O: this file builds for
 * the host (the gateway, tests, the fuzzer), the simulator and the Cortex-M. */
#ifndef KEEL_BRIDGE_PROTO_H
#define KEEL_BRIDGE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum bridge_msg_type {
    BRIDGE_MSG_XFER = 0x0201,
    BRIDGE_MSG_RESULT = 0x0202,
};

#define BRIDGE_PROTO_VERSION 1u
#define BRIDGE_XFER_HDR 8u
#define BRIDGE_RESULT_HDR 48u
#define BRIDGE_MIN_FRAME 4u   /* unit + function + CRC */
#define BRIDGE_MAX_FRAME 256u /* KEEL_MODBUS_MAX_RTU_ADU */
#define BRIDGE_MAX_TIMEOUT_MS 10000u
#define BRIDGE_XFER_MAX (BRIDGE_XFER_HDR + BRIDGE_MAX_FRAME)
#define BRIDGE_RESULT_MAX (BRIDGE_RESULT_HDR + BRIDGE_MAX_FRAME)
#define BRIDGE_F_BROADCAST 0x01u

/* What happened on the line. */
typedef enum bridge_status {
    BRIDGE_STATUS_OK = 0,   /* a reply frame arrived (its content is the master's to check) */
    BRIDGE_STATUS_TIMEOUT,  /* no reply before the timeout */
    BRIDGE_STATUS_LINE,     /* a character arrived garbled (framing error, collision) */
    BRIDGE_STATUS_OVERFLOW, /* the reply did not fit 256 bytes (what fit is returned) */
    BRIDGE_STATUS_REFUSED,  /* the request itself was malformed: nothing was sent */
    BRIDGE_STATUS_COUNT
} bridge_status;

const char *bridge_status_name(bridge_status s);

typedef enum bridge_proto_err {
    BRIDGE_PROTO_OK = 0,
    BRIDGE_PROTO_ERR_LENGTH,  /* header missing, or a frame outside 4..256 bytes */
    BRIDGE_PROTO_ERR_VERSION, /* a protocol version this side does not speak */
    BRIDGE_PROTO_ERR_RANGE,   /* a field out of range (timeout, flags, status, reserved) */
    BRIDGE_PROTO_ERR_COUNT
} bridge_proto_err;

const char *bridge_proto_err_name(bridge_proto_err e);

typedef struct bridge_xfer {
    uint8_t flags;
    uint16_t timeout_ms;
    const uint8_t *frame; /* points into the decoded buffer */
    size_t frame_len;
} bridge_xfer;

typedef struct bridge_times {
    uint64_t de_on_ns, tx_done_ns, first_rx_ns, last_rx_ns, frame_end_ns;
} bridge_times;

typedef struct bridge_result {
    uint8_t status; /* bridge_status */
    bridge_times t;
    const uint8_t *frame; /* points into the decoded buffer */
    size_t frame_len;
} bridge_result;

/* Encoders return the bytes written to out (0 if the frame does not fit the limits). */
size_t bridge_xfer_encode(const bridge_xfer *x, uint8_t *out, size_t cap);
bridge_proto_err bridge_xfer_decode(const void *buf, size_t len, bridge_xfer *out);

size_t bridge_result_encode(const bridge_result *r, uint8_t *out, size_t cap);
bridge_proto_err bridge_result_decode(const void *buf, size_t len, bridge_result *out);

#endif

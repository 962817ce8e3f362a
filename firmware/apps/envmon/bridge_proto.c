/* Encoding and checking of the RS485 bridge's intercore messages; layouts in bridge_proto.h. */
#include "bridge_proto.h"

#include <string.h>

const char *bridge_status_name(bridge_status s)
{
    static const char *const names[BRIDGE_STATUS_COUNT] = {
        [BRIDGE_STATUS_OK] = "BRIDGE_STATUS_OK",
        [BRIDGE_STATUS_TIMEOUT] = "BRIDGE_STATUS_TIMEOUT",
        [BRIDGE_STATUS_LINE] = "BRIDGE_STATUS_LINE",
        [BRIDGE_STATUS_OVERFLOW] = "BRIDGE_STATUS_OVERFLOW",
        [BRIDGE_STATUS_REFUSED] = "BRIDGE_STATUS_REFUSED",
    };
    return (unsigned)s < BRIDGE_STATUS_COUNT ? names[s] : "BRIDGE_STATUS_UNKNOWN";
}

const char *bridge_proto_err_name(bridge_proto_err e)
{
    static const char *const names[BRIDGE_PROTO_ERR_COUNT] = {
        [BRIDGE_PROTO_OK] = "BRIDGE_PROTO_OK",
        [BRIDGE_PROTO_ERR_LENGTH] = "BRIDGE_PROTO_ERR_LENGTH",
        [BRIDGE_PROTO_ERR_VERSION] = "BRIDGE_PROTO_ERR_VERSION",
        [BRIDGE_PROTO_ERR_RANGE] = "BRIDGE_PROTO_ERR_RANGE",
    };
    return (unsigned)e < BRIDGE_PROTO_ERR_COUNT ? names[e] : "BRIDGE_PROTO_ERR_UNKNOWN";
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

static bool frame_ok(size_t len)
{
    return len >= BRIDGE_MIN_FRAME && len <= BRIDGE_MAX_FRAME;
}

size_t bridge_xfer_encode(const bridge_xfer *x, uint8_t *out, size_t cap)
{
    size_t n = BRIDGE_XFER_HDR + x->frame_len;
    if (!frame_ok(x->frame_len) || n > cap) {
        return 0;
    }
    out[0] = BRIDGE_PROTO_VERSION;
    out[1] = x->flags;
    put16(out + 2, x->timeout_ms);
    memset(out + 4, 0, 4);
    memcpy(out + BRIDGE_XFER_HDR, x->frame, x->frame_len);
    return n;
}

bridge_proto_err bridge_xfer_decode(const void *buf, size_t len, bridge_xfer *out)
{
    const uint8_t *p = buf;
    if (len < BRIDGE_XFER_HDR || !frame_ok(len - BRIDGE_XFER_HDR)) {
        return BRIDGE_PROTO_ERR_LENGTH;
    }
    if (p[0] != BRIDGE_PROTO_VERSION) {
        return BRIDGE_PROTO_ERR_VERSION;
    }
    uint8_t flags = p[1];
    uint16_t timeout = get16(p + 2);
    bool broadcast = (flags & BRIDGE_F_BROADCAST) != 0;
    /* A broadcast awaits nothing; anything else must wait for something, within reason. */
    if ((flags & ~BRIDGE_F_BROADCAST) || p[4] | p[5] | p[6] | p[7] ||
        (broadcast ? timeout != 0 : (timeout == 0 || timeout > BRIDGE_MAX_TIMEOUT_MS))) {
        return BRIDGE_PROTO_ERR_RANGE;
    }
    *out = (bridge_xfer){.flags = flags,
                         .timeout_ms = timeout,
                         .frame = p + BRIDGE_XFER_HDR,
                         .frame_len = len - BRIDGE_XFER_HDR};
    return BRIDGE_PROTO_OK;
}

size_t bridge_result_encode(const bridge_result *r, uint8_t *out, size_t cap)
{
    size_t n = BRIDGE_RESULT_HDR + r->frame_len;
    if (r->frame_len > BRIDGE_MAX_FRAME || n > cap || r->status >= BRIDGE_STATUS_COUNT) {
        return 0;
    }
    out[0] = BRIDGE_PROTO_VERSION;
    out[1] = r->status;
    put16(out + 2, (uint16_t)r->frame_len);
    memset(out + 4, 0, 4);
    put64(out + 8, r->t.de_on_ns);
    put64(out + 16, r->t.tx_done_ns);
    put64(out + 24, r->t.first_rx_ns);
    put64(out + 32, r->t.last_rx_ns);
    put64(out + 40, r->t.frame_end_ns);
    if (r->frame_len) {
        memcpy(out + BRIDGE_RESULT_HDR, r->frame, r->frame_len);
    }
    return n;
}

bridge_proto_err bridge_result_decode(const void *buf, size_t len, bridge_result *out)
{
    const uint8_t *p = buf;
    if (len < BRIDGE_RESULT_HDR || len - BRIDGE_RESULT_HDR > BRIDGE_MAX_FRAME) {
        return BRIDGE_PROTO_ERR_LENGTH;
    }
    if (p[0] != BRIDGE_PROTO_VERSION) {
        return BRIDGE_PROTO_ERR_VERSION;
    }
    if (get16(p + 2) != len - BRIDGE_RESULT_HDR) {
        return BRIDGE_PROTO_ERR_LENGTH;
    }
    if (p[1] >= BRIDGE_STATUS_COUNT || p[4] | p[5] | p[6] | p[7]) {
        return BRIDGE_PROTO_ERR_RANGE;
    }
    bridge_result r = {
        .status = p[1],
        .t = {get64(p + 8), get64(p + 16), get64(p + 24), get64(p + 32), get64(p + 40)},
        .frame = p + BRIDGE_RESULT_HDR,
        .frame_len = len - BRIDGE_RESULT_HDR};
    /* Time runs forwards within one transaction; a reply frame only comes with a reply. */
    if ((r.t.tx_done_ns && r.t.tx_done_ns < r.t.de_on_ns) ||
        (r.t.last_rx_ns && r.t.last_rx_ns < r.t.first_rx_ns) ||
        (r.status == BRIDGE_STATUS_OK && r.frame_len == 0 && r.t.first_rx_ns != 0)) {
        return BRIDGE_PROTO_ERR_RANGE;
    }
    *out = r;
    return BRIDGE_PROTO_OK;
}

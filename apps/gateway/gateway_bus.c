/* The gateway's bus backends; see gateway_bus.h.
 *
 * The bridge backend runs keel_modbus_master on a clock of its own: the RT core reports when
 * bytes arrived on the line, but the master only needs the order of events within one
 * transaction (request sent, reply bytes in, t3.5 of silence), so each transaction gets a
 * fresh slice of that clock far from the previous one and the master never sees the bus as
 * busy: the RT core's line driver enforces the real inter-frame silence itself.
 *
 * Threads: the poll loop and a background firmware push (sensor_update.h) share one bus; a
 * mutex makes each transaction whole, and the last exception is kept per thread so each
 * caller reads its own. */
#include "gateway_bus.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bridge_proto.h"

struct gateway_bus {
    pthread_mutex_t lock; /* one transaction at a time: the poll loop and a push share the bus */
    keel_modbus_client *client;
    keel_icc *chan;
    keel_modbus_master master;
    uint64_t clock_us;
    uint32_t timeout_us;
    uint8_t last_exception;
    gateway_bus_stats stats;
};

static _Thread_local uint8_t last_exception; /* of this thread's last transaction */

gateway_bus *gateway_bus_client(keel_modbus_client *c)
{
    gateway_bus *b = calloc(1, sizeof *b);
    if (!b) {
        keel_modbus_client_close(c);
        return NULL;
    }
    pthread_mutex_init(&b->lock, NULL);
    b->client = c;
    return b;
}

gateway_bus *gateway_bus_bridge(keel_icc *chan, const keel_modbus_line *line)
{
    keel_modbus_line dflt = {115200, 8, KEEL_MODBUS_PARITY_EVEN, 1};
    gateway_bus *b = calloc(1, sizeof *b);
    if (!b || keel_modbus_master_init(&b->master, KEEL_MODBUS_RTU, line ? line : &dflt) !=
                  KEEL_MODBUS_OK) {
        free(b);
        keel_icc_close(chan);
        return NULL;
    }
    pthread_mutex_init(&b->lock, NULL);
    b->chan = chan;
    b->timeout_us = 500000;
    b->master.timeout_us = b->timeout_us;
    return b;
}

void gateway_bus_close(gateway_bus *b)
{
    if (!b) {
        return;
    }
    if (b->client) {
        keel_modbus_client_close(b->client);
    }
    if (b->chan) {
        keel_icc_close(b->chan);
    }
    pthread_mutex_destroy(&b->lock);
    free(b);
}

const char *gateway_bus_name(const gateway_bus *b)
{
    return b->client ? "client" : "bridge";
}

void gateway_bus_set_timeout(gateway_bus *b, uint32_t timeout_us)
{
    pthread_mutex_lock(&b->lock);
    b->timeout_us = timeout_us;
    if (b->client) {
        keel_modbus_client_set_timeout(b->client, timeout_us);
    } else {
        b->master.timeout_us = timeout_us;
    }
    pthread_mutex_unlock(&b->lock);
}

uint8_t gateway_bus_last_exception(const gateway_bus *b)
{
    (void)b;
    return last_exception;
}

const gateway_bus_stats *gateway_bus_get_stats(const gateway_bus *b)
{
    return &b->stats;
}

/* Sends the ADU through the RT core; the master judges what came back. */
static keel_modbus_err bridge_transact(gateway_bus *b, uint8_t unit, const uint8_t *req,
                                       size_t req_len, uint8_t *rsp, size_t cap, size_t *rsp_len)
{
    keel_modbus_master *m = &b->master;
    uint8_t adu[KEEL_MODBUS_MAX_RTU_ADU];
    size_t adu_len = 0;
    b->clock_us += 100000000u; /* a fresh slice: see the top of the file */
    keel_modbus_err e =
        keel_modbus_master_start(m, b->clock_us, unit, req, req_len, adu, sizeof adu, &adu_len);
    if (e != KEEL_MODBUS_OK) {
        return e;
    }
    uint32_t timeout_ms = (b->timeout_us + 999u) / 1000u;
    if (timeout_ms > BRIDGE_MAX_TIMEOUT_MS) {
        timeout_ms = BRIDGE_MAX_TIMEOUT_MS;
    }
    bool broadcast = unit == KEEL_MODBUS_BROADCAST;
    bridge_xfer x = {.flags = broadcast ? BRIDGE_F_BROADCAST : 0,
                     .timeout_ms = broadcast ? 0 : (uint16_t)(timeout_ms ? timeout_ms : 1),
                     .frame = adu,
                     .frame_len = adu_len};
    uint8_t msg[BRIDGE_XFER_MAX];
    size_t n = bridge_xfer_encode(&x, msg, sizeof msg);
    static uint8_t in[KEEL_ICC_MIN_MSG];
    keel_icc_msg resp;
    b->stats.transactions++;
    /* The RT core answers within the timeout plus the frames' time on the line; a world paced
     * slower than the wall clock may take longer, so the wait on the channel is generous. */
    keel_icc_err ce = keel_icc_request(b->chan, BRIDGE_MSG_XFER, msg, n, &resp, in, sizeof in,
                                       (int)timeout_ms + 10000);
    bridge_result r;
    if (ce != KEEL_ICC_OK) {
        keel_modbus_master_abort(m);
        b->stats.channel_errors++;
        return ce == KEEL_ICC_ERR_PEER_GONE ? KEEL_MODBUS_ERR_CLOSED : KEEL_MODBUS_ERR_IO;
    }
    if (resp.type != BRIDGE_MSG_RESULT ||
        bridge_result_decode(in, resp.len, &r) != BRIDGE_PROTO_OK) {
        keel_modbus_master_abort(m);
        b->stats.bad_replies++;
        return KEEL_MODBUS_ERR_FRAME;
    }
    if (r.t.frame_end_ns > r.t.de_on_ns) {
        b->stats.last_line_ns = r.t.frame_end_ns - r.t.de_on_ns;
    }
    switch (r.status) {
    case BRIDGE_STATUS_OK:
        break;
    case BRIDGE_STATUS_TIMEOUT:
        keel_modbus_master_abort(m);
        b->stats.timeouts++;
        return KEEL_MODBUS_ERR_TIMEOUT;
    case BRIDGE_STATUS_LINE:
    case BRIDGE_STATUS_OVERFLOW:
        b->stats.line_errors++;
        break; /* what arrived goes to the master: its CRC check rejects it */
    default:
        keel_modbus_master_abort(m);
        b->stats.bad_replies++;
        return KEEL_MODBUS_ERR_ARG; /* the RT core refused our request */
    }
    if (broadcast) {
        keel_modbus_master_abort(m);
        return KEEL_MODBUS_OK;
    }
    e = KEEL_MODBUS_ERR_TIMEOUT;
    if (r.frame_len) {
        e = keel_modbus_master_input(m, b->clock_us + 1, r.frame, r.frame_len);
        if (e == KEEL_MODBUS_ERR_AGAIN) {
            /* shorter than the reply must be: the line's silence ended it */
            e = keel_modbus_master_poll(m, b->clock_us + 1 + m->timing.t35_us);
        }
    }
    if (e == KEEL_MODBUS_ERR_AGAIN) {
        e = KEEL_MODBUS_ERR_TIMEOUT;
    }
    b->last_exception = m->last_exception;
    if (e == KEEL_MODBUS_OK || e == KEEL_MODBUS_ERR_EXCEPTION) {
        const uint8_t *pdu;
        size_t len;
        keel_modbus_master_reply(m, &pdu, &len);
        if (len > cap) {
            keel_modbus_master_abort(m);
            return KEEL_MODBUS_ERR_NO_SPACE;
        }
        memcpy(rsp, pdu, len);
        *rsp_len = len;
    }
    keel_modbus_master_abort(m);
    return e;
}

keel_modbus_err gateway_bus_transact(gateway_bus *b, uint8_t unit, const uint8_t *req,
                                     size_t req_len, uint8_t *rsp, size_t cap, size_t *rsp_len)
{
    if (!b || !req || !rsp || !rsp_len) {
        return KEEL_MODBUS_ERR_ARG;
    }
    *rsp_len = 0;
    pthread_mutex_lock(&b->lock);
    keel_modbus_err e;
    if (b->client) {
        e = keel_modbus_client_transact(b->client, unit, req, req_len, rsp, cap, rsp_len);
        last_exception = keel_modbus_client_last_exception(b->client);
    } else {
        e = bridge_transact(b, unit, req, req_len, rsp, cap, rsp_len);
        last_exception = b->last_exception;
    }
    pthread_mutex_unlock(&b->lock);
    return e;
}

keel_modbus_err gateway_bus_read_registers(gateway_bus *b, uint8_t unit, uint8_t fc, uint16_t addr,
                                           uint16_t count, uint16_t *regs)
{
    uint8_t req[8], rsp[KEEL_MODBUS_MAX_PDU];
    size_t req_len = 0, rsp_len = 0;
    keel_modbus_err e = keel_modbus_req_read(fc, addr, count, req, sizeof req, &req_len);
    if (e == KEEL_MODBUS_OK) {
        e = gateway_bus_transact(b, unit, req, req_len, rsp, sizeof rsp, &rsp_len);
    }
    if (e == KEEL_MODBUS_OK) {
        e = keel_modbus_rsp_registers(req, req_len, rsp, rsp_len, regs, count, NULL);
    }
    return e;
}

keel_modbus_err gateway_bus_write_registers(gateway_bus *b, uint8_t unit, uint16_t addr,
                                            uint16_t count, const uint16_t *regs)
{
    uint8_t req[KEEL_MODBUS_MAX_PDU], rsp[KEEL_MODBUS_MAX_PDU];
    size_t req_len = 0, rsp_len = 0;
    keel_modbus_err e =
        keel_modbus_req_write_registers(addr, count, regs, req, sizeof req, &req_len);
    if (e == KEEL_MODBUS_OK) {
        e = gateway_bus_transact(b, unit, req, req_len, rsp, sizeof rsp, &rsp_len);
    }
    if (e == KEEL_MODBUS_OK) {
        e = keel_modbus_rsp_check(req, req_len, rsp, rsp_len, NULL);
    }
    return e;
}

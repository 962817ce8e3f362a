/* The master (client) state machine: one transaction at a time, fed bytes and time.
 *
 * States: IDLE -> (start) -> WAIT -> reply / exception / error / timeout -> IDLE, or for an
 * RTU broadcast IDLE -> TURNAROUND -> IDLE once the turnaround delay has passed.
 *
 * RTU replies end at whichever comes first: the length the reply's function code and byte
 * count say it has, or t3.5 of silence after its last byte (a truncated or garbled frame is
 * then judged by its CRC). The reply timeout counts from the moment the request has left the
 * wire (its start plus its transmission time) to the first byte of the reply; once a reply is
 * arriving it may finish. Bytes that arrive while no transaction waits are stray: counted,
 * dropped, and they keep the bus busy, so the next request waits for t3.5 of silence after
 * them (start() answers ERR_BUSY until then). That is what keeps a late reply from being taken
 * for the answer to the next request. On TCP the transaction id does the same job. */
#include <string.h>

#include "keel/modbus.h"
#include "modbus_private.h"

enum { IDLE, WAIT, TURNAROUND };

keel_modbus_err keel_modbus_master_init(keel_modbus_master *m, keel_modbus_framing framing,
                                        const keel_modbus_line *line)
{
    if (!m || (framing != KEEL_MODBUS_RTU && framing != KEEL_MODBUS_TCP)) {
        return KEEL_MODBUS_ERR_ARG;
    }
    memset(m, 0, sizeof *m);
    m->framing = framing;
    m->timeout_us = 1000000;
    m->turnaround_us = 100000;
    if (line) {
        keel_modbus_err e = keel_modbus_rtu_timing_for(line, &m->timing);
        if (e != KEEL_MODBUS_OK) {
            return e;
        }
    }
    /* RTU with no line (RTU over TCP): t35_us stays 0, the mark of a stream. Frames end by
     * their length alone and a partial frame ends at the reply timeout, as on TCP: a stream
     * has no silences to go by. */
    return KEEL_MODBUS_OK;
}

static uint64_t bus_idle_at(const keel_modbus_master *m)
{
    if (m->framing != KEEL_MODBUS_RTU || m->last_rx_us == 0 || m->timing.t35_us == 0) {
        return 0;
    }
    return m->last_rx_us + m->timing.t35_us;
}

keel_modbus_err keel_modbus_master_start(keel_modbus_master *m, uint64_t now_us, uint8_t unit,
                                         const uint8_t *pdu, size_t pdu_len, uint8_t *out,
                                         size_t cap, size_t *out_len)
{
    if (!m || !pdu || !out || !out_len || pdu_len == 0) {
        return KEEL_MODBUS_ERR_ARG;
    }
    if (pdu_len > KEEL_MODBUS_MAX_PDU) {
        return KEEL_MODBUS_ERR_TOO_BIG;
    }
    if (m->state != IDLE || now_us < bus_idle_at(m)) {
        return KEEL_MODBUS_ERR_BUSY;
    }
    keel_modbus_err e;
    if (m->framing == KEEL_MODBUS_TCP) {
        e = keel_modbus_tcp_frame((uint16_t)(m->tid + 1), unit, pdu, pdu_len, out, cap, out_len);
    } else {
        e = keel_modbus_rtu_frame(unit, pdu, pdu_len, out, cap, out_len);
    }
    if (e != KEEL_MODBUS_OK) {
        return e;
    }
    m->tid++;
    memcpy(m->req, pdu, pdu_len);
    m->req_len = pdu_len;
    m->unit = unit;
    m->rx_len = 0;
    m->rsp = NULL;
    m->rsp_len = 0;
    m->last_exception = 0;
    m->stats.requests++;
    uint64_t on_wire =
        m->framing == KEEL_MODBUS_RTU ? (uint64_t)m->timing.char_ns * *out_len / 1000u : 0;
    if (m->framing == KEEL_MODBUS_RTU && unit == KEEL_MODBUS_BROADCAST) {
        m->state = TURNAROUND;
        m->deadline_us = now_us + on_wire + m->turnaround_us;
    } else {
        m->state = WAIT;
        m->deadline_us = now_us + on_wire + m->timeout_us;
    }
    return KEEL_MODBUS_OK;
}

/* Judges a complete reply PDU; ends the transaction unless it is ERR_AGAIN. */
static keel_modbus_err judge(keel_modbus_master *m, uint8_t unit, const uint8_t *pdu, size_t len)
{
    m->state = IDLE;
    if (unit != m->unit) {
        m->stats.frame_errors++;
        return KEEL_MODBUS_ERR_MISMATCH;
    }
    uint8_t exc = 0;
    keel_modbus_err e = keel_modbus_rsp_check(m->req, m->req_len, pdu, len, &exc);
    m->rsp = pdu;
    m->rsp_len = len;
    if (e == KEEL_MODBUS_OK) {
        m->stats.replies++;
    } else if (e == KEEL_MODBUS_ERR_EXCEPTION) {
        m->stats.exceptions++;
        m->last_exception = exc;
    } else {
        m->stats.frame_errors++;
    }
    return e;
}

static keel_modbus_err rtu_frame_end(keel_modbus_master *m, size_t len)
{
    uint8_t unit;
    const uint8_t *pdu;
    size_t pdu_len;
    keel_modbus_err e = keel_modbus_rtu_parse(m->rx, len, &unit, &pdu, &pdu_len);
    if (e != KEEL_MODBUS_OK) {
        m->state = IDLE;
        if (e == KEEL_MODBUS_ERR_CRC) {
            m->stats.crc_errors++;
        } else {
            m->stats.frame_errors++;
        }
        return e;
    }
    return judge(m, unit, pdu, pdu_len);
}

static keel_modbus_err rtu_input(keel_modbus_master *m)
{
    size_t want = keel_modbus_rtu_frame_len(m->rx, m->rx_len, false);
    if (want == SIZE_MAX && m->timing.t35_us == 0) {
        m->state = IDLE; /* on a stream, a frame that cannot be sized cannot be skipped */
        m->stats.frame_errors++;
        return KEEL_MODBUS_ERR_FRAME;
    }
    if (want == 0 || want == SIZE_MAX || m->rx_len < want) {
        if (m->rx_len >= KEEL_MODBUS_MAX_RTU_ADU) {
            m->state = IDLE;
            m->stats.frame_errors++;
            return KEEL_MODBUS_ERR_TOO_BIG;
        }
        return KEEL_MODBUS_ERR_AGAIN; /* the silence after it will end the frame */
    }
    if (want > KEEL_MODBUS_MAX_RTU_ADU) {
        m->state = IDLE;
        m->stats.frame_errors++;
        return KEEL_MODBUS_ERR_TOO_BIG;
    }
    m->stats.stray_bytes += (uint32_t)(m->rx_len - want);
    return rtu_frame_end(m, want);
}

static keel_modbus_err tcp_input(keel_modbus_master *m)
{
    for (;;) {
        keel_modbus_mbap hdr;
        const uint8_t *pdu;
        size_t pdu_len;
        size_t used;
        keel_modbus_err e = keel_modbus_tcp_parse(m->rx, m->rx_len, &hdr, &pdu, &pdu_len, &used);
        if (e == KEEL_MODBUS_ERR_SHORT) {
            return KEEL_MODBUS_ERR_AGAIN;
        }
        if (e != KEEL_MODBUS_OK) {
            m->state = IDLE;
            m->stats.frame_errors++;
            return e;
        }
        if (hdr.tid == m->tid) {
            /* Keep the reply at the front of rx so m->rsp stays valid after return. */
            e = judge(m, hdr.unit, pdu, pdu_len);
            m->stats.stray_bytes += (uint32_t)(m->rx_len - used);
            return e;
        }
        /* A reply to an earlier transaction (it timed out): drop it, look further. */
        m->stats.stray_bytes += (uint32_t)used;
        memmove(m->rx, m->rx + used, m->rx_len - used);
        m->rx_len -= used;
    }
}

keel_modbus_err keel_modbus_master_input(keel_modbus_master *m, uint64_t now_us,
                                         const uint8_t *data, size_t len)
{
    if (!m || (!data && len)) {
        return KEEL_MODBUS_ERR_ARG;
    }
    if (len == 0) {
        return m->state == IDLE ? KEEL_MODBUS_ERR_AGAIN : keel_modbus_master_poll(m, now_us);
    }
    if (m->state == WAIT && m->framing == KEEL_MODBUS_RTU && m->rx_len > 0 && m->timing.t35_us &&
        now_us >= m->last_rx_us + m->timing.t35_us) {
        /* The frame so far ended by silence before these bytes came: judge it first. */
        keel_modbus_err e = rtu_frame_end(m, m->rx_len);
        m->last_rx_us = now_us;
        m->stats.stray_bytes += (uint32_t)len;
        return e;
    }
    m->last_rx_us = now_us;
    if (m->state != WAIT) {
        m->stats.stray_bytes += (uint32_t)len;
        return KEEL_MODBUS_ERR_AGAIN;
    }
    size_t room = sizeof m->rx - m->rx_len;
    if (len > room) {
        m->stats.stray_bytes += (uint32_t)(len - room);
        len = room;
    }
    memcpy(m->rx + m->rx_len, data, len);
    m->rx_len += len;
    return m->framing == KEEL_MODBUS_RTU ? rtu_input(m) : tcp_input(m);
}

keel_modbus_err keel_modbus_master_poll(keel_modbus_master *m, uint64_t now_us)
{
    if (!m) {
        return KEEL_MODBUS_ERR_ARG;
    }
    if (m->state == TURNAROUND) {
        if (now_us >= m->deadline_us) {
            m->state = IDLE;
            return KEEL_MODBUS_OK;
        }
        return KEEL_MODBUS_ERR_AGAIN;
    }
    if (m->state != WAIT) {
        return KEEL_MODBUS_ERR_AGAIN;
    }
    if (m->rx_len > 0) {
        if (m->framing == KEEL_MODBUS_RTU && m->timing.t35_us &&
            now_us >= m->last_rx_us + m->timing.t35_us) {
            return rtu_frame_end(m, m->rx_len);
        }
        if (now_us >= m->deadline_us) {
            m->state = IDLE;
            m->stats.timeouts++;
            return KEEL_MODBUS_ERR_TIMEOUT; /* a partial reply on a stream never completed */
        }
        return KEEL_MODBUS_ERR_AGAIN;
    }
    if (now_us >= m->deadline_us) {
        m->state = IDLE;
        m->stats.timeouts++;
        return KEEL_MODBUS_ERR_TIMEOUT;
    }
    return KEEL_MODBUS_ERR_AGAIN;
}

uint64_t keel_modbus_master_deadline(const keel_modbus_master *m)
{
    if (!m || m->state == IDLE) {
        return UINT64_MAX;
    }
    if (m->state == WAIT && m->rx_len > 0 && m->framing == KEEL_MODBUS_RTU && m->timing.t35_us) {
        return m->last_rx_us + m->timing.t35_us;
    }
    return m->deadline_us;
}

void keel_modbus_master_reply(const keel_modbus_master *m, const uint8_t **pdu, size_t *len)
{
    *pdu = m->rsp;
    *len = m->rsp_len;
}

void keel_modbus_master_request(const keel_modbus_master *m, const uint8_t **pdu, size_t *len)
{
    *pdu = m->req;
    *len = m->req_len;
}

void keel_modbus_master_abort(keel_modbus_master *m)
{
    m->state = IDLE;
    m->rx_len = 0;
    m->last_rx_us = 0;
}

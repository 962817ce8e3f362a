/* The RS485 bridge thread; see bridge_rt.h. Priority: below the environment service (an
 * ENV_GET answer is a memory copy; a bus transaction is milliseconds of waiting) and above the
 * sensor thread. While the driver waits for a reply the thread sleeps on the driver's
 * semaphore, so the other threads run. */
#include "bridge_rt.h"

#include <string.h>

#define BRIDGE_PRIORITY 9u

static bridge_status status_of(keel_rs485_err e)
{
    switch (e) {
    case KEEL_RS485_OK:
        return BRIDGE_STATUS_OK;
    case KEEL_RS485_ERR_TIMEOUT:
        return BRIDGE_STATUS_TIMEOUT;
    case KEEL_RS485_ERR_LINE:
        return BRIDGE_STATUS_LINE;
    case KEEL_RS485_ERR_OVERFLOW:
        return BRIDGE_STATUS_OVERFLOW;
    default:
        return BRIDGE_STATUS_REFUSED; /* ARG, BUSY: nothing went on the line */
    }
}

size_t bridge_rt_handle(bridge_rt *b, const uint8_t *req, size_t len, uint8_t *out, size_t cap)
{
    bridge_xfer x;
    bridge_result r = {.status = BRIDGE_STATUS_REFUSED};
    if (bridge_xfer_decode(req, len, &x) != BRIDGE_PROTO_OK) {
        b->refused++;
        return bridge_result_encode(&r, out, cap);
    }
    size_t got = 0;
    keel_rs485_times t = {0};
    uint32_t timeout_us = (x.flags & BRIDGE_F_BROADCAST) ? 0u : (uint32_t)x.timeout_ms * 1000u;
    keel_rs485_err e = keel_rs485_transact(b->drv, x.frame, x.frame_len, b->reply, sizeof b->reply,
                                           &got, timeout_us, &t);
    r.status = (uint8_t)status_of(e);
    b->sent += e != KEEL_RS485_ERR_ARG && e != KEEL_RS485_ERR_BUSY;
    b->timeouts += e == KEEL_RS485_ERR_TIMEOUT;
    b->line_errors += e == KEEL_RS485_ERR_LINE;
    b->overflows += e == KEEL_RS485_ERR_OVERFLOW;
    r.t = (bridge_times){t.de_on_ns, t.tx_done_ns, t.first_rx_ns, t.last_rx_ns, t.frame_end_ns};
    /* What arrived is returned even on a line error or overflow: the master's CRC check
     * decides, and a person debugging a bus wants to see it. */
    r.frame = b->reply;
    r.frame_len = got <= sizeof b->reply ? got : sizeof b->reply;
    return bridge_result_encode(&r, out, cap);
}

static void bridge_main(void *arg)
{
    bridge_rt *b = arg;
    for (;;) {
        keel_icc_msg m;
        keel_icc_err rc = keel_icc_rt_recv(b->chan, &m, b->rx, sizeof b->rx);
        if (rc == KEEL_ICC_ERR_FORGED) {
            b->refused++; /* consumed and reported by the ring: carry on */
            continue;
        }
        if (rc != KEEL_ICC_OK) {
            /* BUF_SMALL leaves an oversized message queued (nothing we speak is that big):
             * the channel is unusable, as it is when corrupt or the peer is gone. */
            b->chan_err = rc;
            return;
        }
        b->requests++;
        if (!(m.flags & KEEL_ICC_F_REQUEST) || m.type != BRIDGE_MSG_XFER) {
            b->refused++; /* we answer XFER requests only; anything else is dropped */
            continue;
        }
        size_t n = bridge_rt_handle(b, b->rx, m.len, b->out, sizeof b->out);
        rc = keel_icc_rt_send(b->chan, BRIDGE_MSG_RESULT, KEEL_ICC_F_REPLY, m.corr, b->out, n);
        if (rc != KEEL_ICC_OK) {
            b->chan_err = rc;
            return;
        }
    }
}

keel_rtos_err bridge_rt_start(bridge_rt *b, keel_icc_rt *chan, keel_rs485 *drv)
{
    b->chan = chan;
    b->drv = drv;
    b->requests = b->refused = b->sent = b->timeouts = b->line_errors = b->overflows = 0;
    b->chan_err = KEEL_ICC_OK;
    keel_rtos_thread_config c = {.name = "rs485-bridge",
                                 .entry = bridge_main,
                                 .arg = b,
                                 .stack = b->stack,
                                 .stack_size = sizeof b->stack,
                                 .priority = BRIDGE_PRIORITY};
    return keel_rtos_thread_create(&b->thread, &c);
}

/* Blocking send and receive for the real-time core over the portable ring core. The wait is
 * the doorbell's: the board or RTOS decides how to sleep (WFI, a semaphore). The order
 * "arm, re-check, sleep" is the ring core's contract, so a ring from the other core between
 * our check and our sleep is never lost: it leaves the doorbell pending and wait returns. */
#include "icc_rt.h"

static bool gone(keel_icc_rt *c)
{
    return c->bell.gone && c->bell.gone(c->bell.ctx);
}

keel_icc_err keel_icc_rt_attach(keel_icc_rt *c, void *mem, size_t size, keel_icc_side side,
                                const keel_icc_rt_bell *bell)
{
    if (!c || !bell || !bell->ring || !bell->wait) {
        return KEEL_ICC_ERR_ARG;
    }
    c->bell = *bell;
    return keel_icc_ring_attach(&c->ring, mem, size, side);
}

keel_icc_err keel_icc_rt_send(keel_icc_rt *c, uint16_t type, uint16_t flags, uint32_t corr,
                              const void *data, size_t len)
{
    for (;;) {
        bool ring;
        keel_icc_err rc = keel_icc_ring_send(&c->ring, type, flags, corr, data, len, NULL, &ring);
        if (ring)
            c->bell.ring(c->bell.ctx);
        if (rc != KEEL_ICC_ERR_WOULD_BLOCK)
            return rc;
        if (gone(c))
            return KEEL_ICC_ERR_PEER_GONE;
        if (keel_icc_ring_arm_tx(&c->ring, len))
            c->bell.wait(c->bell.ctx);
    }
}

keel_icc_err keel_icc_rt_try_recv(keel_icc_rt *c, keel_icc_msg *msg, void *buf, size_t cap)
{
    bool ring;
    keel_icc_err rc = keel_icc_ring_recv(&c->ring, msg, buf, cap, &ring);
    if (ring)
        c->bell.ring(c->bell.ctx);
    return rc;
}

keel_icc_err keel_icc_rt_recv(keel_icc_rt *c, keel_icc_msg *msg, void *buf, size_t cap)
{
    for (;;) {
        keel_icc_err rc = keel_icc_rt_try_recv(c, msg, buf, cap);
        if (rc != KEEL_ICC_ERR_WOULD_BLOCK)
            return rc;
        if (gone(c))
            return KEEL_ICC_ERR_PEER_GONE;
        if (keel_icc_ring_arm_rx(&c->ring))
            c->bell.wait(c->bell.ctx);
    }
}

/* The RS485 line driver: see rs485.h.
 *
 * States, advanced by the UART interrupt (ISR) and the calling thread:
 *   IDLE  -> (thread: DE on, first byte) -> SEND
 *   SEND  -> (TXE: next byte ... TC: DE off, sem) -> RECV
 *   RECV  -> (RXNE: store byte ... RTO: sem) -> IDLE
 * DE is released in the TC interrupt itself, so it falls within the interrupt entry latency of
 * the last stop bit: a fraction of a bit-time at any MODBUS baud rate. Bytes received in IDLE
 * (a slave answering after its timeout) are counted and dropped, and they push the time the
 * bus is idle again, so the next request cannot collide with the end of a late reply. */
#include "rs485.h"

#include <string.h>

enum { IDLE, SEND, RECV };

const char *keel_rs485_err_name(keel_rs485_err e)
{
    static const char *const names[KEEL_RS485_ERR_COUNT] = {
        "KEEL_RS485_OK",          "KEEL_RS485_ERR_ARG",      "KEEL_RS485_ERR_BUSY",
        "KEEL_RS485_ERR_TIMEOUT", "KEEL_RS485_ERR_OVERFLOW", "KEEL_RS485_ERR_LINE",
    };
    return (unsigned)e < KEEL_RS485_ERR_COUNT ? names[e] : "KEEL_RS485_ERR_UNKNOWN";
}

keel_rs485_err keel_rs485_init(keel_rs485 *d, const keel_rs485_hw *hw, const keel_modbus_line *line)
{
    if (!d || !hw || !line) {
        return KEEL_RS485_ERR_ARG;
    }
    memset(d, 0, sizeof *d);
    if (keel_modbus_rtu_timing_for(line, &d->timing) != KEEL_MODBUS_OK) {
        return KEEL_RS485_ERR_ARG;
    }
    d->hw = *hw;
    /* t3.5 in bit-times, rounded up: the receiver timeout counts bits. */
    d->rto_bits =
        (uint32_t)(((uint64_t)d->timing.t35_us * 1000u + d->timing.bit_ns - 1) / d->timing.bit_ns);
    if (keel_rtos_sem_create(&d->done, 0, 1) != KEEL_RTOS_OK) {
        return KEEL_RS485_ERR_ARG;
    }
    d->hw.set_de(d->hw.ctx, false);
    d->hw.set_rx_timeout(d->hw.ctx, d->rto_bits);
    d->hw.irq_mask(d->hw.ctx, KEEL_RS485_RXNE | KEEL_RS485_RTO);
    return KEEL_RS485_OK;
}

void keel_rs485_isr(keel_rs485 *d, uint32_t status, uint8_t rx_byte)
{
    uint64_t now = d->hw.now_ns(d->hw.ctx);
    if (d->state == SEND) {
        if (status & KEEL_RS485_TC) {
            /* The last stop bit has left: release the line now, before anything else. */
            d->hw.set_de(d->hw.ctx, false);
            d->hw.clear(d->hw.ctx, KEEL_RS485_TC);
            d->times.tx_done_ns = now;
            d->state = RECV;
            d->hw.irq_mask(d->hw.ctx, KEEL_RS485_RXNE | KEEL_RS485_RTO);
            (void)keel_rtos_sem_put(&d->done);
        } else if ((status & KEEL_RS485_TXE) && d->tx_pos < d->tx_len) {
            d->hw.write(d->hw.ctx, d->tx[d->tx_pos++]);
            if (d->tx_pos == d->tx_len) {
                d->hw.irq_mask(d->hw.ctx, KEEL_RS485_TC); /* now wait for the last stop bit */
            }
        }
    }
    if (status & KEEL_RS485_RXNE) {
        d->bus_idle_ns = now + (uint64_t)d->timing.t35_us * 1000u;
        if (d->state == RECV) {
            if (d->rx_len == 0) {
                d->times.first_rx_ns = now;
            }
            d->times.last_rx_ns = now;
            if (d->rx_len < d->rx_cap) {
                d->rx[d->rx_len++] = rx_byte;
            } else {
                d->rx_overflow = true;
            }
            if (status & KEEL_RS485_FE) {
                d->rx_error = true;
            }
        } else if (d->state == IDLE) {
            d->stats.stray_bytes++;
        }
    }
    if (status & KEEL_RS485_RTO) {
        d->hw.clear(d->hw.ctx, KEEL_RS485_RTO);
        if (d->state == RECV && d->rx_len > 0) {
            d->times.frame_end_ns = now;
            d->state = IDLE;
            (void)keel_rtos_sem_put(&d->done);
        }
    }
}

keel_rs485_err keel_rs485_transact(keel_rs485 *d, const uint8_t *req, size_t len, uint8_t *rsp,
                                   size_t cap, size_t *rsp_len, uint32_t timeout_us,
                                   keel_rs485_times *times)
{
    if (!d || !req || len == 0 || len > KEEL_MODBUS_MAX_RTU_ADU || !rsp_len ||
        (timeout_us && !rsp)) {
        return KEEL_RS485_ERR_ARG;
    }
    *rsp_len = 0;
    if (d->state != IDLE) {
        return KEEL_RS485_ERR_BUSY;
    }
    /* Wait for t3.5 of silence on the bus (a late reply may still be arriving). */
    uint32_t tick_ns = 1000000000u / keel_rtos_tick_hz();
    while (d->hw.now_ns(d->hw.ctx) < d->bus_idle_ns) {
        uint64_t left = d->bus_idle_ns - d->hw.now_ns(d->hw.ctx);
        (void)keel_rtos_thread_sleep((uint32_t)((left + tick_ns - 1) / tick_ns));
    }
    (void)keel_rtos_sem_get(&d->done, KEEL_RTOS_NO_WAIT); /* drop a stale give */
    d->hw.irq_mask(d->hw.ctx, 0);
    memset(&d->times, 0, sizeof d->times);
    d->tx = req;
    d->tx_len = len;
    d->tx_pos = 1;
    d->rx = rsp;
    d->rx_cap = cap;
    d->rx_len = 0;
    d->rx_error = d->rx_overflow = false;
    d->state = SEND;
    d->stats.transactions++;
    d->hw.set_de(d->hw.ctx, true);
    d->times.de_on_ns = d->hw.now_ns(d->hw.ctx);
    d->hw.write(d->hw.ctx, req[0]);
    d->hw.irq_mask(d->hw.ctx, len > 1 ? KEEL_RS485_TXE : KEEL_RS485_TC);

    /* The request takes len character-times; wait for TC with a generous bound. */
    uint64_t tx_ns = (uint64_t)d->timing.char_ns * (len + 2);
    uint32_t tx_ticks = (uint32_t)(tx_ns / tick_ns) + 2;
    if (keel_rtos_sem_get(&d->done, tx_ticks) != KEEL_RTOS_OK) {
        d->hw.irq_mask(d->hw.ctx, KEEL_RS485_RXNE | KEEL_RS485_RTO);
        d->hw.set_de(d->hw.ctx, false);
        d->state = IDLE;
        return KEEL_RS485_ERR_TIMEOUT; /* the UART never completed: a hardware fault */
    }
    if (timeout_us == 0) {
        d->hw.irq_mask(d->hw.ctx, 0);
        d->state = IDLE;
        d->hw.irq_mask(d->hw.ctx, KEEL_RS485_RXNE | KEEL_RS485_RTO);
        if (times) {
            *times = d->times;
        }
        return KEEL_RS485_OK;
    }
    /* Reply: the timeout runs from the end of the request to the first byte; a reply that has
     * started may finish (its frame ends at the receiver timeout). */
    uint64_t deadline = d->times.tx_done_ns + (uint64_t)timeout_us * 1000u;
    keel_rs485_err result = KEEL_RS485_OK;
    for (;;) {
        uint64_t now = d->hw.now_ns(d->hw.ctx);
        uint32_t wait = KEEL_RTOS_NO_WAIT;
        if (now < deadline) {
            wait = (uint32_t)((deadline - now + tick_ns - 1) / tick_ns);
        }
        if (keel_rtos_sem_get(&d->done, wait) == KEEL_RTOS_OK) {
            break; /* frame complete */
        }
        d->hw.irq_mask(d->hw.ctx, 0);
        bool started = d->rx_len > 0;
        bool finished = d->state == IDLE;
        if (!started && !finished && d->hw.now_ns(d->hw.ctx) >= deadline) {
            d->state = IDLE; /* from now on, bytes are stray */
            d->hw.irq_mask(d->hw.ctx, KEEL_RS485_RXNE | KEEL_RS485_RTO);
            d->stats.timeouts++;
            result = KEEL_RS485_ERR_TIMEOUT;
            break;
        }
        d->hw.irq_mask(d->hw.ctx, KEEL_RS485_RXNE | KEEL_RS485_RTO);
        if (finished) {
            (void)keel_rtos_sem_get(&d->done, KEEL_RTOS_NO_WAIT);
            break;
        }
        if (started) {
            deadline = d->hw.now_ns(d->hw.ctx) + (uint64_t)d->timing.char_ns * 4u; /* let it end */
        }
    }
    if (times) {
        *times = d->times;
    }
    if (result != KEEL_RS485_OK) {
        return result;
    }
    *rsp_len = d->rx_len;
    if (d->rx_overflow) {
        d->stats.overflows++;
        return KEEL_RS485_ERR_OVERFLOW;
    }
    if (d->rx_error) {
        d->stats.line_errors++;
        return KEEL_RS485_ERR_LINE;
    }
    return KEEL_RS485_OK;
}

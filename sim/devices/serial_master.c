/* The serial server node; see serial_master.h. Everything runs in the UART's interrupt
 * callback and in events, at exact virtual instants, like the slave devices (modbus_dev.c). */
#include "serial_master.h"

#include <string.h>

static void finish(sim_serial_master *m, sim_serial_status st)
{
    keel_sim_event_cancel(&m->timeout_ev);
    m->waiting = false;
    m->status = st;
    m->done = true;
}

static void on_timeout(void *arg)
{
    sim_serial_master *m = arg;
    if (m->waiting && m->rx_len == 0) {
        m->timeouts++;
        finish(m, SIM_SERIAL_TIMEOUT);
    }
}

static void de_off(void *arg)
{
    sim_serial_master *m = arg;
    sim_rs485_set_de(m->bus, m->node, false);
    m->sending = false;
}

static void start(void *arg)
{
    sim_serial_master *m = arg;
    uint64_t now = keel_sim_now_ns(), idle = m->uart.last_rx_end_ns + m->t35_ns;
    if (m->uart.last_rx_end_ns && now < idle) {
        (void)keel_sim_event_schedule(&m->start_ev, idle, start, m); /* the line is busy */
        return;
    }
    sim_rs485_set_de(m->bus, m->node, true);
    m->sending = true;
    m->tx_pos = 1;
    sim_uart_write(&m->uart, m->tx[0]);
    sim_uart_set_irq_mask(&m->uart, SIM_UART_RXNE | SIM_UART_RTO |
                                        (m->tx_len > 1 ? SIM_UART_TXE : SIM_UART_TC));
}

static void on_irq(void *ctx)
{
    sim_serial_master *m = ctx;
    sim_uart *u = &m->uart;
    if (u->status & SIM_UART_RXNE) {
        uint8_t b = sim_uart_read(u);
        if (m->waiting && m->rx_len < sizeof m->rx) {
            m->rx[m->rx_len++] = b; /* garbled or not: the client's master judges */
        }
    }
    if (u->status & SIM_UART_RTO) {
        sim_uart_clear(u, SIM_UART_RTO);
        if (m->waiting && m->rx_len > 0) {
            finish(m, SIM_SERIAL_OK);
        }
    }
    if (m->sending && (u->status & SIM_UART_TXE) && (u->irq_mask & SIM_UART_TXE)) {
        if (m->tx_pos < m->tx_len) {
            sim_uart_write(u, m->tx[m->tx_pos++]);
        }
        if (m->tx_pos == m->tx_len) {
            sim_uart_set_irq_mask(u, SIM_UART_RXNE | SIM_UART_RTO | SIM_UART_TC);
        }
    }
    if (m->sending && (u->status & SIM_UART_TC) && (u->irq_mask & SIM_UART_TC)) {
        sim_uart_clear(u, SIM_UART_TC);
        sim_uart_set_irq_mask(u, SIM_UART_RXNE | SIM_UART_RTO);
        uint64_t now = keel_sim_now_ns();
        (void)keel_sim_event_schedule(&m->de_ev, now + m->de_release_ns, de_off, m);
        m->frames++;
        if (m->tx[0] == 0) {
            finish(m, SIM_SERIAL_BROADCAST);
            return;
        }
        m->waiting = true;
        m->rx_len = 0;
        (void)keel_sim_event_schedule(&m->timeout_ev, now + m->timeout_ns, on_timeout, m);
    }
}

int sim_serial_master_init(sim_serial_master *m, sim_rs485_bus *bus, const keel_modbus_line *line,
                           const char *name)
{
    memset(m, 0, sizeof *m);
    m->bus = bus;
    m->start_ev.slot = m->de_ev.slot = m->timeout_ev.slot = -1;
    keel_modbus_rtu_timing t;
    if (keel_modbus_rtu_timing_for(line, &t) != KEEL_MODBUS_OK) {
        return -1;
    }
    sim_uart_init(&m->uart, name, line);
    m->uart.irq = on_irq;
    m->uart.irq_ctx = m;
    m->t35_ns = (uint64_t)t.t35_us * 1000u;
    m->de_release_ns = m->uart.bit_ns / 4;
    sim_uart_set_rto(&m->uart, (uint32_t)((m->t35_ns + m->uart.bit_ns - 1) / m->uart.bit_ns));
    sim_uart_set_irq_mask(&m->uart, SIM_UART_RXNE | SIM_UART_RTO);
    m->node = sim_rs485_attach(bus, &m->uart, name);
    return m->node < 0 ? -1 : 0;
}

bool sim_serial_master_submit(sim_serial_master *m, const uint8_t *frame, size_t len,
                              uint32_t timeout_us)
{
    if (m->busy || len == 0 || len > sizeof m->tx) {
        return false;
    }
    memcpy(m->tx, frame, len);
    m->tx_len = len;
    m->busy = true;
    m->done = false;
    m->timeout_ns = (uint64_t)(timeout_us ? timeout_us : 1000000u) * 1000u;
    return keel_sim_event_schedule(&m->start_ev, keel_sim_now_ns(), start, m) == KEEL_SIM_OK;
}

bool sim_serial_master_take(sim_serial_master *m, uint8_t *out, size_t cap, size_t *len,
                            sim_serial_status *status)
{
    if (!m->busy || !m->done) {
        return false;
    }
    size_t n = m->status == SIM_SERIAL_OK ? (m->rx_len < cap ? m->rx_len : cap) : 0;
    memcpy(out, m->rx, n);
    *len = n;
    *status = m->status;
    m->busy = m->done = false;
    return true;
}

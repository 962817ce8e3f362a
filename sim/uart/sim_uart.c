/* The UART model: see sim_uart.h. Everything happens in event callbacks at exact virtual
 * instants; nothing here consumes CPU time, since it is hardware. */
#include "sim_uart.h"

#include <string.h>

static void notify(sim_uart *u)
{
    if ((u->status & u->irq_mask) && u->irq) {
        u->irq(u->irq_ctx);
    }
}

static void start_char(sim_uart *u, uint8_t byte);

static void tx_done(void *arg)
{
    sim_uart *u = arg;
    u->shifting = false;
    u->tx_chars++;
    if (u->thr_full) {
        u->thr_full = false;
        start_char(u, u->thr);
        u->status |= SIM_UART_TXE;
    } else {
        u->status |= SIM_UART_TC;
    }
    notify(u);
}

static void start_char(sim_uart *u, uint8_t byte)
{
    uint64_t now = keel_sim_now_ns();
    u->shifting = true;
    u->shift = byte;
    u->shift_end_ns = now + u->char_ns;
    u->status &= ~(uint32_t)SIM_UART_TC;
    if (u->wire.tx_start) {
        u->wire.tx_start(u->wire.ctx, u, byte, now, u->shift_end_ns);
    }
    (void)keel_sim_event_schedule(&u->tx_ev, u->shift_end_ns, tx_done, u);
}

void sim_uart_init(sim_uart *u, const char *name, const keel_modbus_line *line)
{
    memset(u, 0, sizeof *u);
    u->name = name;
    u->line = *line;
    unsigned bits =
        1u + line->data_bits + (line->parity != KEEL_MODBUS_PARITY_NONE) + line->stop_bits;
    u->bit_ns = (1000000000ull + line->baud / 2) / line->baud;
    u->char_ns = (bits * 1000000000ull + line->baud / 2) / line->baud;
    u->status = SIM_UART_TXE | SIM_UART_TC;
    u->tx_ev.slot = -1;
    u->rto_ev.slot = -1;
}

void sim_uart_write(sim_uart *u, uint8_t byte)
{
    if (!u->shifting) {
        start_char(u, byte);
        u->status |= SIM_UART_TXE;
    } else if (!u->thr_full) {
        u->thr_full = true;
        u->thr = byte;
        u->status &= ~(uint32_t)SIM_UART_TXE;
    } else {
        u->overruns++;
    }
    notify(u);
}

uint8_t sim_uart_read(sim_uart *u)
{
    u->status &= ~(uint32_t)(SIM_UART_RXNE | SIM_UART_FE);
    return u->rdr;
}

void sim_uart_clear(sim_uart *u, uint32_t flags)
{
    u->status &= ~flags;
}

void sim_uart_set_irq_mask(sim_uart *u, uint32_t mask)
{
    u->irq_mask = mask;
    notify(u);
}

static void rto_fire(void *arg)
{
    sim_uart *u = arg;
    u->status |= SIM_UART_RTO;
    notify(u);
}

void sim_uart_set_rto(sim_uart *u, uint32_t bits)
{
    u->rto_bits = bits;
    if (!bits) {
        keel_sim_event_cancel(&u->rto_ev);
    }
}

void sim_uart_rx(sim_uart *u, uint8_t byte, bool error)
{
    if (u->status & SIM_UART_RXNE) {
        u->overruns++;
    }
    u->rdr = byte;
    u->rx_chars++;
    u->status |= SIM_UART_RXNE;
    if (error) {
        u->status |= SIM_UART_FE;
        u->rx_errors++;
    }
    u->last_rx_end_ns = keel_sim_now_ns();
    if (u->rto_bits) {
        (void)keel_sim_event_schedule(&u->rto_ev, u->last_rx_end_ns + u->rto_bits * u->bit_ns,
                                      rto_fire, u);
    }
    notify(u);
}

/* The generic MODBUS slave device and its persistence: see modbus_dev.h.
 *
 * Persistent state is a small text file, one line per table ("holding 12 34 ...",
 * "coils 1 0 ...", "file 1 <records...>"), rewritten whole through a temporary file and
 * rename() so a crash leaves either the old or the new state. */
#include "modbus_dev.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void dev_irq(void *ctx);

static void de_off(void *arg)
{
    sim_modbus_dev *d = arg;
    sim_rs485_set_de(d->bus, d->node, false);
    d->sending = false;
}

static void reply_start(void *arg)
{
    sim_modbus_dev *d = arg;
    sim_rs485_set_de(d->bus, d->node, true);
    d->sending = true;
    d->tx_pos = 1;
    sim_uart_write(&d->uart, d->tx[0]); /* into the shifter; TXE then asks for the next */
    sim_uart_set_irq_mask(&d->uart, SIM_UART_RXNE | SIM_UART_RTO | SIM_UART_TXE);
}

/* A whole request is in rx (by its length or by silence): answer it. */
static void frame_end(sim_modbus_dev *d, size_t len)
{
    size_t out_len = 0;
    keel_modbus_err e = keel_modbus_slave_rtu(&d->slave, d->rx, len, d->tx, sizeof d->tx, &out_len);
    memmove(d->rx, d->rx + len, d->rx_len - len);
    d->rx_len -= len;
    if (e == KEEL_MODBUS_OK && d->after_frame) {
        d->after_frame(d->after_ctx);
    }
    if (e != KEEL_MODBUS_OK || out_len == 0 || d->sending) {
        d->ignored++;
        return;
    }
    d->tx_len = out_len;
    d->replies++;
    /* The reply's first start bit goes out latency_ns after the request's last stop bit. */
    uint64_t at = d->uart.last_rx_end_ns + d->latency_ns;
    uint64_t now = keel_sim_now_ns();
    (void)keel_sim_event_schedule(&d->reply_ev, at > now ? at : now, reply_start, d);
}

static void dev_irq(void *ctx)
{
    sim_modbus_dev *d = ctx;
    sim_uart *u = &d->uart;
    if (u->status & SIM_UART_RXNE) {
        bool bad = (u->status & SIM_UART_FE) != 0;
        uint8_t b = sim_uart_read(u);
        if (d->rx_len < sizeof d->rx && !d->wait_silence) {
            d->rx[d->rx_len++] = bad ? (uint8_t)~b : b;
        }
        if (!d->sending && !d->wait_silence) {
            size_t want = keel_modbus_rtu_frame_len(d->rx, d->rx_len, true);
            if (want && want != SIZE_MAX && d->rx_len >= want && want <= KEEL_MODBUS_MAX_RTU_ADU) {
                /* Framed by length: whatever follows before the next t3.5 silence is not a
                 * request (another slave's reply heard on the bus, say), so it is skipped
                 * rather than framed, and can never be mistaken for one. */
                frame_end(d, want);
                d->rx_len = 0;
                d->wait_silence = true;
            }
        } else {
            d->rx_len = 0; /* our own echo is not possible (we are not our receiver) */
        }
    }
    if (u->status & SIM_UART_RTO) {
        sim_uart_clear(u, SIM_UART_RTO);
        d->wait_silence = false;
        if (d->rx_len) {
            frame_end(d, d->rx_len); /* silence ends whatever was there (bad CRC: counted) */
        }
    }
    if (d->sending && (u->status & SIM_UART_TXE) && (u->irq_mask & SIM_UART_TXE)) {
        if (d->tx_pos < d->tx_len) {
            sim_uart_write(u, d->tx[d->tx_pos++]);
        }
        if (d->tx_pos == d->tx_len) {
            sim_uart_set_irq_mask(u, SIM_UART_RXNE | SIM_UART_RTO | SIM_UART_TC);
        }
    }
    if (d->sending && (u->status & SIM_UART_TC) && (u->irq_mask & SIM_UART_TC)) {
        sim_uart_clear(u, SIM_UART_TC);
        sim_uart_set_irq_mask(u, SIM_UART_RXNE | SIM_UART_RTO);
        (void)keel_sim_event_schedule(&d->de_ev, keel_sim_now_ns() + d->de_release_ns, de_off, d);
    }
}

static void on_write(void *ctx, int table, uint16_t addr, uint16_t count)
{
    (void)table, (void)addr, (void)count;
    (void)sim_modbus_dev_save(ctx);
}

void sim_modbus_dev_set_model(sim_modbus_dev *d, const keel_modbus_model *model, void *ctx)
{
    keel_modbus_slave_init(&d->slave, d->slave.unit, model, ctx);
}

int sim_modbus_dev_save(sim_modbus_dev *d)
{
    if (!d->state_path) {
        return 0;
    }
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.tmp", d->state_path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        return -1;
    }
    fprintf(f, "holding");
    for (unsigned i = 0; i < d->map.holding_count; i++) {
        fprintf(f, " %u", d->map.holding[i]);
    }
    fprintf(f, "\ncoils");
    for (unsigned i = 0; i < d->map.coil_count; i++) {
        fprintf(f, " %u", d->map.coils[i]);
    }
    fprintf(f, "\n");
    for (size_t k = 0; k < d->map.file_count; k++) {
        fprintf(f, "file %u", d->map.files[k].number);
        for (unsigned i = 0; i < d->map.files[k].records; i++) {
            fprintf(f, " %u", d->map.files[k].data[i]);
        }
        fprintf(f, "\n");
    }
    if (fclose(f) != 0) {
        return -1;
    }
    return rename(tmp, d->state_path);
}

static void load_state(sim_modbus_dev *d)
{
    FILE *f = d->state_path ? fopen(d->state_path, "r") : NULL;
    if (!f) {
        return;
    }
    char word[16];
    while (fscanf(f, "%15s", word) == 1) {
        unsigned v;
        if (strcmp(word, "holding") == 0) {
            for (unsigned i = 0; i < d->map.holding_count && fscanf(f, "%u", &v) == 1; i++) {
                d->map.holding[i] = (uint16_t)v;
            }
        } else if (strcmp(word, "coils") == 0) {
            for (unsigned i = 0; i < d->map.coil_count && fscanf(f, "%u", &v) == 1; i++) {
                d->map.coils[i] = (uint8_t)(v != 0);
            }
        } else if (strcmp(word, "file") == 0 && fscanf(f, "%u", &v) == 1) {
            for (size_t k = 0; k < d->map.file_count; k++) {
                if (d->map.files[k].number == v) {
                    for (unsigned i = 0; i < d->map.files[k].records && fscanf(f, "%u", &v) == 1;
                         i++) {
                        d->map.files[k].data[i] = (uint16_t)v;
                    }
                }
            }
        }
    }
    fclose(f);
}

int sim_modbus_dev_init(sim_modbus_dev *d, const char *name, sim_rs485_bus *bus,
                        const keel_modbus_line *line, uint8_t unit, const keel_modbus_map *map,
                        uint64_t latency_ns, const char *state_path)
{
    memset(d, 0, sizeof *d);
    d->name = name;
    d->bus = bus;
    d->map = *map;
    d->map.on_write = on_write;
    d->map.on_write_ctx = d;
    d->latency_ns = latency_ns;
    d->state_path = state_path;
    d->reply_ev.slot = -1;
    d->de_ev.slot = -1;
    sim_uart_init(&d->uart, name, line);
    d->uart.irq = dev_irq;
    d->uart.irq_ctx = d;
    keel_modbus_rtu_timing t;
    if (keel_modbus_rtu_timing_for(line, &t) != KEEL_MODBUS_OK) {
        return -1;
    }
    d->de_release_ns = d->uart.bit_ns / 4; /* a quarter bit: a hardware-timed release */
    sim_uart_set_rto(
        &d->uart, (uint32_t)(((uint64_t)t.t35_us * 1000u + d->uart.bit_ns - 1) / d->uart.bit_ns));
    sim_uart_set_irq_mask(&d->uart, SIM_UART_RXNE | SIM_UART_RTO);
    d->node = sim_rs485_attach(bus, &d->uart, name);
    if (d->node < 0) {
        return -1;
    }
    keel_modbus_slave_init(&d->slave, unit, &keel_modbus_map_model, &d->map);
    load_state(d);
    return 0;
}

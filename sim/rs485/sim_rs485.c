/* The RS485 bus model: see sim_rs485.h.
 *
 * Signals in the waveform, per node n: tx (the UART's TX pin, bit by bit: start bit low,
 * data LSB first, parity, stop bits high), de (driver enable), rx (the line as the node's
 * receiver sees it); and for the bus: line (the differential state, idle high) and collision
 * (high while more than one driver is enabled). Bit-level changes of a character are known
 * when it starts, so changes are recorded unordered and sorted when written. */
#include "sim_rs485.h"

#include <stdlib.h>
#include <string.h>

enum { SIG_LINE = 0, SIG_COLLISION = 1, SIG_NODE0 = 2 }; /* node n: 2+3n tx, +1 de, +2 rx */

static void vcd_add(sim_rs485_bus *b, uint64_t t, unsigned sig, unsigned val)
{
    if (!b->recording) {
        return;
    }
    if (b->vcd_len == b->vcd_cap) {
        size_t cap = b->vcd_cap ? b->vcd_cap * 2 : 4096;
        vcd_change *v = realloc(b->vcd, cap * sizeof *v);
        if (!v) {
            b->recording = false;
            return;
        }
        b->vcd = v;
        b->vcd_cap = cap;
    }
    b->vcd[b->vcd_len] = (vcd_change){t, (uint32_t)b->vcd_len, (uint8_t)sig, (uint8_t)val};
    b->vcd_len++;
}

/* The bit levels of one character on a pin that is `sig`, from start_ns. */
static void vcd_char(sim_rs485_bus *b, unsigned sig, const sim_uart *u, uint8_t byte,
                     uint64_t start_ns)
{
    if (!b->recording) {
        return;
    }
    uint64_t t = start_ns;
    vcd_add(b, t, sig, 0); /* start bit */
    t += u->bit_ns;
    unsigned ones = 0;
    for (unsigned i = 0; i < u->line.data_bits; i++, t += u->bit_ns) {
        unsigned bit = (byte >> i) & 1u;
        ones += bit;
        vcd_add(b, t, sig, bit);
    }
    if (u->line.parity != KEEL_MODBUS_PARITY_NONE) {
        unsigned p = (ones & 1u) ^ (u->line.parity == KEEL_MODBUS_PARITY_ODD);
        vcd_add(b, t, sig, p);
        t += u->bit_ns;
    }
    vcd_add(b, t, sig, 1); /* stop bits: idle level */
}

void sim_rs485_init(sim_rs485_bus *b)
{
    memset(b, 0, sizeof *b);
    for (int i = 0; i < SIM_RS485_MAX_INFLIGHT; i++) {
        b->inflight[i].ev.slot = -1;
    }
}

static void wire_tx_start(void *ctx, sim_uart *u, uint8_t byte, uint64_t start, uint64_t end);

int sim_rs485_attach(sim_rs485_bus *b, sim_uart *u, const char *name)
{
    if (b->count == SIM_RS485_MAX_NODES) {
        return -1;
    }
    int n = b->count++;
    b->nodes[n] = (sim_rs485_node){.uart = u, .name = name};
    u->wire = (sim_uart_wire){wire_tx_start, b};
    return n;
}

static int node_of(const sim_rs485_bus *b, const sim_uart *u)
{
    for (int i = 0; i < b->count; i++) {
        if (b->nodes[i].uart == u) {
            return i;
        }
    }
    return -1;
}

static void garble_all_inflight(sim_rs485_bus *b)
{
    for (int i = 0; i < SIM_RS485_MAX_INFLIGHT; i++) {
        if (b->inflight[i].used && !b->inflight[i].garbled) {
            b->inflight[i].garbled = true;
        }
    }
}

void sim_rs485_set_de(sim_rs485_bus *b, int node, bool on)
{
    sim_rs485_node *n = &b->nodes[node];
    if (n->de == on) {
        return;
    }
    uint64_t now = keel_sim_now_ns();
    n->de = on;
    vcd_add(b, now, SIG_NODE0 + 3u * (unsigned)node + 1, on);
    if (on) {
        n->de_on_ns = now;
        b->drivers++;
        if (b->drivers == 2) {
            b->stats.collisions++;
            vcd_add(b, now, SIG_COLLISION, 1);
        }
        if (b->drivers >= 2) {
            garble_all_inflight(b);
        }
    } else {
        n->de_off_ns = now;
        b->drivers--;
        if (b->drivers == 1) {
            vcd_add(b, now, SIG_COLLISION, 0);
        }
        /* A character this node is still shifting out loses its tail. */
        for (int i = 0; i < SIM_RS485_MAX_INFLIGHT; i++) {
            sim_rs485_char *c = &b->inflight[i];
            if (c->used && c->node == node && c->end_ns > now && !c->garbled) {
                c->garbled = true;
                b->stats.cut++;
            }
        }
    }
}

static void char_end(void *arg)
{
    sim_rs485_char *c = arg;
    sim_rs485_bus *b = c->bus;
    c->used = false;
    b->nodes[c->node].last_stop_end_ns = c->end_ns;
    if (c->garbled) {
        b->stats.garbled++;
    }
    for (int i = 0; i < b->count; i++) {
        if (i != c->node) {
            sim_uart_rx(b->nodes[i].uart, c->garbled ? (uint8_t)(c->byte ^ 0x5A) : c->byte,
                        c->garbled);
        }
    }
}

static void wire_tx_start(void *ctx, sim_uart *u, uint8_t byte, uint64_t start, uint64_t end)
{
    sim_rs485_bus *b = ctx;
    int node = node_of(b, u);
    if (node < 0) {
        return; /* not attached to this bus */
    }
    vcd_char(b, SIG_NODE0 + 3u * (unsigned)node, u, byte, start);
    if (!b->nodes[node].de) {
        b->stats.lost++;
        b->stats.cut++;
        b->nodes[node].last_stop_end_ns = end;
        return; /* the transceiver does not drive: nothing reaches the wire */
    }
    sim_rs485_char *c = NULL;
    for (int i = 0; i < SIM_RS485_MAX_INFLIGHT && !c; i++) {
        if (!b->inflight[i].used) {
            c = &b->inflight[i];
        }
    }
    if (!c) {
        b->stats.lost++;
        return;
    }
    bool overlap = false;
    for (int i = 0; i < SIM_RS485_MAX_INFLIGHT; i++) {
        if (b->inflight[i].used) {
            overlap = true;
            b->inflight[i].garbled = true;
        }
    }
    c->bus = b;
    c->node = node;
    c->byte = byte;
    c->garbled = overlap || b->drivers > 1;
    c->used = true;
    c->start_ns = start;
    c->end_ns = end;
    b->stats.chars++;
    vcd_char(b, SIG_LINE, u, byte, start);
    for (int i = 0; i < b->count; i++) {
        if (i != node) {
            vcd_char(b, SIG_NODE0 + 3u * (unsigned)i + 2, u, byte, start);
        }
    }
    (void)keel_sim_event_schedule(&c->ev, end, char_end, c);
}

void sim_rs485_vcd_start(sim_rs485_bus *b)
{
    b->recording = true;
    b->vcd_len = 0;
}

static int cmp_change(const void *x, const void *y)
{
    const vcd_change *a = x, *c = y;
    if (a->t != c->t) {
        return a->t < c->t ? -1 : 1;
    }
    return a->seq < c->seq ? -1 : a->seq > c->seq; /* recorded order at equal times */
}

int sim_rs485_vcd_write(const sim_rs485_bus *b, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        return -1;
    }
    vcd_change *v = malloc((b->vcd_len ? b->vcd_len : 1) * sizeof *v);
    if (!v) {
        fclose(f);
        return -1;
    }
    memcpy(v, b->vcd, b->vcd_len * sizeof *v);
    qsort(v, b->vcd_len, sizeof *v, cmp_change);
    fprintf(f, "$date keel simulator $end\n$version keel sim_rs485 $end\n$timescale 1ns $end\n");
    fprintf(f, "$scope module rs485 $end\n");
    unsigned nsig = SIG_NODE0 + 3u * (unsigned)b->count;
    /* Identifier codes: "k" and a letter per signal (printable, unambiguous). */
    fprintf(f, "$var wire 1 k%c line $end\n", 'A' + SIG_LINE);
    fprintf(f, "$var wire 1 k%c collision $end\n", 'A' + SIG_COLLISION);
    for (int i = 0; i < b->count; i++) {
        fprintf(f, "$scope module %s $end\n", b->nodes[i].name);
        fprintf(f, "$var wire 1 k%c tx $end\n", 'A' + SIG_NODE0 + 3 * i);
        fprintf(f, "$var wire 1 k%c de $end\n", 'A' + SIG_NODE0 + 3 * i + 1);
        fprintf(f, "$var wire 1 k%c rx $end\n", 'A' + SIG_NODE0 + 3 * i + 2);
        fprintf(f, "$upscope $end\n");
    }
    fprintf(f, "$upscope $end\n$enddefinitions $end\n#0\n$dumpvars\n");
    for (unsigned s = 0; s < nsig; s++) {
        bool de = s >= SIG_NODE0 && (s - SIG_NODE0) % 3 == 1;
        fprintf(f, "%ck%c\n", (s == SIG_COLLISION || de) ? '0' : '1', 'A' + s);
    }
    fprintf(f, "$end\n");
    uint64_t t = 0;
    for (size_t i = 0; i < b->vcd_len; i++) {
        if (v[i].t != t) {
            t = v[i].t;
            fprintf(f, "#%llu\n", (unsigned long long)t);
        }
        fprintf(f, "%uk%c\n", v[i].val, 'A' + v[i].sig);
    }
    free(v);
    return fclose(f) == 0 ? 0 : -1;
}

void sim_rs485_free(sim_rs485_bus *b)
{
    free(b->vcd);
    b->vcd = NULL;
    b->vcd_len = b->vcd_cap = 0;
}

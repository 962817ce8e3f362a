/* A multi-drop RS485 bus in virtual time: nodes with a UART and a driver-enable (DE) GPIO.
 *
 * A character a node's UART sends reaches the bus only while that node's DE is asserted; it
 * is delivered to every other node's UART when its last stop bit ends. The bus detects the
 * two ways a half-duplex bus breaks:
 *   - a collision: two nodes' drivers enabled at once. Every character on the wire while
 *     more than one driver is enabled is delivered garbled (framing error);
 *   - a cut character: DE released (or never asserted) while the UART shifts a character out,
 *     so its tail never reaches the wire (what a user-space RTS toggle does when late... or
 *     early). The receivers get it garbled, or nothing if DE was off from its start.
 * On request the bus records a VCD waveform (per node: tx, de, rx; the bus line and a
 * collision marker) that GTKWave opens, and that tests read like a logic analyser. */
#ifndef KEEL_SIM_RS485_H
#define KEEL_SIM_RS485_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "sim_uart.h"

#define SIM_RS485_MAX_NODES 16
#define SIM_RS485_MAX_INFLIGHT 16

typedef struct sim_rs485_bus sim_rs485_bus;

typedef struct sim_rs485_node {
    sim_uart *uart;
    const char *name;
    bool de;
    uint64_t de_on_ns, de_off_ns; /* last changes */
    uint64_t last_stop_end_ns;    /* end of the last character this node sent */
} sim_rs485_node;

typedef struct sim_rs485_char {
    keel_sim_event ev;
    sim_rs485_bus *bus;
    int node;
    uint8_t byte;
    bool garbled, used;
    uint64_t start_ns, end_ns;
} sim_rs485_char;

typedef struct sim_rs485_stats {
    uint64_t chars;      /* characters that reached the wire */
    uint64_t collisions; /* times a second driver was enabled while one was */
    uint64_t garbled;    /* characters delivered garbled */
    uint64_t cut;        /* characters cut short by DE (or sent without it) */
    uint64_t lost;       /* characters sent with DE off from their start */
} sim_rs485_stats;

typedef struct vcd_change {
    uint64_t t;
    uint32_t seq;
    uint8_t sig, val;
} vcd_change;

struct sim_rs485_bus {
    sim_rs485_node nodes[SIM_RS485_MAX_NODES];
    int count;
    int drivers; /* nodes with DE asserted */
    sim_rs485_char inflight[SIM_RS485_MAX_INFLIGHT];
    sim_rs485_stats stats;
    /* VCD recording (only when sim_rs485_vcd_start was called) */
    vcd_change *vcd;
    size_t vcd_len, vcd_cap;
    bool recording;
};

void sim_rs485_init(sim_rs485_bus *b);
/* Attaches a UART as a node; returns its index. */
int sim_rs485_attach(sim_rs485_bus *b, sim_uart *u, const char *name);
/* The node's driver-enable GPIO, at the current virtual time. */
void sim_rs485_set_de(sim_rs485_bus *b, int node, bool on);

/* Starts recording the waveform in memory; sim_rs485_vcd_write() writes it (sorted by time)
 * as a VCD file GTKWave opens. */
void sim_rs485_vcd_start(sim_rs485_bus *b);
int sim_rs485_vcd_write(const sim_rs485_bus *b, const char *path);
void sim_rs485_free(sim_rs485_bus *b);

#endif

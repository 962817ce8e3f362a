/* A UART in the simulator's virtual time, exact to the bit.
 *
 * A character takes (1 start + data + parity + stop) bit-times at the baud rate. The model
 * has what RS485 drivers rely on in real UARTs: a transmit holding register and a shift
 * register (TXE: the holding register is empty, write the next byte; TC: the shifter has sent
 * the last stop bit and nothing is waiting), a receive data register (RXNE, with overrun
 * counted), and a receiver timeout (RTO: the line has been idle N bit-times after the last
 * received character, as STM32's USART_RTOR and others have; MODBUS drivers set it to t3.5).
 *
 * The UART drives a "wire" (sim_uart_wire: the RS485 bus, or a test) that sees each character
 * when it starts, and feeds received characters in with sim_uart_rx() when they end. When an
 * enabled status flag is set, the UART calls its irq callback: for the real-time core's UART it
 * raises an interrupt line, for a device model it runs the device's logic directly. */
#ifndef KEEL_SIM_UART_H
#define KEEL_SIM_UART_H

#include <stdbool.h>
#include <stdint.h>

#include "keel/modbus.h"
#include "keel/rtos_sim.h"

enum {
    SIM_UART_TXE = 1u << 0,  /* transmit holding register empty */
    SIM_UART_TC = 1u << 1,   /* transmission complete: last stop bit sent, nothing queued */
    SIM_UART_RXNE = 1u << 2, /* a received byte waits in the data register */
    SIM_UART_RTO = 1u << 3,  /* receiver timeout: idle for rto_bits after the last character */
    SIM_UART_FE = 1u << 4,   /* the last received byte was garbled (framing/collision) */
};

typedef struct sim_uart sim_uart;

typedef struct sim_uart_wire {
    /* A character starts on the TX pin now; it ends at end_ns. */
    void (*tx_start)(void *ctx, sim_uart *u, uint8_t byte, uint64_t start_ns, uint64_t end_ns);
    void *ctx;
} sim_uart_wire;

struct sim_uart {
    const char *name;
    keel_modbus_line line;
    uint64_t bit_ns, char_ns;
    uint32_t status, irq_mask;
    void (*irq)(void *ctx); /* called when status & irq_mask becomes (or stays) non-zero */
    void *irq_ctx;
    sim_uart_wire wire;
    /* transmitter */
    bool thr_full, shifting;
    uint8_t thr, shift;
    uint64_t shift_end_ns;
    keel_sim_event tx_ev;
    /* receiver */
    uint8_t rdr;
    uint32_t rto_bits;
    uint64_t last_rx_end_ns;
    keel_sim_event rto_ev;
    uint32_t overruns, rx_errors, tx_chars, rx_chars;
};

void sim_uart_init(sim_uart *u, const char *name, const keel_modbus_line *line);
/* The byte goes to the shifter at once if it is idle, else into the holding register; a
 * write with the holding register full is lost (counted as an overrun). */
void sim_uart_write(sim_uart *u, uint8_t byte);
uint8_t sim_uart_read(sim_uart *u); /* clears RXNE */
void sim_uart_clear(sim_uart *u, uint32_t flags);
void sim_uart_set_irq_mask(sim_uart *u, uint32_t mask);
void sim_uart_set_rto(sim_uart *u, uint32_t bits); /* 0 disables the receiver timeout */
/* From the wire: a character ended on the RX pin now (error: garbled). */
void sim_uart_rx(sim_uart *u, uint8_t byte, bool error);

#endif

/* The real-time core's RS485 line driver for MODBUS RTU, on Keel's RTOS.
 *
 * It does the one thing Linux user space cannot: switch the transceiver from transmit to
 * receive within a bit-time of the last stop bit. A thread hands it a request frame; the
 * driver asserts driver-enable (DE), feeds the UART from its TX-empty interrupt, releases DE
 * from its TX-complete interrupt (the instant the last stop bit has left the shifter), then
 * collects the reply from the RX interrupt until the UART's receiver timeout reports t3.5 of
 * silence, and hands the frame back with timestamps. MODBUS itself (PDUs, CRC checks,
 * matching replies to requests) stays in the protocol core (keel/modbus.h), as in the seed's
 * design where the real-time app is kept simple.
 *
 * Hardware is reached through keel_rs485_hw, a table the board fills: the same driver runs
 * on the simulator's UART model and on a real UART. The board's UART interrupt handler reads
 * the status and calls keel_rs485_isr(). */
#ifndef KEEL_RS485_H
#define KEEL_RS485_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/modbus.h"
#include "keel/rtos.h"

typedef enum keel_rs485_err {
    KEEL_RS485_OK = 0,
    KEEL_RS485_ERR_ARG,      /* bad frame or buffer */
    KEEL_RS485_ERR_BUSY,     /* a transaction is in progress */
    KEEL_RS485_ERR_TIMEOUT,  /* no reply (or no complete reply) before the timeout */
    KEEL_RS485_ERR_OVERFLOW, /* the reply did not fit the buffer */
    KEEL_RS485_ERR_LINE,     /* a character arrived garbled (framing error, collision) */
    KEEL_RS485_ERR_COUNT
} keel_rs485_err;

const char *keel_rs485_err_name(keel_rs485_err e);

/* UART status bits the board passes to keel_rs485_isr (same meaning as a real UART's). */
enum {
    KEEL_RS485_TXE = 1u << 0,  /* transmit holding register empty */
    KEEL_RS485_TC = 1u << 1,   /* transmission complete (last stop bit sent) */
    KEEL_RS485_RXNE = 1u << 2, /* received byte available */
    KEEL_RS485_RTO = 1u << 3,  /* receiver timeout (t3.5 of silence) */
    KEEL_RS485_FE = 1u << 4,   /* the received byte is garbled */
};

typedef struct keel_rs485_hw {
    void (*write)(void *ctx, uint8_t byte);     /* into the TX holding register */
    void (*irq_mask)(void *ctx, uint32_t mask); /* which status bits interrupt */
    void (*clear)(void *ctx, uint32_t flags);   /* clear TC / RTO */
    void (*set_de)(void *ctx, bool on);         /* the driver-enable GPIO */
    void (*set_rx_timeout)(void *ctx, uint32_t bits);
    uint64_t (*now_ns)(void *ctx); /* a free-running timestamp */
    void *ctx;
} keel_rs485_hw;

/* When things happened during the last transaction (from hw->now_ns). */
typedef struct keel_rs485_times {
    uint64_t de_on_ns;     /* DE asserted, first byte written */
    uint64_t tx_done_ns;   /* TX-complete interrupt: DE released */
    uint64_t first_rx_ns;  /* first reply byte received (0: none) */
    uint64_t last_rx_ns;   /* last reply byte received */
    uint64_t frame_end_ns; /* receiver timeout: t3.5 after the last byte */
} keel_rs485_times;

typedef struct keel_rs485_stats {
    uint32_t transactions, timeouts, line_errors, stray_bytes, overflows;
} keel_rs485_stats;

typedef struct keel_rs485 {
    keel_rs485_hw hw;
    keel_modbus_rtu_timing timing;
    uint32_t rto_bits;
    keel_rtos_sem done; /* given by the ISR: TX finished, then frame finished */
    /* state shared with the ISR; the thread touches it only with the UART's interrupts masked */
    volatile int state;
    const uint8_t *tx;
    size_t tx_len, tx_pos;
    uint8_t *rx;
    size_t rx_cap, rx_len;
    bool rx_error, rx_overflow;
    uint64_t bus_idle_ns; /* no transmission before this: t3.5 after the last byte seen */
    keel_rs485_times times;
    keel_rs485_stats stats;
} keel_rs485;

/* Sets up the driver for a line (baud, parity, stop bits). The UART is configured by the
 * board; the driver programs the receiver timeout to t3.5. */
KEEL_NODISCARD keel_rs485_err keel_rs485_init(keel_rs485 *d, const keel_rs485_hw *hw,
                                              const keel_modbus_line *line);
/* From a thread: sends `req` (a whole RTU frame) and waits for the reply frame, at most
 * timeout_us after the request has left the wire. The reply is whatever arrived until t3.5
 * of silence: the caller checks its CRC and content (keel_modbus_master does). A broadcast
 * caller passes timeout_us = 0 and gets OK with *rsp_len = 0 once the request is sent. */
KEEL_NODISCARD keel_rs485_err keel_rs485_transact(keel_rs485 *d, const uint8_t *req, size_t len,
                                                  uint8_t *rsp, size_t cap, size_t *rsp_len,
                                                  uint32_t timeout_us, keel_rs485_times *times);
/* The board's UART interrupt handler calls this with the UART status (and the received byte
 * when RXNE is set). */
void keel_rs485_isr(keel_rs485 *d, uint32_t status, uint8_t rx_byte);

#endif

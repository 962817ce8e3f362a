/* The gateway's way to its MODBUS sensors: one small interface, two backends.
 *  - "client": Keel's host MODBUS client (keel_modbus_client: TCP, RTU over TCP, or RTU on a
 *    serial device with the kernel's RS485 mode), for a gateway with its own line;
 *  - "bridge": the RT core's RS485 line driver, over the intercore channel to its bridge
 *    service (firmware/apps/envmon/bridge_rt.h, seed 002's architecture). The gateway's
 *    MODBUS master (keel_modbus_master, the protocol core) builds every request ADU and checks
 *    every reply (CRC, unit, function, layout); the channel carries whole ADUs, and the RT
 *    core only moves them on the line with the direction switched by its UART interrupts.
 * Both give the same transaction: request PDU in, checked reply PDU out, so the poll loop and
 * the firmware push (sensor_update.c) do not know which one they run on. Thread-safe: each
 * transaction is whole (a mutex), so a background push and the poll loop interleave. */
#ifndef KEEL_GATEWAY_BUS_H
#define KEEL_GATEWAY_BUS_H

#include <stddef.h>
#include <stdint.h>

#include "keel/icc.h"
#include "keel/modbus.h"

typedef struct gateway_bus gateway_bus;

/* Wraps an open client (taken: closed with the bus). */
gateway_bus *gateway_bus_client(keel_modbus_client *c);
/* The bridge over an open channel (taken: closed with the bus). `line` is the RS485 line the
 * RT core drives (it gives the master its t3.5); NULL: 115200 8E1. NULL on no memory. */
gateway_bus *gateway_bus_bridge(keel_icc *chan, const keel_modbus_line *line);
void gateway_bus_close(gateway_bus *b);
const char *gateway_bus_name(const gateway_bus *b); /* "client" or "bridge" */

/* One transaction, as keel_modbus_client_transact: OK or ERR_EXCEPTION with the reply PDU in
 * rsp; ERR_TIMEOUT, ERR_CRC, ERR_FRAME, ERR_MISMATCH for a bad or missing reply; ERR_IO or
 * ERR_CLOSED when the way to the bus is gone (reopen it). */
keel_modbus_err gateway_bus_transact(gateway_bus *b, uint8_t unit, const uint8_t *req,
                                     size_t req_len, uint8_t *rsp, size_t cap, size_t *rsp_len);
/* The reply timeout (from the end of the request to the reply's first byte). */
void gateway_bus_set_timeout(gateway_bus *b, uint32_t timeout_us);
/* The exception code of the calling thread's last transaction (0 if none). */
uint8_t gateway_bus_last_exception(const gateway_bus *b);

/* Reads `count` registers with FC 3 or 4. */
keel_modbus_err gateway_bus_read_registers(gateway_bus *b, uint8_t unit, uint8_t fc, uint16_t addr,
                                           uint16_t count, uint16_t *regs);
keel_modbus_err gateway_bus_write_registers(gateway_bus *b, uint8_t unit, uint16_t addr,
                                            uint16_t count, const uint16_t *regs);

/* Bridge statistics: transactions, and how the RT core reported them. */
typedef struct gateway_bus_stats {
    uint32_t transactions, timeouts, line_errors, bad_replies, channel_errors;
    uint64_t last_line_ns; /* the last transaction's time on the line (DE on to frame end) */
} gateway_bus_stats;
const gateway_bus_stats *gateway_bus_get_stats(const gateway_bus *b);

#endif

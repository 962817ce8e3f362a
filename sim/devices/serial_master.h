/* An Ethernet-to-RS485 serial server on the simulated bus: a second MODBUS master node, what
 * keel-sim's --modbus-port puts behind its TCP port. It sends a whole RTU frame the host hands
 * it (waiting for t3.5 of silence on the line first), drives its own driver enable (raised
 * before the first start bit, dropped a quarter bit after the last stop bit, as a serial
 * server's hardware does), and collects what comes back until the receiver timeout (t3.5) or
 * the reply timeout. It checks nothing: the TCP client's master does, as with a real serial
 * server in transparent mode. Two masters on one bus can collide: the bus model reports it. */
#ifndef KEEL_SIM_SERIAL_MASTER_H
#define KEEL_SIM_SERIAL_MASTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/modbus.h"
#include "sim_rs485.h"
#include "sim_uart.h"

typedef enum sim_serial_status {
    SIM_SERIAL_OK = 0,    /* a reply frame came (unchecked) */
    SIM_SERIAL_TIMEOUT,   /* nothing before the timeout */
    SIM_SERIAL_BROADCAST, /* sent; unit 0 gets no reply */
} sim_serial_status;

typedef struct sim_serial_master {
    sim_uart uart;
    sim_rs485_bus *bus;
    int node;
    uint64_t t35_ns, de_release_ns, timeout_ns;
    uint8_t tx[KEEL_MODBUS_MAX_RTU_ADU];
    size_t tx_len, tx_pos;
    uint8_t rx[KEEL_MODBUS_MAX_RTU_ADU];
    size_t rx_len;
    bool busy, sending, waiting, done;
    sim_serial_status status;
    keel_sim_event start_ev, de_ev, timeout_ev;
    uint32_t frames, timeouts;
} sim_serial_master;

int sim_serial_master_init(sim_serial_master *m, sim_rs485_bus *bus, const keel_modbus_line *line,
                           const char *name);
/* Queues one frame (false while one is in progress or the frame is not 1..256 bytes).
 * From the host between runs or from inside the simulation. */
bool sim_serial_master_submit(sim_serial_master *m, const uint8_t *frame, size_t len,
                              uint32_t timeout_us);
/* The finished transaction's outcome and reply (true once, when there is one). */
bool sim_serial_master_take(sim_serial_master *m, uint8_t *out, size_t cap, size_t *len,
                            sim_serial_status *status);

#endif

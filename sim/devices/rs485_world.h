/* A simulated field bus for tests and benchmarks: the real-time core (Keel's RTOS on the sim
 * port, its UART, its DE GPIO and the RS485 line driver) and MODBUS slave devices on one
 * RS485 bus, in virtual time with the core's interrupt-entry and kernel costs charged. */
#ifndef RS485_WORLD_H
#define RS485_WORLD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keel/modbus.h"
#include "keel/rtos.h"
#include "keel/rtos_sim.h"
#include "modbus_dev.h"
#include "rs485.h"
#include "sim_rs485.h"
#include "sim_uart.h"

#define WORLD_IRQ_UART 5u
#define WORLD_MAX_DEVS 8

typedef struct world {
    keel_modbus_line line;
    sim_rs485_bus bus;
    sim_uart uart; /* the RT core's UART */
    int node;      /* its node on the bus */
    keel_rs485 drv;
    sim_sensor sensors[WORLD_MAX_DEVS];
    int nsensors;
    keel_rtos_thread thread;
    _Alignas(16) uint8_t stack[256 * 1024];
    bool done;
} world;

/* the world the last world_create() made */
static world *the_world __attribute__((unused));

static inline void w_write(void *ctx, uint8_t b)
{
    sim_uart_write(&((world *)ctx)->uart, b);
}

static inline void w_mask(void *ctx, uint32_t m)
{
    sim_uart_set_irq_mask(&((world *)ctx)->uart, m); /* same bit meanings as keel_rs485 */
}

static inline void w_clear(void *ctx, uint32_t f)
{
    sim_uart_clear(&((world *)ctx)->uart, f);
}

static inline void w_de(void *ctx, bool on)
{
    world *w = ctx;
    sim_rs485_set_de(&w->bus, w->node, on);
}

static inline void w_rto(void *ctx, uint32_t bits)
{
    sim_uart_set_rto(&((world *)ctx)->uart, bits);
}

static inline uint64_t w_now(void *ctx)
{
    (void)ctx;
    return keel_sim_now_ns();
}

/* The UART's interrupt line: what a board's UART ISR does. */
static inline void w_uart_raise(void *ctx)
{
    (void)ctx;
    (void)keel_sim_irq_raise(WORLD_IRQ_UART);
}

static inline void w_uart_isr(void *arg)
{
    world *w = arg;
    keel_sim_busy_ns(50); /* read the status register */
    uint32_t st = w->uart.status & (w->uart.irq_mask | KEEL_RS485_FE);
    uint8_t b = 0;
    if (st & KEEL_RS485_RXNE) {
        b = sim_uart_read(&w->uart);
    }
    keel_rs485_isr(&w->drv, st, b);
}

/* Creates the simulation and the bus with the RT core's node. */
static inline int world_create(world *w, uint32_t baud)
{
    memset(w, 0, sizeof *w);
    the_world = w;
    w->line = (keel_modbus_line){baud, 8, KEEL_MODBUS_PARITY_EVEN, 1};
    keel_sim_config c = keel_sim_config_default(); /* 500 ns irq entry, 1 us per service */
    if (keel_sim_create(&c) != KEEL_SIM_OK) {
        return -1;
    }
    sim_rs485_init(&w->bus);
    sim_uart_init(&w->uart, "core", &w->line);
    w->uart.irq = w_uart_raise;
    w->node = sim_rs485_attach(&w->bus, &w->uart, "core");
    if (keel_sim_irq_attach(WORLD_IRQ_UART, w_uart_isr, w) != KEEL_SIM_OK) {
        return -1;
    }
    keel_rs485_hw hw = {w_write, w_mask, w_clear, w_de, w_rto, w_now, w};
    return keel_rs485_init(&w->drv, &hw, &w->line) == KEEL_RS485_OK ? 0 : -1;
}

static inline sim_sensor *world_add_sensor(world *w, uint8_t unit, uint64_t latency_ns,
                                           const char *state)
{
    sim_sensor *s = &w->sensors[w->nsensors++];
    if (sim_sensor_init(s, &w->bus, &w->line, unit, latency_ns, state) != 0) {
        return NULL;
    }
    s->dev.name = "sensor";
    return s;
}

static inline int world_start(world *w, void (*fn)(void *), void *arg)
{
    keel_rtos_thread_config tc = {.name = "master",
                                  .entry = fn,
                                  .arg = arg,
                                  .stack = w->stack,
                                  .stack_size = sizeof w->stack,
                                  .priority = 4};
    return keel_rtos_thread_create(&w->thread, &tc) == KEEL_RTOS_OK ? 0 : -1;
}

static inline bool world_is_done(void *arg)
{
    return ((world *)arg)->done;
}

static inline void world_destroy(world *w)
{
    keel_sim_destroy();
    sim_rs485_free(&w->bus);
}

/* One MODBUS transaction through the line driver, checked by the master state machine. */
typedef struct poll_result {
    keel_modbus_err err;
    keel_rs485_err line;
    keel_rs485_times t;
    uint16_t regs[8];
} poll_result;

static inline poll_result world_poll(world *w, keel_modbus_master *m, uint8_t unit, uint8_t fc,
                                     uint16_t addr, uint16_t count, uint32_t timeout_us)
{
    poll_result r = {0};
    uint8_t pdu[8], adu[KEEL_MODBUS_MAX_RTU_ADU], rsp[KEEL_MODBUS_MAX_RTU_ADU];
    size_t n, adu_len, rsp_len;
    if (keel_modbus_req_read(fc, addr, count, pdu, sizeof pdu, &n) != KEEL_MODBUS_OK) {
        r.err = KEEL_MODBUS_ERR_ARG;
        return r;
    }
    r.err = keel_modbus_master_start(m, keel_sim_now_us(), unit, pdu, n, adu, sizeof adu, &adu_len);
    if (r.err != KEEL_MODBUS_OK) {
        return r;
    }
    r.line =
        keel_rs485_transact(&w->drv, adu, adu_len, rsp, sizeof rsp, &rsp_len, timeout_us, &r.t);
    if (r.line == KEEL_RS485_ERR_TIMEOUT) {
        keel_modbus_master_abort(m);
        r.err = KEEL_MODBUS_ERR_TIMEOUT;
        return r;
    }
    r.err = keel_modbus_master_input(m, r.t.last_rx_ns / 1000u, rsp, rsp_len);
    if (r.err == KEEL_MODBUS_ERR_AGAIN) {
        r.err = keel_modbus_master_poll(m, r.t.frame_end_ns / 1000u + m->timing.t35_us);
    }
    if (r.err == KEEL_MODBUS_OK) {
        const uint8_t *q, *a;
        size_t ql, al;
        keel_modbus_master_request(m, &q, &ql);
        keel_modbus_master_reply(m, &a, &al);
        if (keel_modbus_rsp_registers(q, ql, a, al, r.regs, 8, NULL) != KEEL_MODBUS_OK) {
            r.err = KEEL_MODBUS_ERR_FRAME;
        }
    }
    keel_modbus_master_abort(m); /* the driver enforces the bus idle time itself */
    return r;
}

#endif

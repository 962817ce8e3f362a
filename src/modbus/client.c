/* The client: the master state machine driven over a link, with the clock and the waiting
 * the core leaves to its caller. One transaction at a time per client; a program that wants
 * many in flight opens many clients (one per TCP connection). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "link.h"

/* Linux user space cannot see a 1.75 ms silence reliably (scheduling, USB adapters' latency
 * timers), so the host's serial master ends a silent-delimited frame after at least this long.
 * Replies normally end earlier, by their length. */
#define HOST_SERIAL_MIN_SILENCE_US 5000u

struct keel_modbus_client {
    keel_modbus_link link;
    keel_modbus_master master;
};

static keel_modbus_err client_new(keel_modbus_client **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? KEEL_MODBUS_OK : KEEL_MODBUS_ERR_NO_SPACE;
}

keel_modbus_err keel_modbus_client_tcp(const char *host, const char *port, bool rtu_over_tcp,
                                       keel_modbus_client **out)
{
    if (!host || !port || !out) {
        return KEEL_MODBUS_ERR_ARG;
    }
    keel_modbus_client *c;
    keel_modbus_err e = client_new(&c);
    if (e != KEEL_MODBUS_OK) {
        return e;
    }
    e = keel_modbus_link_tcp_connect(&c->link, host, port);
    if (e == KEEL_MODBUS_OK) {
        c->link.framing = rtu_over_tcp ? KEEL_MODBUS_RTU : KEEL_MODBUS_TCP;
        e = keel_modbus_master_init(&c->master, c->link.framing, NULL);
        keel_modbus_link_tcp_set_timeout(&c->link, c->master.timeout_us);
    }
    if (e != KEEL_MODBUS_OK) {
        free(c);
        return e;
    }
    *out = c;
    return KEEL_MODBUS_OK;
}

keel_modbus_err keel_modbus_client_serial(const char *device, const keel_modbus_serial_opts *opts,
                                          keel_modbus_client **out)
{
    if (!device || !opts || !out) {
        return KEEL_MODBUS_ERR_ARG;
    }
    keel_modbus_client *c;
    keel_modbus_err e = client_new(&c);
    if (e != KEEL_MODBUS_OK) {
        return e;
    }
    e = keel_modbus_link_serial_open(&c->link, device, opts);
    if (e == KEEL_MODBUS_OK) {
        e = keel_modbus_master_init(&c->master, KEEL_MODBUS_RTU, &opts->line);
        if (e != KEEL_MODBUS_OK) {
            c->link.be->close(&c->link);
        }
    }
    if (e != KEEL_MODBUS_OK) {
        free(c);
        return e;
    }
    if (c->master.timing.t35_us < HOST_SERIAL_MIN_SILENCE_US) {
        c->master.timing.t35_us = HOST_SERIAL_MIN_SILENCE_US;
    }
    *out = c;
    return KEEL_MODBUS_OK;
}

void keel_modbus_client_close(keel_modbus_client *c)
{
    if (c) {
        c->link.be->close(&c->link);
        free(c);
    }
}

void keel_modbus_client_set_timeout(keel_modbus_client *c, uint32_t timeout_us)
{
    c->master.timeout_us = timeout_us;
    if (c->link.rcvtimeo_ms > 0) {
        keel_modbus_link_tcp_set_timeout(&c->link, timeout_us);
    }
}

const char *keel_modbus_client_rs485_mode(const keel_modbus_client *c)
{
    switch (c->link.rs485) {
    case RS485_KERNEL:
        return "kernel";
    case RS485_RTS:
        return "rts";
    default:
        return "none";
    }
}

uint8_t keel_modbus_client_last_exception(const keel_modbus_client *c)
{
    return c->master.last_exception;
}

const keel_modbus_master_stats *keel_modbus_client_stats(const keel_modbus_client *c)
{
    return &c->master.stats;
}

static void sleep_until(uint64_t t_us)
{
    uint64_t now = keel_modbus_now_us();
    if (t_us <= now) {
        return;
    }
    uint64_t d = t_us - now;
    struct timespec ts = {(time_t)(d / 1000000u), (long)(d % 1000000u) * 1000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

keel_modbus_err keel_modbus_client_transact(keel_modbus_client *c, uint8_t unit, const uint8_t *req,
                                            size_t req_len, uint8_t *rsp, size_t cap,
                                            size_t *rsp_len)
{
    if (!c || !req || !rsp || !rsp_len) {
        return KEEL_MODBUS_ERR_ARG;
    }
    *rsp_len = 0;
    uint8_t adu[KEEL_MODBUS_MAX_TCP_ADU];
    size_t adu_len;
    keel_modbus_master *m = &c->master;
    keel_modbus_err e = keel_modbus_master_start(m, keel_modbus_now_us(), unit, req, req_len, adu,
                                                 sizeof adu, &adu_len);
    if (e == KEEL_MODBUS_ERR_BUSY && m->state == 0) {
        /* The bus is still busy with bytes that came late: wait for its t3.5 silence. */
        sleep_until(m->last_rx_us + m->timing.t35_us);
        e = keel_modbus_master_start(m, keel_modbus_now_us(), unit, req, req_len, adu, sizeof adu,
                                     &adu_len);
    }
    if (e != KEEL_MODBUS_OK) {
        return e;
    }
    if (c->link.framing == KEEL_MODBUS_RTU) {
        c->link.be->flush(&c->link);
    }
    e = c->link.be->send(&c->link, adu, adu_len);
    if (e != KEEL_MODBUS_OK) {
        keel_modbus_master_abort(m);
        return e;
    }
    uint8_t buf[KEEL_MODBUS_MAX_TCP_ADU];
    for (;;) {
        uint64_t deadline = keel_modbus_master_deadline(m);
        uint64_t now = keel_modbus_now_us();
        int wait_ms = deadline <= now ? 0 : (int)((deadline - now + 999) / 1000);
        size_t got;
        keel_modbus_err r = c->link.be->recv(&c->link, buf, sizeof buf, wait_ms, &got);
        if (r == KEEL_MODBUS_OK) {
            e = keel_modbus_master_input(m, keel_modbus_now_us(), buf, got);
        } else if (r == KEEL_MODBUS_ERR_TIMEOUT) {
            e = keel_modbus_master_poll(m, keel_modbus_now_us());
        } else {
            keel_modbus_master_abort(m);
            return r;
        }
        if (e != KEEL_MODBUS_ERR_AGAIN) {
            break;
        }
    }
    if (e == KEEL_MODBUS_OK || e == KEEL_MODBUS_ERR_EXCEPTION) {
        const uint8_t *pdu;
        size_t len;
        keel_modbus_master_reply(m, &pdu, &len);
        if (len > cap) {
            return KEEL_MODBUS_ERR_NO_SPACE;
        }
        if (len) {
            memcpy(rsp, pdu, len);
        }
        *rsp_len = len;
    }
    return e;
}

/* Builds with `build`, transacts, leaves the reply in rsp. */
#define TRANSACT(c, unit, build_call)                                                              \
    uint8_t req[KEEL_MODBUS_MAX_PDU], rsp[KEEL_MODBUS_MAX_PDU];                                    \
    size_t req_len, rsp_len;                                                                       \
    keel_modbus_err e = (build_call);                                                              \
    if (e == KEEL_MODBUS_OK) {                                                                     \
        e = keel_modbus_client_transact(c, unit, req, req_len, rsp, sizeof rsp, &rsp_len);         \
    }

keel_modbus_err keel_modbus_read_bits(keel_modbus_client *c, uint8_t unit, uint8_t fc,
                                      uint16_t addr, uint16_t count, uint8_t *bits)
{
    if (fc != 1 && fc != 2) {
        return KEEL_MODBUS_ERR_ARG;
    }
    TRANSACT(c, unit, keel_modbus_req_read(fc, addr, count, req, sizeof req, &req_len));
    if (e == KEEL_MODBUS_OK) {
        e = keel_modbus_rsp_bits(req, req_len, rsp, rsp_len, bits, (count + 7u) / 8u, NULL);
    }
    return e;
}

keel_modbus_err keel_modbus_read_registers(keel_modbus_client *c, uint8_t unit, uint8_t fc,
                                           uint16_t addr, uint16_t count, uint16_t *regs)
{
    if (fc != 3 && fc != 4) {
        return KEEL_MODBUS_ERR_ARG;
    }
    TRANSACT(c, unit, keel_modbus_req_read(fc, addr, count, req, sizeof req, &req_len));
    if (e == KEEL_MODBUS_OK) {
        e = keel_modbus_rsp_registers(req, req_len, rsp, rsp_len, regs, count, NULL);
    }
    return e;
}

keel_modbus_err keel_modbus_write_coil(keel_modbus_client *c, uint8_t unit, uint16_t addr, bool on)
{
    TRANSACT(c, unit, keel_modbus_req_write_coil(addr, on, req, sizeof req, &req_len));
    return e;
}

keel_modbus_err keel_modbus_write_register(keel_modbus_client *c, uint8_t unit, uint16_t addr,
                                           uint16_t value)
{
    TRANSACT(c, unit, keel_modbus_req_write_register(addr, value, req, sizeof req, &req_len));
    return e;
}

keel_modbus_err keel_modbus_write_registers(keel_modbus_client *c, uint8_t unit, uint16_t addr,
                                            uint16_t count, const uint16_t *values)
{
    TRANSACT(c, unit,
             keel_modbus_req_write_registers(addr, count, values, req, sizeof req, &req_len));
    return e;
}

keel_modbus_err keel_modbus_write_coils(keel_modbus_client *c, uint8_t unit, uint16_t addr,
                                        uint16_t count, const uint8_t *bits)
{
    TRANSACT(c, unit, keel_modbus_req_write_coils(addr, count, bits, req, sizeof req, &req_len));
    return e;
}

keel_modbus_err keel_modbus_read_write_registers(keel_modbus_client *c, uint8_t unit,
                                                 uint16_t raddr, uint16_t rcount, uint16_t *rregs,
                                                 uint16_t waddr, uint16_t wcount,
                                                 const uint16_t *wregs)
{
    TRANSACT(
        c, unit,
        keel_modbus_req_read_write(raddr, rcount, waddr, wcount, wregs, req, sizeof req, &req_len));
    if (e == KEEL_MODBUS_OK) {
        e = keel_modbus_rsp_registers(req, req_len, rsp, rsp_len, rregs, rcount, NULL);
    }
    return e;
}

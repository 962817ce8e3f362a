/* The sensor link over MODBUS: keel_update_sensor_push's requests as FC 3, 16, 21 and 43/14
 * through keel_modbus_client, over TCP, RTU over TCP, or RTU on a serial line. A sensor that
 * restarts (after a commit, or a power cut) drops a TCP connection; the link reconnects on the
 * next request, and a request that finds no connection or no answer reports "unanswered" so
 * the push resumes from the sensor's NEXT. On a serial line a silent sensor is a timeout. */
#include <stdio.h>
#include <string.h>

#include "keel/modbus.h"
#include "update_priv.h"

static bool connected(keel_update_sensor_modbus *t)
{
    if (t->client) {
        return true;
    }
    keel_modbus_err e;
    if (t->device[0]) {
        keel_modbus_serial_opts o = {0};
        char parity = t->parity ? t->parity : 'E';
        o.line = (keel_modbus_line){t->baud ? t->baud : 19200, 8,
                                    parity == 'N'   ? KEEL_MODBUS_PARITY_NONE
                                    : parity == 'O' ? KEEL_MODBUS_PARITY_ODD
                                                    : KEEL_MODBUS_PARITY_EVEN,
                                    parity == 'N' ? 2 : 1};
        o.rs485 = t->rs485;
        e = keel_modbus_client_serial(t->device, &o, &t->client);
    } else {
        e = keel_modbus_client_tcp(t->host, t->port, t->rtu_over_tcp, &t->client);
    }
    if (e != KEEL_MODBUS_OK) {
        t->client = NULL;
        return false;
    }
    keel_modbus_client_set_timeout(t->client, t->timeout_us ? t->timeout_us : 500000u);
    return true;
}

/* Maps a client result: 0 done, > 0 the exception, -1 no answer (and drop the connection). */
static int result(keel_update_sensor_modbus *t, keel_modbus_err e, uint8_t exc)
{
    if (e == KEEL_MODBUS_OK) {
        return 0;
    }
    if (e == KEEL_MODBUS_ERR_EXCEPTION) {
        return exc ? exc : keel_modbus_client_last_exception(t->client);
    }
    if (!t->device[0] || e == KEEL_MODBUS_ERR_IO || e == KEEL_MODBUS_ERR_CLOSED) {
        keel_update_sensor_modbus_close(t); /* reconnect (reopen) on the next request */
    }
    return -1;
}

static int transact(keel_update_sensor_modbus *t, const uint8_t *req, size_t req_len, uint8_t *rsp,
                    size_t cap, size_t *rsp_len, uint8_t *exc)
{
    keel_modbus_err e = keel_modbus_client_transact(t->client, t->unit, req, req_len, rsp, cap,
                                                    rsp_len);
    *exc = 0;
    if (e == KEEL_MODBUS_OK) {
        e = keel_modbus_rsp_check(req, req_len, rsp, *rsp_len, exc);
    }
    return result(t, e, *exc);
}

static int tcp_read(void *ctx, uint16_t addr, uint16_t count, uint16_t *regs)
{
    keel_update_sensor_modbus *t = ctx;
    if (!connected(t)) {
        return -1;
    }
    return result(t, keel_modbus_read_registers(t->client, t->unit,
                                                KEEL_MODBUS_FC_READ_HOLDING_REGISTERS, addr,
                                                count, regs),
                  0);
}

static int tcp_write(void *ctx, uint16_t addr, uint16_t count, const uint16_t *regs)
{
    keel_update_sensor_modbus *t = ctx;
    if (!connected(t)) {
        return -1;
    }
    return result(t, keel_modbus_write_registers(t->client, t->unit, addr, count, regs), 0);
}

static int tcp_file(void *ctx, uint16_t file, uint16_t record, uint16_t count,
                    const uint16_t *regs)
{
    keel_update_sensor_modbus *t = ctx;
    if (!connected(t)) {
        return -1;
    }
    keel_modbus_file_ref ref = {file, record, count, (uint16_t *)regs};
    uint8_t req[KEEL_MODBUS_MAX_PDU], rsp[KEEL_MODBUS_MAX_PDU], exc;
    size_t req_len, rsp_len;
    if (keel_modbus_req_write_file(&ref, 1, req, sizeof req, &req_len) != KEEL_MODBUS_OK) {
        return 3; /* the request cannot be built: as the sensor would say, illegal value */
    }
    return transact(t, req, req_len, rsp, sizeof rsp, &rsp_len, &exc);
}

static int tcp_version(void *ctx, char *out, size_t cap)
{
    keel_update_sensor_modbus *t = ctx;
    if (!connected(t)) {
        return -1;
    }
    uint8_t req[16], rsp[KEEL_MODBUS_MAX_PDU], exc;
    size_t req_len, rsp_len;
    if (keel_modbus_req_device_id(4, 2, req, sizeof req, &req_len) != KEEL_MODBUS_OK) {
        return 3;
    }
    int r = transact(t, req, req_len, rsp, sizeof rsp, &rsp_len, &exc);
    if (r != 0) {
        return r;
    }
    keel_modbus_device_id id;
    if (keel_modbus_rsp_device_id(rsp, rsp_len, &id, &exc) != KEEL_MODBUS_OK) {
        return -1;
    }
    for (uint8_t i = 0; i < id.count; i++) {
        if (id.objects[i].id == 2) {
            snprintf(out, cap, "%.*s", (int)id.objects[i].len, (const char *)id.objects[i].value);
            return 0;
        }
    }
    return 2;
}

void keel_update_sensor_link_modbus(keel_update_sensor_modbus *tcp, keel_update_sensor_link *out)
{
    *out = (keel_update_sensor_link){tcp, tcp_read, tcp_write, tcp_file, tcp_version};
}

void keel_update_sensor_modbus_close(keel_update_sensor_modbus *tcp)
{
    if (tcp && tcp->client) {
        keel_modbus_client_close(tcp->client);
        tcp->client = NULL;
    }
}

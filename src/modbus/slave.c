/* The slave (server): a request PDU in, a reply PDU out, answered from a data model given as
 * callbacks.
 *
 * Checks follow the order of the state diagrams in the MODBUS Application Protocol spec:
 * function supported (else 01), quantity and byte count in range and consistent with the
 * frame's length (else 03), address range (else 02), then the model's own answer (02/03/04/...).
 * Every reply is built into a buffer of at least KEEL_MODBUS_MAX_PDU bytes, checked once at the
 * public boundary, so the handlers below cannot overrun it: each reply is bounded by the
 * protocol's quantity limits checked before it is written. */
#include <string.h>

#include "keel/modbus.h"
#include "modbus_private.h"

void keel_modbus_slave_init(keel_modbus_slave *s, uint8_t unit, const keel_modbus_model *model,
                            void *ctx)
{
    memset(s, 0, sizeof *s);
    s->unit = unit;
    s->model = model;
    s->ctx = ctx;
}

static size_t exception(keel_modbus_slave *s, uint8_t *rsp, uint8_t fc, uint8_t code)
{
    s->counters.bus_exceptions++;
    if (code == KEEL_MODBUS_EXC_ACKNOWLEDGE) {
        s->counters.server_nak++;
    } else if (code == KEEL_MODBUS_EXC_SERVER_DEVICE_BUSY) {
        s->counters.server_busy++;
    }
    rsp[0] = (uint8_t)(fc | 0x80);
    rsp[1] = code;
    return 2;
}

static bool span_ok(uint16_t addr, uint32_t count)
{
    return (uint32_t)addr + count <= 0x10000u;
}

static size_t read_bits(keel_modbus_slave *s, const uint8_t *q, size_t n, uint8_t *r)
{
    const keel_modbus_model *m = s->model;
    if (!m->read_bits) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_FUNCTION);
    }
    if (n != 5) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    }
    uint16_t addr = get16(q + 1);
    uint16_t count = get16(q + 3);
    if (count < 1 || count > KEEL_MODBUS_MAX_READ_BITS) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    }
    if (!span_ok(addr, count)) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
    }
    uint8_t nb = (uint8_t)((count + 7u) / 8u);
    memset(r + 2, 0, nb);
    uint8_t code = m->read_bits(s->ctx, q[0] == 1 ? KEEL_MODBUS_COILS : KEEL_MODBUS_DISCRETE_INPUTS,
                                addr, count, r + 2);
    if (code) {
        return exception(s, r, q[0], code);
    }
    if (count % 8) {
        r[1 + nb] &= (uint8_t)((1u << (count % 8)) - 1u);
    }
    r[0] = q[0];
    r[1] = nb;
    return 2u + nb;
}

static size_t read_regs(keel_modbus_slave *s, const uint8_t *q, size_t n, uint8_t *r)
{
    const keel_modbus_model *m = s->model;
    if (!m->read_regs) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_FUNCTION);
    }
    if (n != 5) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    }
    uint16_t addr = get16(q + 1);
    uint16_t count = get16(q + 3);
    if (count < 1 || count > KEEL_MODBUS_MAX_READ_REGS) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    }
    if (!span_ok(addr, count)) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
    }
    uint16_t regs[KEEL_MODBUS_MAX_READ_REGS];
    uint8_t code = m->read_regs(s->ctx, q[0] == 3 ? KEEL_MODBUS_HOLDING : KEEL_MODBUS_INPUT, addr,
                                count, regs);
    if (code) {
        return exception(s, r, q[0], code);
    }
    r[0] = q[0];
    r[1] = (uint8_t)(2 * count);
    for (uint16_t i = 0; i < count; i++) {
        put16(r + 2 + 2 * i, regs[i]);
    }
    return 2u + 2u * count;
}

static size_t write_coil(keel_modbus_slave *s, const uint8_t *q, size_t n, uint8_t *r)
{
    if (!s->model->write_bits) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_FUNCTION);
    }
    uint16_t v = n == 5 ? get16(q + 3) : 0;
    if (n != 5 || (v != 0 && v != 0xFF00)) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    }
    uint8_t bit = v ? 1 : 0;
    uint8_t code = s->model->write_bits(s->ctx, get16(q + 1), 1, &bit);
    if (code) {
        return exception(s, r, q[0], code);
    }
    memcpy(r, q, 5);
    return 5;
}

static size_t write_register(keel_modbus_slave *s, const uint8_t *q, size_t n, uint8_t *r)
{
    if (!s->model->write_regs) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_FUNCTION);
    }
    if (n != 5) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    }
    uint16_t v = get16(q + 3);
    uint8_t code = s->model->write_regs(s->ctx, get16(q + 1), 1, &v);
    if (code) {
        return exception(s, r, q[0], code);
    }
    memcpy(r, q, 5);
    return 5;
}

static size_t write_coils(keel_modbus_slave *s, const uint8_t *q, size_t n, uint8_t *r)
{
    if (!s->model->write_bits) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_FUNCTION);
    }
    if (n < 6) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    }
    uint16_t addr = get16(q + 1);
    uint16_t count = get16(q + 3);
    if (count < 1 || count > KEEL_MODBUS_MAX_WRITE_BITS || q[5] != (count + 7u) / 8u ||
        n != 6u + q[5]) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    }
    if (!span_ok(addr, count)) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
    }
    uint8_t code = s->model->write_bits(s->ctx, addr, count, q + 6);
    if (code) {
        return exception(s, r, q[0], code);
    }
    memcpy(r, q, 5);
    return 5;
}

static size_t write_registers(keel_modbus_slave *s, const uint8_t *q, size_t n, uint8_t *r)
{
    if (!s->model->write_regs) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_FUNCTION);
    }
    if (n < 6) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    }
    uint16_t addr = get16(q + 1);
    uint16_t count = get16(q + 3);
    if (count < 1 || count > KEEL_MODBUS_MAX_WRITE_REGS || q[5] != 2u * count || n != 6u + q[5]) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    }
    if (!span_ok(addr, count)) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
    }
    uint16_t regs[KEEL_MODBUS_MAX_WRITE_REGS];
    for (uint16_t i = 0; i < count; i++) {
        regs[i] = get16(q + 6 + 2 * i);
    }
    uint8_t code = s->model->write_regs(s->ctx, addr, count, regs);
    if (code) {
        return exception(s, r, q[0], code);
    }
    memcpy(r, q, 5);
    return 5;
}

static size_t mask_write(keel_modbus_slave *s, const uint8_t *q, size_t n, uint8_t *r)
{
    const keel_modbus_model *m = s->model;
    if (!m->read_regs || !m->write_regs) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_FUNCTION);
    }
    if (n != 7) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    }
    uint16_t addr = get16(q + 1);
    uint16_t and_mask = get16(q + 3);
    uint16_t or_mask = get16(q + 5);
    uint16_t cur;
    uint8_t code = m->read_regs(s->ctx, KEEL_MODBUS_HOLDING, addr, 1, &cur);
    if (!code) {
        /* The spec's formula: (current AND and_mask) OR (or_mask AND NOT and_mask). */
        cur = (uint16_t)((cur & and_mask) | (or_mask & (uint16_t)~and_mask));
        code = m->write_regs(s->ctx, addr, 1, &cur);
    }
    if (code) {
        return exception(s, r, q[0], code);
    }
    memcpy(r, q, 7);
    return 7;
}

static size_t read_write(keel_modbus_slave *s, const uint8_t *q, size_t n, uint8_t *r)
{
    const keel_modbus_model *m = s->model;
    if (!m->read_regs || !m->write_regs) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_FUNCTION);
    }
    if (n < 10) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    }
    uint16_t raddr = get16(q + 1);
    uint16_t rcount = get16(q + 3);
    uint16_t waddr = get16(q + 5);
    uint16_t wcount = get16(q + 7);
    if (rcount < 1 || rcount > KEEL_MODBUS_MAX_READ_REGS || wcount < 1 ||
        wcount > KEEL_MODBUS_MAX_RW_WRITE_REGS || q[9] != 2u * wcount || n != 10u + q[9]) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    }
    if (!span_ok(raddr, rcount) || !span_ok(waddr, wcount)) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
    }
    uint16_t regs[KEEL_MODBUS_MAX_READ_REGS];
    for (uint16_t i = 0; i < wcount; i++) {
        regs[i] = get16(q + 10 + 2 * i);
    }
    /* The write happens before the read (spec 6.17). */
    uint8_t code = m->write_regs(s->ctx, waddr, wcount, regs);
    if (!code) {
        code = m->read_regs(s->ctx, KEEL_MODBUS_HOLDING, raddr, rcount, regs);
    }
    if (code) {
        return exception(s, r, q[0], code);
    }
    r[0] = q[0];
    r[1] = (uint8_t)(2 * rcount);
    for (uint16_t i = 0; i < rcount; i++) {
        put16(r + 2 + 2 * i, regs[i]);
    }
    return 2u + 2u * rcount;
}

/* FC 8. Returns SIZE_MAX for "send no reply" (force listen only, restart from listen-only). */
static size_t diagnostics(keel_modbus_slave *s, const uint8_t *q, size_t n, uint8_t *r)
{
    if (n < 5 || (n % 2) == 0) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    }
    uint16_t sub = get16(q + 1);
    uint16_t data = get16(q + 3);
    keel_modbus_counters *c = &s->counters;
    uint32_t value;
    switch (sub) {
    case KEEL_MODBUS_DIAG_RETURN_QUERY_DATA:
        memcpy(r, q, n);
        return n;
    case KEEL_MODBUS_DIAG_RESTART_COMM: {
        if (n != 5 || (data != 0 && data != 0xFF00)) {
            return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
        }
        bool was_listening = s->listen_only;
        memset(c, 0, sizeof *c);
        s->listen_only = false;
        if (was_listening) {
            return SIZE_MAX;
        }
        memcpy(r, q, n);
        return n;
    }
    case KEEL_MODBUS_DIAG_FORCE_LISTEN_ONLY:
        s->listen_only = true;
        return SIZE_MAX;
    case KEEL_MODBUS_DIAG_CLEAR_COUNTERS:
    case KEEL_MODBUS_DIAG_CLEAR_OVERRUN:
        if (n != 5 || data != 0) {
            return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
        }
        if (sub == KEEL_MODBUS_DIAG_CLEAR_COUNTERS) {
            memset(c, 0, sizeof *c);
            s->diag_register = 0;
        } else {
            c->char_overruns = 0;
        }
        memcpy(r, q, n);
        return n;
    case KEEL_MODBUS_DIAG_RETURN_REGISTER:
        value = s->diag_register;
        break;
    case KEEL_MODBUS_DIAG_BUS_MESSAGE_COUNT:
        value = c->bus_messages;
        break;
    case KEEL_MODBUS_DIAG_BUS_COMM_ERROR_COUNT:
        value = c->bus_comm_errors;
        break;
    case KEEL_MODBUS_DIAG_BUS_EXCEPTION_COUNT:
        value = c->bus_exceptions;
        break;
    case KEEL_MODBUS_DIAG_SERVER_MESSAGE_COUNT:
        value = c->server_messages;
        break;
    case KEEL_MODBUS_DIAG_SERVER_NO_RESPONSE_COUNT:
        value = c->server_no_response;
        break;
    case KEEL_MODBUS_DIAG_SERVER_NAK_COUNT:
        value = c->server_nak;
        break;
    case KEEL_MODBUS_DIAG_SERVER_BUSY_COUNT:
        value = c->server_busy;
        break;
    case KEEL_MODBUS_DIAG_BUS_CHAR_OVERRUN_COUNT:
        value = c->char_overruns;
        break;
    default:
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_FUNCTION);
    }
    if (n != 5 || data != 0) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    }
    r[0] = q[0];
    put16(r + 1, sub);
    put16(r + 3, (uint16_t)value);
    return 5;
}

static size_t server_id(keel_modbus_slave *s, const uint8_t *q, size_t n, uint8_t *r)
{
    if (!s->model->server_id) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_FUNCTION);
    }
    if (n != 1) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    }
    size_t len = s->model->server_id(s->ctx, r + 2, KEEL_MODBUS_MAX_PDU - 3);
    if (len > KEEL_MODBUS_MAX_PDU - 3) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_SERVER_DEVICE_FAILURE);
    }
    r[0] = q[0];
    r[1] = (uint8_t)(len + 1);
    r[2 + len] = 0xFF; /* run indicator: ON */
    return 3 + len;
}

static size_t read_file(keel_modbus_slave *s, const uint8_t *q, size_t n, uint8_t *r)
{
    if (!s->model->read_file) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_FUNCTION);
    }
    if (n < 2 || q[1] < 0x07 || q[1] > 0xF5 || q[1] % 7 || n != 2u + q[1]) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    }
    /* First pass: every sub-request valid and the whole reply fits one PDU. */
    size_t out = 2;
    for (size_t at = 2; at < n; at += 7) {
        uint16_t file = get16(q + at + 1);
        uint16_t rec = get16(q + at + 3);
        uint16_t cnt = get16(q + at + 5);
        if (q[at] != 6 || file == 0 || rec > KEEL_MODBUS_MAX_FILE_RECORD || cnt == 0 ||
            (uint32_t)rec + cnt - 1u > KEEL_MODBUS_MAX_FILE_RECORD) {
            return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
        }
        out += 2u + 2u * cnt;
        if (out > KEEL_MODBUS_MAX_PDU) {
            return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
        }
    }
    size_t w = 2;
    for (size_t at = 2; at < n; at += 7) {
        uint16_t cnt = get16(q + at + 5);
        uint16_t regs[KEEL_MODBUS_MAX_PDU / 2];
        uint8_t code = s->model->read_file(s->ctx, get16(q + at + 1), get16(q + at + 3), cnt, regs);
        if (code) {
            return exception(s, r, q[0], code);
        }
        r[w] = (uint8_t)(1 + 2 * cnt);
        r[w + 1] = 6;
        for (uint16_t k = 0; k < cnt; k++) {
            put16(r + w + 2 + 2 * k, regs[k]);
        }
        w += 2u + 2u * cnt;
    }
    r[0] = q[0];
    r[1] = (uint8_t)(w - 2);
    return w;
}

static size_t write_file(keel_modbus_slave *s, const uint8_t *q, size_t n, uint8_t *r)
{
    if (!s->model->write_file) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_FUNCTION);
    }
    if (n < 2 || q[1] < 0x09 || q[1] > 0xFB || n != 2u + q[1]) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    }
    /* First pass: the sub-requests tile the request exactly, each one valid. Nothing is
     * written unless all are, so a malformed request changes no file. */
    size_t at = 2;
    while (at < n) {
        if (n - at < 9) {
            return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
        }
        uint16_t file = get16(q + at + 1);
        uint16_t rec = get16(q + at + 3);
        uint16_t cnt = get16(q + at + 5);
        if (cnt == 0 || n - at - 7 < 2u * cnt) {
            return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
        }
        if (q[at] != 6 || file == 0 || rec > KEEL_MODBUS_MAX_FILE_RECORD ||
            (uint32_t)rec + cnt - 1u > KEEL_MODBUS_MAX_FILE_RECORD) {
            return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
        }
        at += 7u + 2u * cnt;
    }
    for (at = 2; at < n;) {
        uint16_t cnt = get16(q + at + 5);
        uint16_t regs[KEEL_MODBUS_MAX_PDU / 2];
        for (uint16_t k = 0; k < cnt; k++) {
            regs[k] = get16(q + at + 7 + 2 * k);
        }
        uint8_t code =
            s->model->write_file(s->ctx, get16(q + at + 1), get16(q + at + 3), cnt, regs);
        if (code) {
            return exception(s, r, q[0], code);
        }
        at += 7u + 2u * cnt;
    }
    memcpy(r, q, n);
    return n;
}

/* Highest object id of each read-device-id category: basic, regular, extended. */
static const uint8_t id_last[] = {0, 0x02, 0x7F, 0xFF};

static size_t device_id(keel_modbus_slave *s, const uint8_t *q, size_t n, uint8_t *r)
{
    const keel_modbus_model *m = s->model;
    if (n < 2 || q[1] != 0x0E || !m->device_id) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_FUNCTION);
    }
    if (n != 4 || q[2] < 1 || q[2] > 4) {
        return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE);
    }
    uint8_t code = q[2];
    uint8_t obj = q[3];
    bool regular = false;
    for (uint8_t id = 3; id <= 6; id++) {
        regular = regular || m->device_id(s->ctx, id) != NULL;
    }
    r[0] = q[0];
    r[1] = 0x0E;
    r[2] = code;
    r[3] = regular ? 0x82 : 0x81; /* + 0x80: individual access supported */
    r[4] = 0;
    r[5] = 0;
    r[6] = 0;
    size_t w = 7;
    if (code == 4) {
        const char *v = m->device_id(s->ctx, obj);
        if (!v) {
            return exception(s, r, q[0], KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
        }
        size_t len = bounded_len(v, KEEL_MODBUS_MAX_PDU - 9);
        r[w] = obj;
        r[w + 1] = (uint8_t)len;
        memcpy(r + w + 2, v, len);
        r[6] = 1;
        return w + 2 + len;
    }
    /* An object id outside the category restarts the stream at object 0 (spec 6.21). */
    uint8_t first = (code == 3 && obj < 0x80 && obj > 0x06) || obj > id_last[code] ? 0 : obj;
    for (unsigned id = first; id <= id_last[code]; id++) {
        const char *v = m->device_id(s->ctx, (uint8_t)id);
        if (!v) {
            continue;
        }
        size_t len = bounded_len(v, KEEL_MODBUS_MAX_PDU - 9);
        if (w + 2 + len > KEEL_MODBUS_MAX_PDU) {
            r[4] = 0xFF;        /* more follows */
            r[5] = (uint8_t)id; /* next object id */
            break;
        }
        r[w] = (uint8_t)id;
        r[w + 1] = (uint8_t)len;
        memcpy(r + w + 2, v, len);
        w += 2 + len;
        r[6]++;
    }
    return w;
}

/* Builds the reply to one request PDU; SIZE_MAX = no reply (diagnostics). */
static size_t dispatch(keel_modbus_slave *s, const uint8_t *q, size_t n, uint8_t *r)
{
    switch (q[0]) {
    case 1:
    case 2:
        return read_bits(s, q, n, r);
    case 3:
    case 4:
        return read_regs(s, q, n, r);
    case 5:
        return write_coil(s, q, n, r);
    case 6:
        return write_register(s, q, n, r);
    case 8:
        return diagnostics(s, q, n, r);
    case 15:
        return write_coils(s, q, n, r);
    case 16:
        return write_registers(s, q, n, r);
    case 17:
        return server_id(s, q, n, r);
    case 20:
        return read_file(s, q, n, r);
    case 21:
        return write_file(s, q, n, r);
    case 22:
        return mask_write(s, q, n, r);
    case 23:
        return read_write(s, q, n, r);
    case 43:
        return device_id(s, q, n, r);
    default:
        return exception(s, r, q[0] & 0x7F, KEEL_MODBUS_EXC_ILLEGAL_FUNCTION);
    }
}

/* `broadcast_silent`: RTU's unit 0 is a broadcast nobody answers; on TCP it is just a unit. */
static keel_modbus_err answer(keel_modbus_slave *s, uint8_t unit, bool broadcast_silent,
                              const uint8_t *req, size_t req_len, uint8_t *rsp, size_t cap,
                              size_t *rsp_len)
{
    if (!req || !rsp || !rsp_len) {
        return KEEL_MODBUS_ERR_ARG;
    }
    *rsp_len = 0;
    if (cap < KEEL_MODBUS_MAX_PDU) {
        return KEEL_MODBUS_ERR_NO_SPACE;
    }
    if (req_len == 0) {
        s->counters.bus_comm_errors++;
        return KEEL_MODBUS_ERR_SHORT;
    }
    if (req_len > KEEL_MODBUS_MAX_PDU) {
        s->counters.char_overruns++;
        return KEEL_MODBUS_ERR_TOO_BIG;
    }
    bool broadcast = unit == KEEL_MODBUS_BROADCAST && broadcast_silent;
    if (!broadcast && s->unit != 0 && unit != s->unit &&
        !(!broadcast_silent && (unit == 0 || unit == 0xFF))) {
        return KEEL_MODBUS_OK; /* another slave's request */
    }
    s->counters.server_messages++;
    if (s->listen_only && !(req[0] == KEEL_MODBUS_FC_DIAGNOSTICS && req_len >= 3 &&
                            get16(req + 1) == KEEL_MODBUS_DIAG_RESTART_COMM)) {
        s->counters.server_no_response++;
        return KEEL_MODBUS_OK;
    }
    size_t n = dispatch(s, req, req_len, rsp);
    if (n == SIZE_MAX || broadcast) {
        s->counters.server_no_response++;
        return KEEL_MODBUS_OK;
    }
    *rsp_len = n;
    return KEEL_MODBUS_OK;
}

keel_modbus_err keel_modbus_slave_pdu(keel_modbus_slave *s, uint8_t unit, const uint8_t *req,
                                      size_t req_len, uint8_t *rsp, size_t cap, size_t *rsp_len)
{
    if (!s || !s->model) {
        return KEEL_MODBUS_ERR_ARG;
    }
    return answer(s, unit, true, req, req_len, rsp, cap, rsp_len);
}

keel_modbus_err keel_modbus_slave_rtu(keel_modbus_slave *s, const uint8_t *adu, size_t len,
                                      uint8_t *out, size_t cap, size_t *out_len)
{
    if (!s || !s->model || !adu || !out || !out_len) {
        return KEEL_MODBUS_ERR_ARG;
    }
    *out_len = 0;
    if (cap < KEEL_MODBUS_MAX_RTU_ADU) {
        return KEEL_MODBUS_ERR_NO_SPACE;
    }
    s->counters.bus_messages++;
    if (len > KEEL_MODBUS_MAX_RTU_ADU) {
        s->counters.char_overruns++;
        s->counters.bus_comm_errors++;
        return KEEL_MODBUS_ERR_TOO_BIG;
    }
    uint8_t unit;
    const uint8_t *pdu;
    size_t pdu_len;
    keel_modbus_err e = keel_modbus_rtu_parse(adu, len, &unit, &pdu, &pdu_len);
    if (e != KEEL_MODBUS_OK) {
        s->counters.bus_comm_errors++;
        return e;
    }
    size_t rsp_len;
    e = answer(s, unit, true, pdu, pdu_len, out + 1, cap - 3, &rsp_len);
    if (e != KEEL_MODBUS_OK || rsp_len == 0) {
        return e;
    }
    return keel_modbus_rtu_frame(unit, out + 1, rsp_len, out, cap, out_len);
}

keel_modbus_err keel_modbus_slave_tcp(keel_modbus_slave *s, const uint8_t *buf, size_t len,
                                      size_t *consumed, uint8_t *out, size_t cap, size_t *out_len)
{
    if (!s || !s->model || !buf || !consumed || !out || !out_len) {
        return KEEL_MODBUS_ERR_ARG;
    }
    *out_len = 0;
    if (cap < KEEL_MODBUS_MAX_TCP_ADU) {
        return KEEL_MODBUS_ERR_NO_SPACE;
    }
    keel_modbus_mbap hdr;
    const uint8_t *pdu;
    size_t pdu_len;
    keel_modbus_err e = keel_modbus_tcp_parse(buf, len, &hdr, &pdu, &pdu_len, consumed);
    if (e == KEEL_MODBUS_ERR_FRAME) {
        s->counters.bus_messages++;
        s->counters.bus_comm_errors++;
    }
    if (e != KEEL_MODBUS_OK) {
        return e;
    }
    s->counters.bus_messages++;
    size_t rsp_len;
    e = answer(s, hdr.unit, false, pdu, pdu_len, out + 7, cap - 7, &rsp_len);
    if (e != KEEL_MODBUS_OK || rsp_len == 0) {
        return e;
    }
    return keel_modbus_tcp_frame(hdr.tid, hdr.unit, out + 7, rsp_len, out, cap, out_len);
}

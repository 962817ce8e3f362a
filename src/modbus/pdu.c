/* The master's side of the PDU: building requests and checking replies against them.
 *
 * Builders check the protocol's limits (counts, byte counts, record numbers) so a request
 * Keel sends is always one a conforming slave accepts. Reply checks compare the reply with
 * the request it answers, field by field: a reply to another request (a late one, a
 * misaddressed one) is ERR_MISMATCH, never data. */
#include <string.h>

#include "keel/modbus.h"
#include "modbus_private.h"

static keel_modbus_err room(uint8_t *out, size_t cap, size_t *len, size_t need)
{
    if (!out || !len) {
        return KEEL_MODBUS_ERR_ARG;
    }
    if (need > KEEL_MODBUS_MAX_PDU) {
        return KEEL_MODBUS_ERR_TOO_BIG;
    }
    if (cap < need) {
        return KEEL_MODBUS_ERR_NO_SPACE;
    }
    *len = need;
    return KEEL_MODBUS_OK;
}

keel_modbus_err keel_modbus_req_read(uint8_t fc, uint16_t addr, uint16_t count, uint8_t *out,
                                     size_t cap, size_t *len)
{
    uint16_t max = fc <= 2 ? KEEL_MODBUS_MAX_READ_BITS : KEEL_MODBUS_MAX_READ_REGS;
    if (fc < 1 || fc > 4 || count == 0 || count > max || (uint32_t)addr + count > 0x10000u) {
        return KEEL_MODBUS_ERR_ARG;
    }
    keel_modbus_err e = room(out, cap, len, 5);
    if (e == KEEL_MODBUS_OK) {
        out[0] = fc;
        put16(out + 1, addr);
        put16(out + 3, count);
    }
    return e;
}

static keel_modbus_err single(uint8_t fc, uint16_t addr, uint16_t value, uint8_t *out, size_t cap,
                              size_t *len)
{
    keel_modbus_err e = room(out, cap, len, 5);
    if (e == KEEL_MODBUS_OK) {
        out[0] = fc;
        put16(out + 1, addr);
        put16(out + 3, value);
    }
    return e;
}

keel_modbus_err keel_modbus_req_write_coil(uint16_t addr, bool on, uint8_t *out, size_t cap,
                                           size_t *len)
{
    return single(KEEL_MODBUS_FC_WRITE_SINGLE_COIL, addr, on ? 0xFF00 : 0x0000, out, cap, len);
}

keel_modbus_err keel_modbus_req_write_register(uint16_t addr, uint16_t value, uint8_t *out,
                                               size_t cap, size_t *len)
{
    return single(KEEL_MODBUS_FC_WRITE_SINGLE_REGISTER, addr, value, out, cap, len);
}

keel_modbus_err keel_modbus_req_write_coils(uint16_t addr, uint16_t count, const uint8_t *bits,
                                            uint8_t *out, size_t cap, size_t *len)
{
    if (!bits || count == 0 || count > KEEL_MODBUS_MAX_WRITE_BITS ||
        (uint32_t)addr + count > 0x10000u) {
        return KEEL_MODBUS_ERR_ARG;
    }
    size_t nb = (count + 7u) / 8u;
    keel_modbus_err e = room(out, cap, len, 6 + nb);
    if (e == KEEL_MODBUS_OK) {
        out[0] = KEEL_MODBUS_FC_WRITE_MULTIPLE_COILS;
        put16(out + 1, addr);
        put16(out + 3, count);
        out[5] = (uint8_t)nb;
        memcpy(out + 6, bits, nb);
        if (count % 8) {
            out[5 + nb] &= (uint8_t)((1u << (count % 8)) - 1u); /* unused bits are zero */
        }
    }
    return e;
}

keel_modbus_err keel_modbus_req_write_registers(uint16_t addr, uint16_t count,
                                                const uint16_t *values, uint8_t *out, size_t cap,
                                                size_t *len)
{
    if (!values || count == 0 || count > KEEL_MODBUS_MAX_WRITE_REGS ||
        (uint32_t)addr + count > 0x10000u) {
        return KEEL_MODBUS_ERR_ARG;
    }
    keel_modbus_err e = room(out, cap, len, 6 + 2u * count);
    if (e == KEEL_MODBUS_OK) {
        out[0] = KEEL_MODBUS_FC_WRITE_MULTIPLE_REGISTERS;
        put16(out + 1, addr);
        put16(out + 3, count);
        out[5] = (uint8_t)(2 * count);
        for (uint16_t i = 0; i < count; i++) {
            put16(out + 6 + 2 * i, values[i]);
        }
    }
    return e;
}

keel_modbus_err keel_modbus_req_mask_write(uint16_t addr, uint16_t and_mask, uint16_t or_mask,
                                           uint8_t *out, size_t cap, size_t *len)
{
    keel_modbus_err e = room(out, cap, len, 7);
    if (e == KEEL_MODBUS_OK) {
        out[0] = KEEL_MODBUS_FC_MASK_WRITE_REGISTER;
        put16(out + 1, addr);
        put16(out + 3, and_mask);
        put16(out + 5, or_mask);
    }
    return e;
}

keel_modbus_err keel_modbus_req_read_write(uint16_t raddr, uint16_t rcount, uint16_t waddr,
                                           uint16_t wcount, const uint16_t *values, uint8_t *out,
                                           size_t cap, size_t *len)
{
    if (!values || rcount == 0 || rcount > KEEL_MODBUS_MAX_READ_REGS || wcount == 0 ||
        wcount > KEEL_MODBUS_MAX_RW_WRITE_REGS || (uint32_t)raddr + rcount > 0x10000u ||
        (uint32_t)waddr + wcount > 0x10000u) {
        return KEEL_MODBUS_ERR_ARG;
    }
    keel_modbus_err e = room(out, cap, len, 10 + 2u * wcount);
    if (e == KEEL_MODBUS_OK) {
        out[0] = KEEL_MODBUS_FC_READ_WRITE_REGISTERS;
        put16(out + 1, raddr);
        put16(out + 3, rcount);
        put16(out + 5, waddr);
        put16(out + 7, wcount);
        out[9] = (uint8_t)(2 * wcount);
        for (uint16_t i = 0; i < wcount; i++) {
            put16(out + 10 + 2 * i, values[i]);
        }
    }
    return e;
}

keel_modbus_err keel_modbus_req_diagnostics(uint16_t sub, const uint16_t *data, size_t n,
                                            uint8_t *out, size_t cap, size_t *len)
{
    if ((n && !data) || n == 0 || n > (KEEL_MODBUS_MAX_PDU - 3) / 2) {
        return KEEL_MODBUS_ERR_ARG;
    }
    keel_modbus_err e = room(out, cap, len, 3 + 2 * n);
    if (e == KEEL_MODBUS_OK) {
        out[0] = KEEL_MODBUS_FC_DIAGNOSTICS;
        put16(out + 1, sub);
        for (size_t i = 0; i < n; i++) {
            put16(out + 3 + 2 * i, data[i]);
        }
    }
    return e;
}

keel_modbus_err keel_modbus_req_report_server_id(uint8_t *out, size_t cap, size_t *len)
{
    keel_modbus_err e = room(out, cap, len, 1);
    if (e == KEEL_MODBUS_OK) {
        out[0] = KEEL_MODBUS_FC_REPORT_SERVER_ID;
    }
    return e;
}

static bool file_ref_ok(const keel_modbus_file_ref *r)
{
    return r->file != 0 && r->record <= KEEL_MODBUS_MAX_FILE_RECORD && r->count != 0 &&
           (uint32_t)r->record + r->count - 1u <= KEEL_MODBUS_MAX_FILE_RECORD;
}

keel_modbus_err keel_modbus_req_read_file(const keel_modbus_file_ref *refs, size_t n, uint8_t *out,
                                          size_t cap, size_t *len)
{
    if (!refs || n == 0 || n > 35) {
        return KEEL_MODBUS_ERR_ARG;
    }
    size_t reply = 2; /* fc, resp data length */
    for (size_t i = 0; i < n; i++) {
        if (!file_ref_ok(&refs[i])) {
            return KEEL_MODBUS_ERR_ARG;
        }
        reply += 2u + 2u * refs[i].count;
    }
    if (reply > KEEL_MODBUS_MAX_PDU) {
        return KEEL_MODBUS_ERR_TOO_BIG; /* the reply would not fit a PDU */
    }
    keel_modbus_err e = room(out, cap, len, 2 + 7 * n);
    if (e == KEEL_MODBUS_OK) {
        out[0] = KEEL_MODBUS_FC_READ_FILE_RECORD;
        out[1] = (uint8_t)(7 * n);
        uint8_t *p = out + 2;
        for (size_t i = 0; i < n; i++, p += 7) {
            p[0] = 6;
            put16(p + 1, refs[i].file);
            put16(p + 3, refs[i].record);
            put16(p + 5, refs[i].count);
        }
    }
    return e;
}

keel_modbus_err keel_modbus_req_write_file(const keel_modbus_file_ref *refs, size_t n, uint8_t *out,
                                           size_t cap, size_t *len)
{
    if (!refs || n == 0) {
        return KEEL_MODBUS_ERR_ARG;
    }
    size_t need = 2;
    for (size_t i = 0; i < n; i++) {
        if (!file_ref_ok(&refs[i]) || !refs[i].data) {
            return KEEL_MODBUS_ERR_ARG;
        }
        need += 7u + 2u * refs[i].count;
        if (need > KEEL_MODBUS_MAX_PDU) {
            return KEEL_MODBUS_ERR_TOO_BIG;
        }
    }
    keel_modbus_err e = room(out, cap, len, need);
    if (e == KEEL_MODBUS_OK) {
        out[0] = KEEL_MODBUS_FC_WRITE_FILE_RECORD;
        out[1] = (uint8_t)(need - 2);
        uint8_t *p = out + 2;
        for (size_t i = 0; i < n; i++) {
            p[0] = 6;
            put16(p + 1, refs[i].file);
            put16(p + 3, refs[i].record);
            put16(p + 5, refs[i].count);
            for (uint16_t k = 0; k < refs[i].count; k++) {
                put16(p + 7 + 2 * k, refs[i].data[k]);
            }
            p += 7 + 2 * refs[i].count;
        }
    }
    return e;
}

keel_modbus_err keel_modbus_req_device_id(uint8_t code, uint8_t object_id, uint8_t *out, size_t cap,
                                          size_t *len)
{
    if (code < 1 || code > 4) {
        return KEEL_MODBUS_ERR_ARG;
    }
    keel_modbus_err e = room(out, cap, len, 4);
    if (e == KEEL_MODBUS_OK) {
        out[0] = KEEL_MODBUS_FC_ENCAPSULATED;
        out[1] = 0x0E;
        out[2] = code;
        out[3] = object_id;
    }
    return e;
}

uint8_t keel_modbus_rsp_exception(const uint8_t *rsp, size_t rsp_len)
{
    if (!rsp || rsp_len != 2 || !(rsp[0] & 0x80)) {
        return 0;
    }
    return rsp[1];
}

keel_modbus_err keel_modbus_rsp_check(const uint8_t *req, size_t req_len, const uint8_t *rsp,
                                      size_t rsp_len, uint8_t *exc)
{
    if (!req || !rsp || req_len == 0) {
        return KEEL_MODBUS_ERR_ARG;
    }
    if (exc) {
        *exc = 0;
    }
    if (rsp_len == 0) {
        return KEEL_MODBUS_ERR_SHORT;
    }
    uint8_t fc = req[0];
    if (rsp[0] == (fc | 0x80)) {
        if (rsp_len != 2) {
            return KEEL_MODBUS_ERR_FRAME;
        }
        if (exc) {
            *exc = rsp[1];
        }
        return KEEL_MODBUS_ERR_EXCEPTION;
    }
    if (rsp[0] != fc) {
        return KEEL_MODBUS_ERR_MISMATCH;
    }
    switch (fc) {
    case 1:
    case 2:
    case 3:
    case 4:
    case 23: {
        if (rsp_len < 2 || rsp_len != 2u + rsp[1]) {
            return KEEL_MODBUS_ERR_FRAME;
        }
        uint16_t count = get16(req + (fc == 23 ? 3 : 3));
        size_t want = fc <= 2 ? (count + 7u) / 8u : 2u * count;
        return rsp[1] == want ? KEEL_MODBUS_OK : KEEL_MODBUS_ERR_MISMATCH;
    }
    case 5:
    case 6:
    case 22:
    case 21:
        if (rsp_len != req_len) {
            return KEEL_MODBUS_ERR_FRAME;
        }
        return memcmp(rsp, req, req_len) == 0 ? KEEL_MODBUS_OK : KEEL_MODBUS_ERR_MISMATCH;
    case 15:
    case 16:
        if (rsp_len != 5) {
            return KEEL_MODBUS_ERR_FRAME;
        }
        return memcmp(rsp, req, 5) == 0 ? KEEL_MODBUS_OK : KEEL_MODBUS_ERR_MISMATCH;
    case 8: {
        if (rsp_len < 3) {
            return KEEL_MODBUS_ERR_FRAME;
        }
        if (req_len < 3 || get16(rsp + 1) != get16(req + 1)) {
            return KEEL_MODBUS_ERR_MISMATCH;
        }
        uint16_t sub = get16(req + 1);
        if (sub == KEEL_MODBUS_DIAG_RETURN_QUERY_DATA || sub == KEEL_MODBUS_DIAG_RESTART_COMM ||
            sub == KEEL_MODBUS_DIAG_CLEAR_COUNTERS || sub == KEEL_MODBUS_DIAG_CLEAR_OVERRUN) {
            return rsp_len == req_len && memcmp(rsp, req, req_len) == 0 ? KEEL_MODBUS_OK
                                                                        : KEEL_MODBUS_ERR_MISMATCH;
        }
        return rsp_len == 5 ? KEEL_MODBUS_OK : KEEL_MODBUS_ERR_FRAME;
    }
    case 17:
    case 20:
        if (rsp_len < 2 || rsp_len != 2u + rsp[1]) {
            return KEEL_MODBUS_ERR_FRAME;
        }
        return KEEL_MODBUS_OK;
    case 43: {
        if (rsp_len < 7 || rsp[1] != 0x0E) {
            return KEEL_MODBUS_ERR_FRAME;
        }
        if (req_len >= 3 && rsp[2] != req[2]) {
            return KEEL_MODBUS_ERR_MISMATCH;
        }
        keel_modbus_device_id id;
        return keel_modbus_rsp_device_id(rsp, rsp_len, &id, NULL);
    }
    default:
        return KEEL_MODBUS_ERR_UNSUPPORTED;
    }
}

keel_modbus_err keel_modbus_rsp_bits(const uint8_t *req, size_t req_len, const uint8_t *rsp,
                                     size_t rsp_len, uint8_t *bits, size_t cap, uint8_t *exc)
{
    if (!bits || req_len < 5 || (req[0] != 1 && req[0] != 2)) {
        return KEEL_MODBUS_ERR_ARG;
    }
    keel_modbus_err e = keel_modbus_rsp_check(req, req_len, rsp, rsp_len, exc);
    if (e != KEEL_MODBUS_OK) {
        return e;
    }
    if (cap < rsp[1]) {
        return KEEL_MODBUS_ERR_NO_SPACE;
    }
    memcpy(bits, rsp + 2, rsp[1]);
    return KEEL_MODBUS_OK;
}

keel_modbus_err keel_modbus_rsp_registers(const uint8_t *req, size_t req_len, const uint8_t *rsp,
                                          size_t rsp_len, uint16_t *regs, size_t cap, uint8_t *exc)
{
    if (!regs || req_len < 5 || (req[0] != 3 && req[0] != 4 && req[0] != 23)) {
        return KEEL_MODBUS_ERR_ARG;
    }
    keel_modbus_err e = keel_modbus_rsp_check(req, req_len, rsp, rsp_len, exc);
    if (e != KEEL_MODBUS_OK) {
        return e;
    }
    size_t n = rsp[1] / 2u;
    if (cap < n) {
        return KEEL_MODBUS_ERR_NO_SPACE;
    }
    for (size_t i = 0; i < n; i++) {
        regs[i] = get16(rsp + 2 + 2 * i);
    }
    return KEEL_MODBUS_OK;
}

keel_modbus_err keel_modbus_rsp_read_file(const uint8_t *rsp, size_t rsp_len,
                                          keel_modbus_file_ref *refs, size_t n, uint8_t *exc)
{
    if (!rsp || !refs || n == 0) {
        return KEEL_MODBUS_ERR_ARG;
    }
    uint8_t req0 = KEEL_MODBUS_FC_READ_FILE_RECORD;
    keel_modbus_err e = keel_modbus_rsp_check(&req0, 1, rsp, rsp_len, exc);
    if (e != KEEL_MODBUS_OK) {
        return e;
    }
    size_t at = 2;
    for (size_t i = 0; i < n; i++) {
        if (at + 2 > rsp_len) {
            return KEEL_MODBUS_ERR_FRAME;
        }
        size_t sub_len = rsp[at];
        if (rsp[at + 1] != 6 || sub_len != 1u + 2u * refs[i].count || at + 1 + sub_len > rsp_len) {
            return sub_len != 1u + 2u * refs[i].count ? KEEL_MODBUS_ERR_MISMATCH
                                                      : KEEL_MODBUS_ERR_FRAME;
        }
        for (uint16_t k = 0; k < refs[i].count; k++) {
            if (refs[i].data) {
                refs[i].data[k] = get16(rsp + at + 2 + 2 * k);
            }
        }
        at += 1 + sub_len;
    }
    return at == rsp_len ? KEEL_MODBUS_OK : KEEL_MODBUS_ERR_FRAME;
}

keel_modbus_err keel_modbus_rsp_device_id(const uint8_t *rsp, size_t rsp_len,
                                          keel_modbus_device_id *out, uint8_t *exc)
{
    if (!rsp || !out) {
        return KEEL_MODBUS_ERR_ARG;
    }
    if (exc) {
        *exc = 0;
    }
    if (rsp_len == 2 && rsp[0] == (0x80 | KEEL_MODBUS_FC_ENCAPSULATED)) {
        if (exc) {
            *exc = rsp[1];
        }
        return KEEL_MODBUS_ERR_EXCEPTION;
    }
    if (rsp_len < 7 || rsp[0] != KEEL_MODBUS_FC_ENCAPSULATED || rsp[1] != 0x0E) {
        return KEEL_MODBUS_ERR_FRAME;
    }
    out->conformity = rsp[3];
    out->more = rsp[4] == 0xFF;
    out->next_object = rsp[5];
    out->count = rsp[6];
    if (rsp[4] != 0 && rsp[4] != 0xFF) {
        return KEEL_MODBUS_ERR_FRAME;
    }
    size_t at = 7;
    for (unsigned i = 0; i < rsp[6]; i++) {
        if (at + 2 > rsp_len || at + 2u + rsp[at + 1] > rsp_len) {
            return KEEL_MODBUS_ERR_FRAME;
        }
        if (i < sizeof out->objects / sizeof out->objects[0]) {
            out->objects[i].id = rsp[at];
            out->objects[i].len = rsp[at + 1];
            out->objects[i].value = rsp + at + 2;
        }
        at += 2u + rsp[at + 1];
    }
    if (rsp[6] > sizeof out->objects / sizeof out->objects[0]) {
        return KEEL_MODBUS_ERR_FRAME;
    }
    return at == rsp_len ? KEEL_MODBUS_OK : KEEL_MODBUS_ERR_FRAME;
}

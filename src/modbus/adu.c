/* ADU framing: RTU (unit + PDU + CRC, delimited by silence) and TCP (MBAP header + PDU,
 * delimited by its length field), RTU character timing, and the names of errors and
 * exceptions. Nothing here keeps state: every function is a check-then-copy over bounded
 * buffers, so a frame that lies about its length is rejected before any byte moves. */
#include <string.h>

#include "keel/modbus.h"
#include "modbus_private.h"

const char *keel_modbus_err_name(keel_modbus_err e)
{
    static const char *const names[KEEL_MODBUS_ERR_COUNT] = {
        [KEEL_MODBUS_OK] = "KEEL_MODBUS_OK",
        [KEEL_MODBUS_ERR_AGAIN] = "KEEL_MODBUS_ERR_AGAIN",
        [KEEL_MODBUS_ERR_ARG] = "KEEL_MODBUS_ERR_ARG",
        [KEEL_MODBUS_ERR_NO_SPACE] = "KEEL_MODBUS_ERR_NO_SPACE",
        [KEEL_MODBUS_ERR_SHORT] = "KEEL_MODBUS_ERR_SHORT",
        [KEEL_MODBUS_ERR_TOO_BIG] = "KEEL_MODBUS_ERR_TOO_BIG",
        [KEEL_MODBUS_ERR_CRC] = "KEEL_MODBUS_ERR_CRC",
        [KEEL_MODBUS_ERR_FRAME] = "KEEL_MODBUS_ERR_FRAME",
        [KEEL_MODBUS_ERR_MISMATCH] = "KEEL_MODBUS_ERR_MISMATCH",
        [KEEL_MODBUS_ERR_EXCEPTION] = "KEEL_MODBUS_ERR_EXCEPTION",
        [KEEL_MODBUS_ERR_TIMEOUT] = "KEEL_MODBUS_ERR_TIMEOUT",
        [KEEL_MODBUS_ERR_BUSY] = "KEEL_MODBUS_ERR_BUSY",
        [KEEL_MODBUS_ERR_IO] = "KEEL_MODBUS_ERR_IO",
        [KEEL_MODBUS_ERR_CLOSED] = "KEEL_MODBUS_ERR_CLOSED",
        [KEEL_MODBUS_ERR_UNSUPPORTED] = "KEEL_MODBUS_ERR_UNSUPPORTED",
    };
    if ((unsigned)e >= KEEL_MODBUS_ERR_COUNT) {
        return "KEEL_MODBUS_ERR_UNKNOWN";
    }
    return names[e];
}

const char *keel_modbus_exc_name(uint8_t code)
{
    switch (code) {
    case KEEL_MODBUS_EXC_NONE:
        return "no exception";
    case KEEL_MODBUS_EXC_ILLEGAL_FUNCTION:
        return "illegal function";
    case KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS:
        return "illegal data address";
    case KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE:
        return "illegal data value";
    case KEEL_MODBUS_EXC_SERVER_DEVICE_FAILURE:
        return "server device failure";
    case KEEL_MODBUS_EXC_ACKNOWLEDGE:
        return "acknowledge";
    case KEEL_MODBUS_EXC_SERVER_DEVICE_BUSY:
        return "server device busy";
    case KEEL_MODBUS_EXC_MEMORY_PARITY_ERROR:
        return "memory parity error";
    case KEEL_MODBUS_EXC_GATEWAY_PATH_UNAVAILABLE:
        return "gateway path unavailable";
    case KEEL_MODBUS_EXC_GATEWAY_TARGET_FAILED:
        return "gateway target failed to respond";
    default:
        return "unknown exception";
    }
}

keel_modbus_err keel_modbus_rtu_timing_for(const keel_modbus_line *line,
                                           keel_modbus_rtu_timing *out)
{
    if (!line || !out || line->baud == 0 || line->data_bits < 5 || line->data_bits > 8 ||
        line->stop_bits < 1 || line->stop_bits > 2 || line->parity > KEEL_MODBUS_PARITY_ODD) {
        return KEEL_MODBUS_ERR_ARG;
    }
    uint32_t bits =
        1u + line->data_bits + (line->parity != KEEL_MODBUS_PARITY_NONE) + line->stop_bits;
    uint64_t char_ns = ((uint64_t)bits * 1000000000u + line->baud - 1) / line->baud;
    out->char_ns = (uint32_t)char_ns;
    out->bit_ns = (uint32_t)((1000000000ull + line->baud - 1) / line->baud);
    if (line->baud > 19200) {
        /* The spec fixes the timers above 19200 baud so fast lines need no tight timers. */
        out->t15_us = 750;
        out->t35_us = 1750;
    } else {
        out->t15_us = (uint32_t)((char_ns * 3 + 1999) / 2000);
        out->t35_us = (uint32_t)((char_ns * 7 + 1999) / 2000);
    }
    return KEEL_MODBUS_OK;
}

keel_modbus_err keel_modbus_rtu_frame(uint8_t unit, const uint8_t *pdu, size_t pdu_len,
                                      uint8_t *out, size_t cap, size_t *out_len)
{
    if (!pdu || !out || !out_len || pdu_len == 0) {
        return KEEL_MODBUS_ERR_ARG;
    }
    if (pdu_len > KEEL_MODBUS_MAX_PDU) {
        return KEEL_MODBUS_ERR_TOO_BIG;
    }
    if (cap < pdu_len + 3) {
        return KEEL_MODBUS_ERR_NO_SPACE;
    }
    out[0] = unit;
    memmove(out + 1, pdu, pdu_len);
    uint16_t crc = keel_modbus_crc16(out, pdu_len + 1);
    out[pdu_len + 1] = (uint8_t)(crc & 0xFF);
    out[pdu_len + 2] = (uint8_t)(crc >> 8);
    *out_len = pdu_len + 3;
    return KEEL_MODBUS_OK;
}

keel_modbus_err keel_modbus_rtu_parse(const uint8_t *adu, size_t len, uint8_t *unit,
                                      const uint8_t **pdu, size_t *pdu_len)
{
    if (!adu || !unit || !pdu || !pdu_len) {
        return KEEL_MODBUS_ERR_ARG;
    }
    if (len < 4) {
        return KEEL_MODBUS_ERR_SHORT;
    }
    if (len > KEEL_MODBUS_MAX_RTU_ADU) {
        return KEEL_MODBUS_ERR_TOO_BIG;
    }
    uint16_t crc = keel_modbus_crc16(adu, len - 2);
    if ((uint8_t)(crc & 0xFF) != adu[len - 2] || (uint8_t)(crc >> 8) != adu[len - 1]) {
        return KEEL_MODBUS_ERR_CRC;
    }
    *unit = adu[0];
    *pdu = adu + 1;
    *pdu_len = len - 3;
    return KEEL_MODBUS_OK;
}

/* Length of a variable-size frame "unit fc bytecount data... crc" once its count byte at
 * offset `at` is known. */
static size_t counted(const uint8_t *buf, size_t len, size_t at)
{
    if (len <= at) {
        return 0;
    }
    return at + 1 + buf[at] + 2;
}

/* FC 43/14 reply: objects follow an 8-byte header; walk them while bytes are known. */
static size_t device_id_len(const uint8_t *buf, size_t len)
{
    if (len < 8) {
        return 0;
    }
    size_t at = 8;
    for (unsigned i = 0; i < buf[7]; i++) {
        if (len < at + 2) {
            return 0;
        }
        at += 2u + buf[at + 1];
        if (at > KEEL_MODBUS_MAX_RTU_ADU) {
            return SIZE_MAX;
        }
    }
    return at + 2;
}

size_t keel_modbus_rtu_frame_len(const uint8_t *buf, size_t len, bool request)
{
    if (!buf || len < 2) {
        return 0;
    }
    uint8_t fc = buf[1];
    if (request) {
        switch (fc) {
        case 1:
        case 2:
        case 3:
        case 4:
        case 5:
        case 6:
        case 8:
            return 8;
        case 15:
        case 16:
            return counted(buf, len, 6);
        case 17:
            return 4;
        case 20:
        case 21:
            return counted(buf, len, 2);
        case 22:
            return 10;
        case 23:
            return counted(buf, len, 10);
        case 43:
            return 7;
        default:
            return SIZE_MAX;
        }
    }
    if (fc & 0x80) {
        return 5;
    }
    switch (fc) {
    case 1:
    case 2:
    case 3:
    case 4:
    case 17:
    case 20:
    case 21:
    case 23:
        return counted(buf, len, 2);
    case 5:
    case 6:
    case 8:
    case 15:
    case 16:
        return 8;
    case 22:
        return 10;
    case 43:
        return device_id_len(buf, len);
    default:
        return SIZE_MAX;
    }
}

keel_modbus_err keel_modbus_tcp_frame(uint16_t tid, uint8_t unit, const uint8_t *pdu,
                                      size_t pdu_len, uint8_t *out, size_t cap, size_t *out_len)
{
    if (!pdu || !out || !out_len || pdu_len == 0) {
        return KEEL_MODBUS_ERR_ARG;
    }
    if (pdu_len > KEEL_MODBUS_MAX_PDU) {
        return KEEL_MODBUS_ERR_TOO_BIG;
    }
    if (cap < pdu_len + 7) {
        return KEEL_MODBUS_ERR_NO_SPACE;
    }
    memmove(out + 7, pdu, pdu_len);
    put16(out, tid);
    put16(out + 2, 0);
    put16(out + 4, (uint16_t)(pdu_len + 1));
    out[6] = unit;
    *out_len = pdu_len + 7;
    return KEEL_MODBUS_OK;
}

keel_modbus_err keel_modbus_tcp_parse(const uint8_t *buf, size_t len, keel_modbus_mbap *hdr,
                                      const uint8_t **pdu, size_t *pdu_len, size_t *consumed)
{
    if (!buf || !hdr || !pdu || !pdu_len || !consumed) {
        return KEEL_MODBUS_ERR_ARG;
    }
    *consumed = 0;
    if (len < 7) {
        return KEEL_MODBUS_ERR_SHORT;
    }
    hdr->tid = get16(buf);
    hdr->proto = get16(buf + 2);
    hdr->length = get16(buf + 4);
    hdr->unit = buf[6];
    if (hdr->proto != 0 || hdr->length < 2 || hdr->length > KEEL_MODBUS_MAX_PDU + 1) {
        return KEEL_MODBUS_ERR_FRAME;
    }
    size_t total = 6u + hdr->length;
    if (len < total) {
        return KEEL_MODBUS_ERR_SHORT;
    }
    *pdu = buf + 7;
    *pdu_len = hdr->length - 1u;
    *consumed = total;
    return KEEL_MODBUS_OK;
}

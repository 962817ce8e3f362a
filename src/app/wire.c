/* Validation of libkeel's wire messages (wire.h): the single check keeld applies to every
 * request before looking at its payload, and the names of the operations. */
#include "wire.h"

#include <string.h>

const char *keel_wire_op_name(uint16_t op)
{
    static const char *const names[KEEL_WIRE_OP_COUNT] = {
        [KEEL_WIRE_HELLO] = "HELLO",
        [KEEL_WIRE_LOG] = "LOG",
        [KEEL_WIRE_HEARTBEAT] = "HEARTBEAT",
        [KEEL_WIRE_CONFIRM] = "CONFIRM",
        [KEEL_WIRE_TELEMETRY] = "TELEMETRY",
        [KEEL_WIRE_REPORT] = "REPORT",
        [KEEL_WIRE_DESIRED] = "DESIRED",
        [KEEL_WIRE_METHOD_ANSWER] = "METHOD_ANSWER",
        [KEEL_WIRE_CHANNEL_OPEN] = "CHANNEL_OPEN",
        [KEEL_WIRE_CLOUD_OPEN] = "CLOUD_OPEN",
        [KEEL_WIRE_NOTIFY_REGISTER] = "NOTIFY_REGISTER",
        [KEEL_WIRE_CRASH] = "CRASH",
        [KEEL_WIRE_METHOD_TAKE] = "METHOD_TAKE",
        [KEEL_WIRE_SERIAL_OPEN] = "SERIAL_OPEN",
        [KEEL_WIRE_GPIO_OPEN] = "GPIO_OPEN",
    };
    op &= (uint16_t)~KEEL_WIRE_ANSWER;
    if (op == 0 || op >= KEEL_WIRE_OP_COUNT) {
        return "UNKNOWN";
    }
    return names[op];
}

/* Payload rules per operation: exact size, or a range. */
static keel_app_status check_payload(uint16_t op, const uint8_t *p, size_t len)
{
    switch (op) {
    case KEEL_WIRE_HELLO:
    case KEEL_WIRE_HEARTBEAT:
    case KEEL_WIRE_CONFIRM:
    case KEEL_WIRE_DESIRED:
    case KEEL_WIRE_METHOD_TAKE:
        return len == 0 ? KEEL_APP_OK : KEEL_APP_ERR_BAD_LENGTH;
    case KEEL_WIRE_LOG:
    case KEEL_WIRE_TELEMETRY:
    case KEEL_WIRE_REPORT:
        return len >= 1 && len <= KEEL_APP_MAX_PAYLOAD ? KEEL_APP_OK : KEEL_APP_ERR_BAD_LENGTH;
    case KEEL_WIRE_METHOD_ANSWER:
        return len >= sizeof(keel_wire_method) &&
                       len <= sizeof(keel_wire_method) + KEEL_APP_MAX_PAYLOAD
                   ? KEEL_APP_OK
                   : KEEL_APP_ERR_BAD_LENGTH;
    case KEEL_WIRE_SERIAL_OPEN:
    case KEEL_WIRE_GPIO_OPEN:
        /* a device name: at most 31 bytes, no NUL inside (keeld compares it as a string) */
        if (len < 1 || len > 31) {
            return KEEL_APP_ERR_BAD_LENGTH;
        }
        return memchr(p, 0, len) ? KEEL_APP_ERR_INVALID_ARG : KEEL_APP_OK;
    case KEEL_WIRE_CHANNEL_OPEN:
        /* a UUID or a name: printable, no NUL inside */
        if (len < 1 || len > 64) {
            return KEEL_APP_ERR_BAD_LENGTH;
        }
        return memchr(p, 0, len) ? KEEL_APP_ERR_INVALID_ARG : KEEL_APP_OK;
    case KEEL_WIRE_CLOUD_OPEN: {
        /* kind '\0' target, both non-empty, target not NUL-terminated inside len */
        if (len < 3 || len > 512) {
            return KEEL_APP_ERR_BAD_LENGTH;
        }
        const uint8_t *z = memchr(p, 0, len);
        if (!z || z == p || z == p + len - 1 || memchr(z + 1, 0, (size_t)(p + len - z - 1))) {
            return KEEL_APP_ERR_INVALID_ARG;
        }
        return KEEL_APP_OK;
    }
    case KEEL_WIRE_NOTIFY_REGISTER:
        return len == sizeof(keel_wire_ring) ? KEEL_APP_OK : KEEL_APP_ERR_BAD_LENGTH;
    case KEEL_WIRE_CRASH: {
        if (len != sizeof(keel_wire_crash)) {
            return KEEL_APP_ERR_BAD_LENGTH;
        }
        keel_wire_crash c;
        memcpy(&c, p, sizeof c);
        if (c.nregs > KEEL_WIRE_CRASH_REGS || c.nframes > KEEL_WIRE_CRASH_FRAMES ||
            c.nmodules > KEEL_WIRE_CRASH_MODULES) {
            return KEEL_APP_ERR_INVALID_ARG;
        }
        return KEEL_APP_OK;
    }
    default:
        return KEEL_APP_ERR_UNSUPPORTED;
    }
}

keel_app_status keel_wire_check(const void *msg, size_t n)
{
    keel_wire_hdr h;
    if (!msg || n < sizeof h || n > KEEL_WIRE_MAX_MSG) {
        return KEEL_APP_ERR_BAD_LENGTH;
    }
    memcpy(&h, msg, sizeof h);
    if (h.op & KEEL_WIRE_ANSWER) {
        return KEEL_APP_ERR_PROTOCOL;
    }
    if (h.op == 0 || h.op >= KEEL_WIRE_OP_COUNT) {
        return KEEL_APP_ERR_UNSUPPORTED;
    }
    if (h.len != n - sizeof h) {
        return KEEL_APP_ERR_BAD_LENGTH;
    }
    return check_payload(h.op, (const uint8_t *)msg + sizeof h, h.len);
}

/* Transports (host only): one small table of operations per kind of link, like libmodbus's
 * modbus_backend_t. The client and the server see only this table; TCP (link_tcp.c) and
 * serial lines (link_serial.c) are its backends. RTU over TCP is the TCP backend carrying
 * RTU framing. */
#ifndef KEEL_MODBUS_LINK_H
#define KEEL_MODBUS_LINK_H

#include <stdint.h>

#include "keel/modbus.h"

typedef struct keel_modbus_link keel_modbus_link;

typedef struct keel_modbus_backend {
    const char *name;
    /* Writes the whole frame (for RS485: drives the line while sending). */
    keel_modbus_err (*send)(keel_modbus_link *l, const uint8_t *buf, size_t len);
    /* Waits up to timeout_ms for bytes: OK with *got > 0, ERR_TIMEOUT, ERR_CLOSED or ERR_IO. */
    keel_modbus_err (*recv)(keel_modbus_link *l, uint8_t *buf, size_t cap, int timeout_ms,
                            size_t *got);
    /* Drops whatever is waiting to be read (stale bytes before a new request). */
    void (*flush)(keel_modbus_link *l);
    void (*close)(keel_modbus_link *l);
} keel_modbus_backend;

typedef enum { RS485_NONE, RS485_KERNEL, RS485_RTS } rs485_mode;

struct keel_modbus_link {
    const keel_modbus_backend *be;
    int fd;
    keel_modbus_framing framing;
    keel_modbus_line line; /* serial only */
    rs485_mode rs485;
    uint32_t rts_delay_us;
    int rcvtimeo_ms; /* TCP: the socket's SO_RCVTIMEO, 0 = none set */
};

/* TCP: a blocking receive bounded by the socket's own timeout saves a poll() per reply. */
void keel_modbus_link_tcp_set_timeout(keel_modbus_link *l, uint32_t timeout_us);

/* Microseconds on the monotonic clock. */
uint64_t keel_modbus_now_us(void);

keel_modbus_err keel_modbus_link_tcp_connect(keel_modbus_link *l, const char *host,
                                             const char *port);
/* Wraps an accepted or connected socket. */
void keel_modbus_link_tcp_wrap(keel_modbus_link *l, int fd);
keel_modbus_err keel_modbus_link_serial_open(keel_modbus_link *l, const char *device,
                                             const keel_modbus_serial_opts *opts);

#endif

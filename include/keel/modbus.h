/* MODBUS for Keel: a protocol core that does no I/O, and transports around it.
 *
 * The core (everything above "Transports") is plain C with no socket, clock or thread: it
 * builds and parses PDUs and ADUs (RTU with CRC-16, TCP with MBAP), runs the master and slave
 * state machines on bytes and microsecond timestamps the caller supplies, and answers requests
 * from a data model given as a table of callbacks (or a register map). The same code runs on
 * Linux, in the simulator and on the real-time core.
 *
 * Layers, bottom up:
 *   CRC and RTU timing      keel_modbus_crc16(), keel_modbus_rtu_timing()
 *   ADU framing             keel_modbus_rtu_frame()/_parse(), keel_modbus_tcp_frame()/_parse()
 *   PDU requests/replies    keel_modbus_req_*() builds a request, keel_modbus_rsp_*() reads a reply
 *   master                  keel_modbus_master: request -> bytes out; bytes/time in -> reply
 *   slave                   keel_modbus_slave: request PDU -> reply PDU via the data model
 *   register map            keel_modbus_map: arrays of bits/registers/file records + identity
 *   transports (host only)  keel_modbus_client / keel_modbus_server over TCP, RTU serial, RTU/TCP
 */
#ifndef KEEL_MODBUS_H
#define KEEL_MODBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/status.h"

/* ---- limits from the MODBUS Application Protocol v1.1b3 ---- */
#define KEEL_MODBUS_MAX_PDU 253u     /* function code + data */
#define KEEL_MODBUS_MAX_RTU_ADU 256u /* unit + PDU + CRC */
#define KEEL_MODBUS_MAX_TCP_ADU 260u /* MBAP (7) + PDU */
#define KEEL_MODBUS_MAX_READ_BITS 2000u
#define KEEL_MODBUS_MAX_WRITE_BITS 1968u
#define KEEL_MODBUS_MAX_READ_REGS 125u
#define KEEL_MODBUS_MAX_WRITE_REGS 123u
#define KEEL_MODBUS_MAX_RW_WRITE_REGS 121u
#define KEEL_MODBUS_BROADCAST 0u
#define KEEL_MODBUS_MAX_FILE_RECORD 9999u /* highest record number in FC 20/21 */

typedef enum keel_modbus_err {
    KEEL_MODBUS_OK = 0,
    KEEL_MODBUS_ERR_AGAIN,       /* the transaction is not finished: feed more bytes or time */
    KEEL_MODBUS_ERR_ARG,         /* a bad argument (count out of range, NULL, ...) */
    KEEL_MODBUS_ERR_NO_SPACE,    /* the output buffer is too small */
    KEEL_MODBUS_ERR_SHORT,       /* the frame is truncated */
    KEEL_MODBUS_ERR_TOO_BIG,     /* the frame is longer than MODBUS allows */
    KEEL_MODBUS_ERR_CRC,         /* RTU CRC mismatch */
    KEEL_MODBUS_ERR_FRAME,       /* malformed: bad MBAP header, byte count, layout */
    KEEL_MODBUS_ERR_MISMATCH,    /* a reply that does not answer the request sent */
    KEEL_MODBUS_ERR_EXCEPTION,   /* the slave answered with an exception (see last_exception) */
    KEEL_MODBUS_ERR_TIMEOUT,     /* no (complete) reply before the deadline */
    KEEL_MODBUS_ERR_BUSY,        /* a transaction is already in progress */
    KEEL_MODBUS_ERR_IO,          /* the operating system refused (errno has more) */
    KEEL_MODBUS_ERR_CLOSED,      /* the peer closed the connection */
    KEEL_MODBUS_ERR_UNSUPPORTED, /* valid, but not offered here */
    KEEL_MODBUS_ERR_COUNT
} keel_modbus_err;

const char *keel_modbus_err_name(keel_modbus_err e);

/* Exception codes a slave returns (0 = no exception). */
typedef enum keel_modbus_exc {
    KEEL_MODBUS_EXC_NONE = 0,
    KEEL_MODBUS_EXC_ILLEGAL_FUNCTION = 1,
    KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS = 2,
    KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE = 3,
    KEEL_MODBUS_EXC_SERVER_DEVICE_FAILURE = 4,
    KEEL_MODBUS_EXC_ACKNOWLEDGE = 5,
    KEEL_MODBUS_EXC_SERVER_DEVICE_BUSY = 6,
    KEEL_MODBUS_EXC_MEMORY_PARITY_ERROR = 8,
    KEEL_MODBUS_EXC_GATEWAY_PATH_UNAVAILABLE = 10,
    KEEL_MODBUS_EXC_GATEWAY_TARGET_FAILED = 11,
} keel_modbus_exc;

/* "illegal data address", ...; "unknown exception" otherwise. */
const char *keel_modbus_exc_name(uint8_t code);

/* Function codes Keel speaks. */
enum {
    KEEL_MODBUS_FC_READ_COILS = 1,
    KEEL_MODBUS_FC_READ_DISCRETE_INPUTS = 2,
    KEEL_MODBUS_FC_READ_HOLDING_REGISTERS = 3,
    KEEL_MODBUS_FC_READ_INPUT_REGISTERS = 4,
    KEEL_MODBUS_FC_WRITE_SINGLE_COIL = 5,
    KEEL_MODBUS_FC_WRITE_SINGLE_REGISTER = 6,
    KEEL_MODBUS_FC_DIAGNOSTICS = 8,
    KEEL_MODBUS_FC_WRITE_MULTIPLE_COILS = 15,
    KEEL_MODBUS_FC_WRITE_MULTIPLE_REGISTERS = 16,
    KEEL_MODBUS_FC_REPORT_SERVER_ID = 17,
    KEEL_MODBUS_FC_READ_FILE_RECORD = 20,
    KEEL_MODBUS_FC_WRITE_FILE_RECORD = 21,
    KEEL_MODBUS_FC_MASK_WRITE_REGISTER = 22,
    KEEL_MODBUS_FC_READ_WRITE_REGISTERS = 23,
    KEEL_MODBUS_FC_ENCAPSULATED = 43, /* MEI type 14: read device identification */
};

/* FC 8 sub-functions. */
enum {
    KEEL_MODBUS_DIAG_RETURN_QUERY_DATA = 0,
    KEEL_MODBUS_DIAG_RESTART_COMM = 1,
    KEEL_MODBUS_DIAG_RETURN_REGISTER = 2,
    KEEL_MODBUS_DIAG_FORCE_LISTEN_ONLY = 4,
    KEEL_MODBUS_DIAG_CLEAR_COUNTERS = 10,
    KEEL_MODBUS_DIAG_BUS_MESSAGE_COUNT = 11,
    KEEL_MODBUS_DIAG_BUS_COMM_ERROR_COUNT = 12,
    KEEL_MODBUS_DIAG_BUS_EXCEPTION_COUNT = 13,
    KEEL_MODBUS_DIAG_SERVER_MESSAGE_COUNT = 14,
    KEEL_MODBUS_DIAG_SERVER_NO_RESPONSE_COUNT = 15,
    KEEL_MODBUS_DIAG_SERVER_NAK_COUNT = 16,
    KEEL_MODBUS_DIAG_SERVER_BUSY_COUNT = 17,
    KEEL_MODBUS_DIAG_BUS_CHAR_OVERRUN_COUNT = 18,
    KEEL_MODBUS_DIAG_CLEAR_OVERRUN = 20,
};

/* ---- CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF) ---- */

/* Slice-by-8 over 4 KiB of const tables: about 8x the classic byte-wise table method. */
uint16_t keel_modbus_crc16(const uint8_t *data, size_t len);
/* Continues a CRC over more data: crc = keel_modbus_crc16_update(0xFFFF, ...). */
uint16_t keel_modbus_crc16_update(uint16_t crc, const uint8_t *data, size_t len);
/* The byte-at-a-time reference (one table lookup per byte), for tests and benchmarks. */
uint16_t keel_modbus_crc16_bytewise(const uint8_t *data, size_t len);

/* ---- RTU character timing ---- */

typedef enum keel_modbus_parity {
    KEEL_MODBUS_PARITY_NONE = 0,
    KEEL_MODBUS_PARITY_EVEN,
    KEEL_MODBUS_PARITY_ODD,
} keel_modbus_parity;

typedef struct keel_modbus_line {
    uint32_t baud;     /* bits per second, > 0 */
    uint8_t data_bits; /* 7 or 8 (MODBUS RTU uses 8) */
    keel_modbus_parity parity;
    uint8_t stop_bits; /* 1 or 2 */
} keel_modbus_line;

typedef struct keel_modbus_rtu_timing {
    uint32_t char_ns; /* one character: (1 + data + parity + stop) bit-times */
    uint32_t bit_ns;  /* one bit-time */
    uint32_t t15_us;  /* max silence inside a frame */
    uint32_t t35_us;  /* min silence between frames */
} keel_modbus_rtu_timing;

/* t1.5 and t3.5 from the line: 1.5 and 3.5 character times, or the spec's fixed 750 us and
 * 1750 us above 19200 baud. Returns ERR_ARG for a zero baud or impossible frame format. */
KEEL_NODISCARD keel_modbus_err keel_modbus_rtu_timing_for(const keel_modbus_line *line,
                                                          keel_modbus_rtu_timing *out);

/* ---- ADU framing ---- */

/* RTU: unit + pdu + CRC (low byte first) into out. */
KEEL_NODISCARD keel_modbus_err keel_modbus_rtu_frame(uint8_t unit, const uint8_t *pdu,
                                                     size_t pdu_len, uint8_t *out, size_t cap,
                                                     size_t *out_len);
/* Checks an RTU frame's size and CRC; *pdu points into adu. */
KEEL_NODISCARD keel_modbus_err keel_modbus_rtu_parse(const uint8_t *adu, size_t len, uint8_t *unit,
                                                     const uint8_t **pdu, size_t *pdu_len);
/* For a stream carrying RTU frames (RTU over TCP, a pty): the length the frame starting at
 * buf will have, judged from its function code and byte counts, when `len` bytes are known.
 * Returns 0 when more bytes are needed to tell, or SIZE_MAX when the frame cannot be sized
 * (an unknown function code). `request` chooses the request or the reply layout. */
size_t keel_modbus_rtu_frame_len(const uint8_t *buf, size_t len, bool request);

typedef struct keel_modbus_mbap {
    uint16_t tid;    /* transaction id */
    uint16_t proto;  /* 0 for MODBUS */
    uint16_t length; /* bytes following: unit + PDU */
    uint8_t unit;
} keel_modbus_mbap;

KEEL_NODISCARD keel_modbus_err keel_modbus_tcp_frame(uint16_t tid, uint8_t unit, const uint8_t *pdu,
                                                     size_t pdu_len, uint8_t *out, size_t cap,
                                                     size_t *out_len);
/* Parses the first ADU of a byte stream. ERR_SHORT with *consumed = 0 when more bytes are
 * needed; ERR_FRAME when the header is impossible (protocol id != 0, length 0 or > 254): the
 * stream cannot be resynchronised and the connection should be closed. On OK, *consumed is
 * the ADU's size. */
KEEL_NODISCARD keel_modbus_err keel_modbus_tcp_parse(const uint8_t *buf, size_t len,
                                                     keel_modbus_mbap *hdr, const uint8_t **pdu,
                                                     size_t *pdu_len, size_t *consumed);

/* ---- requests (master side): each builds a PDU into out ---- */

/* FC 1, 2, 3, 4: read `count` items from `addr`. */
KEEL_NODISCARD keel_modbus_err keel_modbus_req_read(uint8_t fc, uint16_t addr, uint16_t count,
                                                    uint8_t *out, size_t cap, size_t *len);
KEEL_NODISCARD keel_modbus_err keel_modbus_req_write_coil(uint16_t addr, bool on, uint8_t *out,
                                                          size_t cap, size_t *len);
KEEL_NODISCARD keel_modbus_err keel_modbus_req_write_register(uint16_t addr, uint16_t value,
                                                              uint8_t *out, size_t cap,
                                                              size_t *len);
/* FC 15: bits packed LSB first, as on the wire. */
KEEL_NODISCARD keel_modbus_err keel_modbus_req_write_coils(uint16_t addr, uint16_t count,
                                                           const uint8_t *bits, uint8_t *out,
                                                           size_t cap, size_t *len);
KEEL_NODISCARD keel_modbus_err keel_modbus_req_write_registers(uint16_t addr, uint16_t count,
                                                               const uint16_t *values, uint8_t *out,
                                                               size_t cap, size_t *len);
KEEL_NODISCARD keel_modbus_err keel_modbus_req_mask_write(uint16_t addr, uint16_t and_mask,
                                                          uint16_t or_mask, uint8_t *out,
                                                          size_t cap, size_t *len);
KEEL_NODISCARD keel_modbus_err keel_modbus_req_read_write(uint16_t raddr, uint16_t rcount,
                                                          uint16_t waddr, uint16_t wcount,
                                                          const uint16_t *values, uint8_t *out,
                                                          size_t cap, size_t *len);
/* FC 8 with one 16-bit data word (sub-function 0 may carry more: pass them in data/n). */
KEEL_NODISCARD keel_modbus_err keel_modbus_req_diagnostics(uint16_t sub, const uint16_t *data,
                                                           size_t n, uint8_t *out, size_t cap,
                                                           size_t *len);
KEEL_NODISCARD keel_modbus_err keel_modbus_req_report_server_id(uint8_t *out, size_t cap,
                                                                size_t *len);

/* One sub-request of FC 20/21: `count` registers from record `record` of file `file`. */
typedef struct keel_modbus_file_ref {
    uint16_t file;   /* 1..0xFFFF */
    uint16_t record; /* 0..9999 */
    uint16_t count;  /* registers */
    uint16_t *data;  /* FC 21: the values to write; FC 20 reply: filled by rsp_read_file */
} keel_modbus_file_ref;

KEEL_NODISCARD keel_modbus_err keel_modbus_req_read_file(const keel_modbus_file_ref *refs, size_t n,
                                                         uint8_t *out, size_t cap, size_t *len);
KEEL_NODISCARD keel_modbus_err keel_modbus_req_write_file(const keel_modbus_file_ref *refs,
                                                          size_t n, uint8_t *out, size_t cap,
                                                          size_t *len);
/* FC 43/14: read device id code 1 basic, 2 regular, 3 extended, 4 one object. */
KEEL_NODISCARD keel_modbus_err keel_modbus_req_device_id(uint8_t code, uint8_t object_id,
                                                         uint8_t *out, size_t cap, size_t *len);

/* ---- replies (master side): check a reply PDU against its request PDU, extract values ----
 * Every rsp_* returns ERR_EXCEPTION (with *exc set when exc != NULL) for an exception reply,
 * ERR_MISMATCH when the reply answers another function/address/count, ERR_FRAME when its own
 * byte counts disagree. */

/* The exception code of an exception reply, or 0. */
uint8_t keel_modbus_rsp_exception(const uint8_t *rsp, size_t rsp_len);
/* Checks any reply against its request (function code, echo fields, byte counts). */
KEEL_NODISCARD keel_modbus_err keel_modbus_rsp_check(const uint8_t *req, size_t req_len,
                                                     const uint8_t *rsp, size_t rsp_len,
                                                     uint8_t *exc);
/* FC 1/2: packed bits (count/8 rounded up bytes). FC 3/4/23: registers, host order. */
KEEL_NODISCARD keel_modbus_err keel_modbus_rsp_bits(const uint8_t *req, size_t req_len,
                                                    const uint8_t *rsp, size_t rsp_len,
                                                    uint8_t *bits, size_t cap, uint8_t *exc);
KEEL_NODISCARD keel_modbus_err keel_modbus_rsp_registers(const uint8_t *req, size_t req_len,
                                                         const uint8_t *rsp, size_t rsp_len,
                                                         uint16_t *regs, size_t cap, uint8_t *exc);
/* FC 20: fills refs[i].data (refs as sent, data pointing at count registers each). */
KEEL_NODISCARD keel_modbus_err keel_modbus_rsp_read_file(const uint8_t *rsp, size_t rsp_len,
                                                         keel_modbus_file_ref *refs, size_t n,
                                                         uint8_t *exc);

/* A device-identification object from an FC 43/14 reply. */
typedef struct keel_modbus_id_object {
    uint8_t id;
    uint8_t len;
    const uint8_t *value; /* points into the reply */
} keel_modbus_id_object;

typedef struct keel_modbus_device_id {
    uint8_t conformity;
    bool more;
    uint8_t next_object;
    uint8_t count;
    keel_modbus_id_object objects[32];
} keel_modbus_device_id;

KEEL_NODISCARD keel_modbus_err keel_modbus_rsp_device_id(const uint8_t *rsp, size_t rsp_len,
                                                         keel_modbus_device_id *out, uint8_t *exc);

/* ---- the slave's data model ----
 * Callbacks answer with an exception code (0 = done). A NULL callback makes its function codes
 * answer ILLEGAL_FUNCTION. Addresses and counts have been range-checked against the protocol's
 * limits (not against the model: that is the callback's job, answering ILLEGAL_DATA_ADDRESS). */
enum { KEEL_MODBUS_COILS, KEEL_MODBUS_DISCRETE_INPUTS, KEEL_MODBUS_HOLDING, KEEL_MODBUS_INPUT };

typedef struct keel_modbus_model {
    /* table: KEEL_MODBUS_COILS or _DISCRETE_INPUTS; bits packed LSB first. */
    uint8_t (*read_bits)(void *ctx, int table, uint16_t addr, uint16_t count, uint8_t *bits);
    uint8_t (*write_bits)(void *ctx, uint16_t addr, uint16_t count, const uint8_t *bits);
    /* table: KEEL_MODBUS_HOLDING or _INPUT. */
    uint8_t (*read_regs)(void *ctx, int table, uint16_t addr, uint16_t count, uint16_t *regs);
    uint8_t (*write_regs)(void *ctx, uint16_t addr, uint16_t count, const uint16_t *regs);
    /* FC 20 / 21, one sub-request at a time (the firmware-update engineer plugs in here). */
    uint8_t (*read_file)(void *ctx, uint16_t file, uint16_t record, uint16_t count, uint16_t *regs);
    uint8_t (*write_file)(void *ctx, uint16_t file, uint16_t record, uint16_t count,
                          const uint16_t *regs);
    /* FC 43/14: object `id`'s value, or NULL if the device does not have it. */
    const char *(*device_id)(void *ctx, uint8_t id);
    /* FC 17: server id bytes (the run indicator byte is appended by the core). */
    size_t (*server_id)(void *ctx, uint8_t *out, size_t cap);
} keel_modbus_model;

/* Counters as FC 8 reports them (and as tests check). */
typedef struct keel_modbus_counters {
    uint32_t bus_messages;       /* frames seen on the bus, good CRC or not */
    uint32_t bus_comm_errors;    /* CRC errors, truncated or garbage frames */
    uint32_t bus_exceptions;     /* exception replies sent */
    uint32_t server_messages;    /* frames addressed to us (or broadcast) */
    uint32_t server_no_response; /* frames we did not answer (broadcast, listen-only) */
    uint32_t server_nak;
    uint32_t server_busy;
    uint32_t char_overruns; /* frames too long for the buffer */
} keel_modbus_counters;

typedef struct keel_modbus_slave {
    uint8_t unit; /* our address (1..247); 0 = answer any unit (TCP gateway) */
    const keel_modbus_model *model;
    void *ctx;
    bool listen_only; /* FC 8/4: stop answering until restart comm */
    uint16_t diag_register;
    keel_modbus_counters counters;
} keel_modbus_slave;

void keel_modbus_slave_init(keel_modbus_slave *s, uint8_t unit, const keel_modbus_model *model,
                            void *ctx);

/* Answers one request PDU addressed to `unit`. *rsp_len = 0 means "send nothing" (broadcast,
 * another unit, listen-only). Exceptions are answers: the return value is OK for them. */
KEEL_NODISCARD keel_modbus_err keel_modbus_slave_pdu(keel_modbus_slave *s, uint8_t unit,
                                                     const uint8_t *req, size_t req_len,
                                                     uint8_t *rsp, size_t cap, size_t *rsp_len);
/* One RTU frame (delimited by t3.5 silence or by length) in, the RTU reply frame out. Bad CRC
 * or truncated frames are counted and dropped (*out_len = 0, ERR_CRC / ERR_SHORT). */
KEEL_NODISCARD keel_modbus_err keel_modbus_slave_rtu(keel_modbus_slave *s, const uint8_t *adu,
                                                     size_t len, uint8_t *out, size_t cap,
                                                     size_t *out_len);
/* The first TCP ADU of a stream in, its reply out; *consumed as keel_modbus_tcp_parse. */
KEEL_NODISCARD keel_modbus_err keel_modbus_slave_tcp(keel_modbus_slave *s, const uint8_t *buf,
                                                     size_t len, size_t *consumed, uint8_t *out,
                                                     size_t cap, size_t *out_len);

/* ---- the master's state machine ----
 * One transaction at a time. The caller sends the bytes start() returns, then feeds what it
 * receives (input) and the passing of time (poll) until either returns something other than
 * ERR_AGAIN; deadline() says when poll must next be called. RTU frames end at whichever comes
 * first: the length the reply must have, or t3.5 of silence after the last byte. Bytes that
 * arrive when no transaction is open (a slave answering after its timeout) are dropped and
 * counted, never taken for the next reply. */
typedef enum keel_modbus_framing {
    KEEL_MODBUS_RTU = 0,
    KEEL_MODBUS_TCP,
} keel_modbus_framing;

typedef struct keel_modbus_master_stats {
    uint32_t requests, replies, exceptions, timeouts, crc_errors, frame_errors, stray_bytes;
} keel_modbus_master_stats;

typedef struct keel_modbus_master {
    keel_modbus_framing framing;
    uint32_t timeout_us;    /* reply timeout (from the end of the request) */
    uint32_t turnaround_us; /* RTU: wait after a broadcast */
    keel_modbus_rtu_timing timing;
    /* private */
    int state;
    uint16_t tid;
    uint8_t unit;
    uint8_t req[KEEL_MODBUS_MAX_PDU];
    size_t req_len;
    uint8_t rx[KEEL_MODBUS_MAX_TCP_ADU + 4];
    size_t rx_len;
    uint64_t deadline_us;
    uint64_t last_rx_us;
    const uint8_t *rsp;
    size_t rsp_len;
    uint8_t last_exception;
    keel_modbus_master_stats stats;
} keel_modbus_master;

/* `line` gives RTU its timing; NULL for TCP, and for RTU over a stream (RTU over TCP), where
 * frames end by their length only. Timeout defaults: 1 s, turnaround 100 ms. */
KEEL_NODISCARD keel_modbus_err keel_modbus_master_init(keel_modbus_master *m,
                                                       keel_modbus_framing framing,
                                                       const keel_modbus_line *line);
/* Opens a transaction: the ADU to send goes to out. For unit 0 (broadcast) no reply is
 * awaited: poll() completes it after turnaround_us (RTU) or at once (TCP). */
KEEL_NODISCARD keel_modbus_err keel_modbus_master_start(keel_modbus_master *m, uint64_t now_us,
                                                        uint8_t unit, const uint8_t *pdu,
                                                        size_t pdu_len, uint8_t *out, size_t cap,
                                                        size_t *out_len);
/* Bytes received at now_us. OK: the reply is complete and answers the request (get it with
 * reply()); ERR_EXCEPTION: it is an exception; other errors end the transaction. */
KEEL_NODISCARD keel_modbus_err keel_modbus_master_input(keel_modbus_master *m, uint64_t now_us,
                                                        const uint8_t *data, size_t len);
/* Time passed: ends a silent-delimited frame, or the transaction with ERR_TIMEOUT. */
KEEL_NODISCARD keel_modbus_err keel_modbus_master_poll(keel_modbus_master *m, uint64_t now_us);
/* When poll() must next be called (UINT64_MAX: nothing pending). */
uint64_t keel_modbus_master_deadline(const keel_modbus_master *m);
/* The reply PDU of the finished transaction. */
void keel_modbus_master_reply(const keel_modbus_master *m, const uint8_t **pdu, size_t *len);
/* The PDU of the open or last request. */
void keel_modbus_master_request(const keel_modbus_master *m, const uint8_t **pdu, size_t *len);
/* Drops any open transaction (e.g. after a reconnect). */
void keel_modbus_master_abort(keel_modbus_master *m);

/* ---- register map: a slave without writing C ---- */

typedef struct keel_modbus_file {
    uint16_t number;
    uint16_t records; /* record count, each one register */
    uint16_t *data;
} keel_modbus_file;

typedef struct keel_modbus_map {
    uint16_t coil_base, coil_count;
    uint8_t *coils; /* one byte per bit (0/1) */
    uint16_t discrete_base, discrete_count;
    uint8_t *discrete;
    uint16_t holding_base, holding_count;
    uint16_t *holding;
    uint16_t input_base, input_count;
    uint16_t *input;
    keel_modbus_file *files;
    size_t file_count;
    const char *ident[8]; /* vendor, product code, revision, url, product, model, app */
    /* Called after every successful write (to persist state, react as an actuator). */
    void (*on_write)(void *ctx, int table, uint16_t addr, uint16_t count);
    void *on_write_ctx;
} keel_modbus_map;

/* Callbacks that serve a map: keel_modbus_slave_init(&s, unit, &keel_modbus_map_model, &map). */
extern const keel_modbus_model keel_modbus_map_model;

/* ---- transports (host only: link keel_modbus_host) ---- */

/* A master connection over TCP ("tcp"), RTU on a serial device ("rtu"), or RTU frames over a
 * TCP stream ("rtutcp"). Opaque; one backend table per transport. */
typedef struct keel_modbus_client keel_modbus_client;

typedef struct keel_modbus_serial_opts {
    keel_modbus_line line;
    bool rs485;            /* ask the kernel for RS485 mode (TIOCSRS485); fall back to RTS */
    bool rts_toggle;       /* force user-space RTS toggling */
    uint32_t rts_delay_us; /* delay before/after sending when toggling RTS */
} keel_modbus_serial_opts;

KEEL_NODISCARD keel_modbus_err keel_modbus_client_tcp(const char *host, const char *port,
                                                      bool rtu_over_tcp, keel_modbus_client **out);
KEEL_NODISCARD keel_modbus_err keel_modbus_client_serial(const char *device,
                                                         const keel_modbus_serial_opts *opts,
                                                         keel_modbus_client **out);
void keel_modbus_client_close(keel_modbus_client *c);
void keel_modbus_client_set_timeout(keel_modbus_client *c, uint32_t timeout_us);
/* Which RS485 mode the serial backend got: "kernel", "rts", or "none". */
const char *keel_modbus_client_rs485_mode(const keel_modbus_client *c);
/* The last exception code a call got (0 if none), and the master's counters. */
uint8_t keel_modbus_client_last_exception(const keel_modbus_client *c);
const keel_modbus_master_stats *keel_modbus_client_stats(const keel_modbus_client *c);

/* One transaction: request PDU out, reply PDU (checked against the request) into rsp. */
KEEL_NODISCARD keel_modbus_err keel_modbus_client_transact(keel_modbus_client *c, uint8_t unit,
                                                           const uint8_t *req, size_t req_len,
                                                           uint8_t *rsp, size_t cap,
                                                           size_t *rsp_len);
/* Verb-object helpers over transact(). */
KEEL_NODISCARD keel_modbus_err keel_modbus_read_bits(keel_modbus_client *c, uint8_t unit,
                                                     uint8_t fc, uint16_t addr, uint16_t count,
                                                     uint8_t *bits);
KEEL_NODISCARD keel_modbus_err keel_modbus_read_registers(keel_modbus_client *c, uint8_t unit,
                                                          uint8_t fc, uint16_t addr, uint16_t count,
                                                          uint16_t *regs);
KEEL_NODISCARD keel_modbus_err keel_modbus_write_coil(keel_modbus_client *c, uint8_t unit,
                                                      uint16_t addr, bool on);
KEEL_NODISCARD keel_modbus_err keel_modbus_write_register(keel_modbus_client *c, uint8_t unit,
                                                          uint16_t addr, uint16_t value);
KEEL_NODISCARD keel_modbus_err keel_modbus_write_registers(keel_modbus_client *c, uint8_t unit,
                                                           uint16_t addr, uint16_t count,
                                                           const uint16_t *values);
KEEL_NODISCARD keel_modbus_err keel_modbus_write_coils(keel_modbus_client *c, uint8_t unit,
                                                       uint16_t addr, uint16_t count,
                                                       const uint8_t *bits);
KEEL_NODISCARD keel_modbus_err keel_modbus_read_write_registers(keel_modbus_client *c, uint8_t unit,
                                                                uint16_t raddr, uint16_t rcount,
                                                                uint16_t *rregs, uint16_t waddr,
                                                                uint16_t wcount,
                                                                const uint16_t *wregs);

/* A slave serving a model over TCP (many connections, IPv4 and IPv6), RTU over TCP, or RTU
 * on a serial device. Runs until *stop becomes true (checked at least every 100 ms). */
typedef struct keel_modbus_server_opts {
    const char *bind; /* TCP: address to bind ("::" default: IPv6 + IPv4-mapped) */
    const char *port; /* TCP: port ("502") */
    bool rtu_over_tcp;
    const char *device; /* serial: the device; NULL for TCP */
    keel_modbus_serial_opts serial;
    unsigned max_connections; /* 0 = 64 */
    /* Called once listening (TCP) or the device is open, with the bound port. */
    void (*on_ready)(void *ctx, uint16_t port);
    void *ctx;
} keel_modbus_server_opts;

KEEL_NODISCARD keel_modbus_err keel_modbus_serve(keel_modbus_slave *slave,
                                                 const keel_modbus_server_opts *opts,
                                                 volatile const int *stop);

/* Loads a register map from a JSON file (format in docs/modbus.md). The map's arrays are
 * allocated; free with keel_modbus_map_free. On error, msg says where. */
KEEL_NODISCARD keel_modbus_err keel_modbus_map_load(const char *path, keel_modbus_map *map,
                                                    uint8_t *unit, char *msg, size_t msg_cap);
/* The same from text in memory (`name` is used in messages). */
KEEL_NODISCARD keel_modbus_err keel_modbus_map_parse(const char *name, const char *text, size_t len,
                                                     keel_modbus_map *map, uint8_t *unit, char *msg,
                                                     size_t msg_cap);
void keel_modbus_map_free(keel_modbus_map *map);

#endif

/* The wire between libkeel and keeld: one SOCK_SEQPACKET socketpair per app, one message per
 * call. Private to libkeel and keeld (both build against this header); apps use keel/app.h.
 *
 * A request is a keel_wire_hdr followed by `len` payload bytes; the answer repeats op and seq,
 * carries a keel_app_status in `status` and its own payload. Messages keeld sends on its own
 * (none yet) would have seq 0. Everything is host-endian: both ends are on one machine.
 * keeld treats every request as hostile: keel_wire_check() is the one place a request's
 * framing is validated, and the fuzz target drives it.
 */
#ifndef KEEL_APP_WIRE_H
#define KEEL_APP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "keel/app.h"

enum keel_wire_op {
    KEEL_WIRE_HELLO = 1,      /* -> name, kind; answer: app name */
    KEEL_WIRE_LOG,            /* payload: text */
    KEEL_WIRE_HEARTBEAT,
    KEEL_WIRE_CONFIRM,
    KEEL_WIRE_TELEMETRY,      /* payload: JSON */
    KEEL_WIRE_REPORT,         /* payload: JSON */
    KEEL_WIRE_DESIRED,        /* answer payload: JSON */
    KEEL_WIRE_METHOD_ANSWER,  /* payload: keel_wire_method + JSON */
    KEEL_WIRE_CHANNEL_OPEN,   /* payload: partner id; answer carries an fd */
    KEEL_WIRE_CLOUD_OPEN,     /* payload: kind '\0' target; answer carries an fd */
    KEEL_WIRE_NOTIFY_REGISTER,/* payload: keel_wire_ring; answer carries an eventfd */
    KEEL_WIRE_CRASH,          /* payload: keel_wire_crash (no answer: the app is dying) */
    KEEL_WIRE_METHOD_TAKE,    /* answer payload: keel_wire_method_call + name + body */
    KEEL_WIRE_SERIAL_OPEN,    /* payload: port name (device config); answer carries an fd */
    KEEL_WIRE_GPIO_OPEN,      /* payload: line name (device config); answer carries an fd */
    KEEL_WIRE_OP_COUNT
};

#define KEEL_WIRE_ANSWER 0x8000u

typedef struct keel_wire_hdr {
    uint16_t op;
    uint16_t status; /* answers: keel_app_status */
    uint32_t seq;
    uint32_t len;    /* payload bytes after the header */
    uint32_t reserved;
} keel_wire_hdr;
_Static_assert(sizeof(keel_wire_hdr) == 16, "wire header is 16 bytes");

typedef struct keel_wire_method {
    uint32_t call_id;
    int32_t status;
} keel_wire_method;

/* A method call handed to the app: the name (no NUL) and the JSON body follow it. */
typedef struct keel_wire_method_call {
    uint32_t call_id;
    uint32_t name_len;
    uint32_t body_len;
    uint32_t reserved;
} keel_wire_method_call;

typedef struct keel_wire_ring {
    uint64_t addr; /* the ring's address in the app's memory */
    uint64_t size; /* bytes */
} keel_wire_ring;

/* Crash record, built in a signal handler: fixed size, no pointers to follow. */
#define KEEL_WIRE_CRASH_FRAMES 32
#define KEEL_WIRE_CRASH_MODULES 16
#define KEEL_WIRE_CRASH_REGS 23 /* x86-64 gregs (ucontext order); other arches send what fits */
typedef struct keel_wire_module {
    uint64_t base;  /* load bias: symbol value + base = runtime address */
    uint64_t start; /* lowest and highest runtime address of its PT_LOAD segments */
    uint64_t end;
    char path[104]; /* as the dynamic loader saw it inside the sandbox; "" = main program */
} keel_wire_module;
typedef struct keel_wire_crash {
    int32_t signo;
    int32_t code;      /* si_code */
    uint64_t addr;     /* si_addr */
    uint64_t pc;
    uint32_t nregs;
    uint32_t nframes;
    uint32_t nmodules;
    int32_t sys_nr;    /* SIGSYS from the seccomp filter: the refused system call, else -1 */
    uint64_t regs[KEEL_WIRE_CRASH_REGS];
    uint64_t frames[KEEL_WIRE_CRASH_FRAMES];
    keel_wire_module modules[KEEL_WIRE_CRASH_MODULES];
} keel_wire_crash;

/* Upper bound on one message (header + payload). */
#define KEEL_WIRE_MAX_MSG (sizeof(keel_wire_hdr) + sizeof(keel_wire_crash) + KEEL_APP_MAX_PAYLOAD)

/* Validates a received request of n bytes: header present, op known, len matches n and the
 * op's payload rules (fixed sizes, text limits). Returns KEEL_APP_OK or the status to answer. */
keel_app_status keel_wire_check(const void *msg, size_t n);
/* "LOG", "TELEMETRY", ... for messages and reports. */
const char *keel_wire_op_name(uint16_t op);

#endif

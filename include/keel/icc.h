/* Intercore channels: a shared-memory region holding two single-producer/single-consumer rings
 * (one each way) and a doorbell each way, between a component on the connected core and one on
 * the real-time core (or any two partnered components).
 *
 * Two layers, one header:
 *  - the ring core (keel_icc_region_*, keel_icc_ring_*): portable C11, no I/O, no OS calls; the
 *    same code runs on Linux, on the RTOS sim port and on a Cortex-M. It takes a pointer to the
 *    shared region and tells the caller when the peer's doorbell must be rung;
 *  - the Linux channel (keel_icc_pair, keel_icc_open, keel_icc_send/recv/request, ...): memfd
 *    region, eventfd doorbells, a socketpair whose hang-up reports peer death, SCM_RIGHTS
 *    handover, one pollable fd per endpoint; keel_icc_open_uart gives the same endpoint for a
 *    core rung through a UART (QEMU's character device).
 * The real-time core's blocking API over the ring core is in firmware/drivers/icc/icc_rt.h.
 *
 * The region format is specified byte by byte in docs/intercore.md. Everything read from shared
 * memory is untrusted: the layout is validated once at attach and copied into private memory,
 * every index and length is checked before it is used. */
#ifndef KEEL_ICC_H
#define KEEL_ICC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/status.h"

typedef enum keel_icc_err {
    KEEL_ICC_OK = 0,
    KEEL_ICC_ERR_ARG,         /* a bad argument (NULL, size out of range) */
    KEEL_ICC_ERR_WOULD_BLOCK, /* ring full (send) or empty (receive): try again later */
    KEEL_ICC_ERR_TIMEOUT,     /* the wait's deadline passed */
    KEEL_ICC_ERR_TOO_BIG,     /* message larger than the channel's maximum */
    KEEL_ICC_ERR_BUF_SMALL,   /* receive buffer too small; the message stays in the ring */
    KEEL_ICC_ERR_REGION,      /* region too small, bad magic, version or layout */
    KEEL_ICC_ERR_CORRUPT,     /* the peer wrote an impossible index or frame: channel broken */
    KEEL_ICC_ERR_FORGED,      /* a frame claims a sender other than the paired peer */
    KEEL_ICC_ERR_DENIED,      /* pairing refused: the manifests do not name each other */
    KEEL_ICC_ERR_PEER_GONE,   /* the peer process died or closed its end */
    KEEL_ICC_ERR_IO,          /* the OS refused (errno has more) */
    KEEL_ICC_ERR_COUNT
} keel_icc_err;

const char *keel_icc_err_name(keel_icc_err e);

/* ---- Format constants (docs/intercore.md) ---- */
#define KEEL_ICC_MAGIC 0x4349434bu /* "KCIC" as bytes 'K','C','I','C' little-endian */
#define KEEL_ICC_VERSION 1u
#define KEEL_ICC_HEADER_BYTES 64u
#define KEEL_ICC_CTRL_BYTES 256u /* one ring's control block: 4 cache lines */
#define KEEL_ICC_DATA_OFFSET (KEEL_ICC_HEADER_BYTES + 2u * KEEL_ICC_CTRL_BYTES)
#define KEEL_ICC_FRAME_HDR 32u  /* frame header bytes */
#define KEEL_ICC_ALIGN 8u       /* frames start on 8-byte boundaries */
#define KEEL_ICC_MIN_MSG 1024u  /* the smallest maximum message a channel may have */
#define KEEL_ICC_MAX_MSG 65536u /* the largest maximum message a channel may have */
#define KEEL_ICC_MIN_RING 2048u
#define KEEL_ICC_MAX_RING (1u << 24)

/* Frame flags. */
#define KEEL_ICC_F_REQUEST 0x0001u /* the sender waits for a reply carrying corr */
#define KEEL_ICC_F_REPLY 0x0002u   /* a reply to the request whose corr it carries */

/* The two ends of a channel are equal; the side only says which ring each one sends on. */
typedef enum keel_icc_side { KEEL_ICC_SIDE_A = 0, KEEL_ICC_SIDE_B = 1 } keel_icc_side;

/* A component ID as carried in frames (the 16 bytes of its UUID). */
typedef struct keel_icc_id {
    uint8_t b[16];
} keel_icc_id;

/* One ring's control block in shared memory. head and tail are free-running byte counters
 * (index = counter mod ring size): the producer owns head, the consumer owns tail; each sits
 * on its own cache line so the two sides never write the same line. The waiting flags let a
 * side sleep: it sets its flag, re-checks the ring, then waits for its doorbell; the other side
 * clears the flag with an exchange after publishing and rings only if it was set. */
typedef struct keel_icc_ctrl {
    _Atomic uint32_t head;     /* bytes ever published by the producer */
    _Atomic uint32_t head_seq; /* seq of the last message published (written before head) */
    uint8_t pad0[56];
    _Atomic uint32_t tail;     /* bytes ever consumed (acknowledged) by the consumer */
    _Atomic uint32_t tail_seq; /* seq of the last message consumed (written before tail) */
    uint8_t pad1[56];
    _Atomic uint32_t rx_waiting; /* consumer sleeps until head moves */
    uint8_t pad2[60];
    _Atomic uint32_t tx_waiting; /* producer sleeps until tail moves */
    uint8_t pad3[60];
} keel_icc_ctrl;

/* A message's metadata, as received. */
typedef struct keel_icc_msg {
    uint32_t len;   /* payload bytes */
    uint16_t type;  /* application-defined */
    uint16_t flags; /* KEEL_ICC_F_* */
    uint32_t seq;   /* per-direction sequence number, from 1, +1 per message */
    uint32_t corr;  /* request/reply correlation (0 if neither) */
    keel_icc_id sender;
} keel_icc_msg;

/* The layout a creator chooses. */
typedef struct keel_icc_layout {
    uint32_t ring_bytes; /* each direction; power of two, KEEL_ICC_MIN_RING..KEEL_ICC_MAX_RING */
    uint32_t max_msg;    /* KEEL_ICC_MIN_MSG..KEEL_ICC_MAX_MSG; a max frame must fit the ring */
    keel_icc_id id_a, id_b;
} keel_icc_layout;

/* One side's view of an attached region, in private memory. Fields are validated copies of the
 * header; rx/tx point into the region. Treat as opaque. */
typedef struct keel_icc_ring {
    uint8_t *base;
    uint32_t ring_bytes, max_msg;
    keel_icc_side side;
    keel_icc_id self, peer;
    keel_icc_ctrl *tx_ctrl, *rx_ctrl;
    uint8_t *tx_data, *rx_data;
    uint32_t tx_head;        /* private copy of what we published */
    uint32_t rx_tail;        /* private copy of what we consumed */
    uint32_t tx_seq, rx_seq; /* last sequence number sent / received */
    bool broken;             /* the peer corrupted the channel; every call now fails */
} keel_icc_ring;

/* ---- Ring core: portable, no I/O ---- */

/* Bytes a region with this ring size needs. 0 if ring_bytes is invalid. */
uint32_t keel_icc_region_bytes(uint32_t ring_bytes);

/* Writes a fresh header and empty rings into `mem` (size bytes, 64-byte aligned). */
KEEL_NODISCARD keel_icc_err keel_icc_region_init(void *mem, size_t size,
                                                 const keel_icc_layout *layout);

/* Validates the header of `mem` (size bytes as mapped by this side) and fills r for `side`.
 * ERR_REGION if the mapping is smaller than the header claims, the magic or version is wrong,
 * or the layout is impossible. Resumes from the indices in the region: a side that re-attaches
 * after a restart sees exactly the messages not yet consumed. */
KEEL_NODISCARD keel_icc_err keel_icc_ring_attach(keel_icc_ring *r, void *mem, size_t size,
                                                 keel_icc_side side);

/* Queues one message. OK, ERR_WOULD_BLOCK (ring full: nothing written), ERR_TOO_BIG.
 * *ring_peer is set true if the peer is asleep waiting for data and its doorbell must be rung.
 * On success *seq_out (if not NULL) receives the message's sequence number. */
KEEL_NODISCARD keel_icc_err keel_icc_ring_send(keel_icc_ring *r, uint16_t type, uint16_t flags,
                                               uint32_t corr, const void *data, size_t len,
                                               uint32_t *seq_out, bool *ring_peer);

/* Takes the oldest message. OK, ERR_WOULD_BLOCK (empty), ERR_BUF_SMALL (msg->len says how big;
 * the message stays queued), ERR_CORRUPT (impossible index or frame: the ring is now broken),
 * ERR_FORGED (a frame naming another sender: consumed and reported; the ring stays usable).
 * *ring_peer is set true if the peer is asleep waiting for space. */
KEEL_NODISCARD keel_icc_err keel_icc_ring_recv(keel_icc_ring *r, keel_icc_msg *msg, void *buf,
                                               size_t cap, bool *ring_peer);

/* True if a message is waiting (or the ring is corrupt: recv will say so). */
bool keel_icc_ring_readable(keel_icc_ring *r);

/* Before sleeping for data: announces the wait and returns true if the ring is still empty (so
 * sleeping is safe: the next send will ring). False: data arrived, do not sleep. */
bool keel_icc_ring_arm_rx(keel_icc_ring *r);
/* Before sleeping for space for a frame of `len` payload bytes; same contract. */
bool keel_icc_ring_arm_tx(keel_icc_ring *r, size_t len);

/* Bytes a frame with `len` payload bytes takes in the ring. */
uint32_t keel_icc_frame_bytes(size_t len);

/* ---- Channel table: how a loader tells an emulated RT core where its channels are ----
 *
 * A loader that runs RT firmware in an emulator (tools/keel-qemu: QEMU's mps2-an386, whose
 * 16 MiB PSRAM at 0x21000000 is a host file both map) writes this table at the start of the
 * shared memory, then one channel region (the format above) per channel at the offsets it
 * names. The firmware finds the table at that fixed address (keel_icc_table_channel checks it),
 * sets `ready` once it attached, and bumps `heartbeat` from the code that proves it is alive
 * (board_heartbeat); the loader forwards each change to keeld as a heartbeat.
 * Nothing in it is trusted by either side: the firmware checks offsets against the memory it
 * has, the loader re-reads only the two counters. */
#define KEEL_ICC_TABLE_MAGIC 0x4254434bu /* "KCTB" little-endian */
#define KEEL_ICC_TABLE_VERSION 1u
#define KEEL_ICC_TABLE_MAX 8u      /* channels one table can describe */
#define KEEL_ICC_TABLE_BYTES 4096u /* the first region starts at or after this offset */

typedef struct keel_icc_table_entry {
    uint32_t offset; /* from the table's start; 64-byte aligned */
    uint32_t size;   /* bytes of the region */
} keel_icc_table_entry;

typedef struct keel_icc_table {
    uint32_t magic;             /* KEEL_ICC_TABLE_MAGIC, written last by the loader */
    uint32_t version;           /* KEEL_ICC_TABLE_VERSION */
    uint32_t count;             /* entries used, <= KEEL_ICC_TABLE_MAX */
    uint32_t total;             /* bytes of shared memory from the table's start */
    _Atomic uint32_t heartbeat; /* firmware: +1 per beat; loader: reads */
    _Atomic uint32_t ready;     /* firmware: 1 once its channels are attached */
    uint32_t reserved[2];
    keel_icc_table_entry chan[KEEL_ICC_TABLE_MAX];
} keel_icc_table;

/* Where channel `index` lies in the table at `mem` (mapped for `size` bytes). ERR_REGION if the
 * table is absent or impossible, ERR_ARG if there is no such channel. */
KEEL_NODISCARD keel_icc_err keel_icc_table_channel(const void *mem, size_t size, unsigned index,
                                                   void **region, size_t *region_size);

/* ---- Linux channel ---- */

struct keel_manifest;
struct keel_manifest_error;

/* One end of a channel as file descriptors: what the supervisor hands to a component. */
typedef struct keel_icc_end {
    int mem;      /* memfd holding the region */
    int bell_in;  /* eventfd: this end's doorbell (peer rings it) */
    int bell_out; /* eventfd: the peer's doorbell */
    int link;     /* socketpair end: hang-up means the peer is gone */
    keel_icc_side side;
    keel_icc_id self, peer;
} keel_icc_end;

typedef struct keel_icc_config {
    uint32_t ring_bytes; /* 0: 64 KiB */
    uint32_t max_msg;    /* 0: 1 KiB */
} keel_icc_config;

/* Creates a channel between the components of manifests a and b, if each names the other as an
 * intercore partner; otherwise ERR_DENIED with the reason in *why (if not NULL). The caller owns
 * both ends (close them with keel_icc_end_close once handed over). */
KEEL_NODISCARD keel_icc_err keel_icc_pair(const struct keel_manifest *a,
                                          const struct keel_manifest *b, const keel_icc_config *cfg,
                                          keel_icc_end *end_a, keel_icc_end *end_b,
                                          struct keel_manifest_error *why);

/* Replaces the hang-up link between two ends after one side restarted: new socketpair for both.
 * The region and doorbells are kept, so nothing acknowledged is lost or delivered twice. */
KEEL_NODISCARD keel_icc_err keel_icc_relink(keel_icc_end *a, keel_icc_end *b);

void keel_icc_end_close(keel_icc_end *e);

/* SCM_RIGHTS handover of one end over a Unix socket (both directions). */
KEEL_NODISCARD keel_icc_err keel_icc_end_send(int sock, const keel_icc_end *e);
KEEL_NODISCARD keel_icc_err keel_icc_end_recv(int sock, keel_icc_end *e);

typedef struct keel_icc keel_icc; /* an open endpoint */

typedef struct keel_icc_open_opts {
    /* Poll the ring this long before sleeping on the doorbell (0: sleep at once). Polling
     * briefly avoids the kernel round trip when the peer answers quickly. */
    uint32_t spin_ns;
} keel_icc_open_opts;

/* Maps the region and takes ownership of e's fds (e is cleared). opts may be NULL. */
KEEL_NODISCARD keel_icc_err keel_icc_open(keel_icc_end *e, const keel_icc_open_opts *opts,
                                          keel_icc **out);
/* Opens an endpoint on a region the caller created and mapped, whose peer core is rung
 * through a UART: bell_fd is a stream socket or tty carrying that UART (QEMU: the character
 * device of the guest's doorbell UART). A byte either way rings; end of file means the peer is
 * gone. The IDs are the region header's. Takes ownership of bell_fd; the caller unmaps mem
 * after keel_icc_close. An event loop must drain with keel_icc_recv after keel_icc_send
 * waited (a UART cannot ring its own side). */
KEEL_NODISCARD keel_icc_err keel_icc_open_uart(void *mem, size_t size, keel_icc_side side,
                                               int bell_fd, const keel_icc_open_opts *opts,
                                               keel_icc **out);
void keel_icc_close(keel_icc *c);

/* A descriptor for poll/epoll: readable when a message may be waiting or the peer is gone.
 * After it is readable, call keel_icc_recv (timeout 0) until ERR_WOULD_BLOCK. */
int keel_icc_fd(keel_icc *c);

/* timeout_ms: 0 = do not wait, -1 = wait forever. */
KEEL_NODISCARD keel_icc_err keel_icc_send(keel_icc *c, uint16_t type, const void *data, size_t len,
                                          int timeout_ms);
KEEL_NODISCARD keel_icc_err keel_icc_recv(keel_icc *c, keel_icc_msg *msg, void *buf, size_t cap,
                                          int timeout_ms);
/* Sends a request and waits for its reply (timeout_ms must not be 0); messages that arrive
 * meanwhile are kept for keel_icc_recv, in order. */
KEEL_NODISCARD keel_icc_err keel_icc_request(keel_icc *c, uint16_t type, const void *req,
                                             size_t req_len, keel_icc_msg *resp, void *buf,
                                             size_t cap, int timeout_ms);
KEEL_NODISCARD keel_icc_err keel_icc_reply(keel_icc *c, const keel_icc_msg *req, uint16_t type,
                                           const void *data, size_t len, int timeout_ms);

/* Adopts a new hang-up link after the peer restarted (from keel_icc_relink). */
KEEL_NODISCARD keel_icc_err keel_icc_set_link(keel_icc *c, int link_fd);

/* True once the peer has been seen to die; cleared by keel_icc_set_link. */
bool keel_icc_peer_gone(keel_icc *c);

/* The ring view, for tests and tools. */
keel_icc_ring *keel_icc_ring_of(keel_icc *c);

#endif

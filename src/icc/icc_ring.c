/* The intercore ring core: region layout, framing, and the single-producer/single-consumer
 * protocol with explicit C11 memory ordering. No I/O and no OS calls, so the same file builds
 * for Linux, the RTOS sim port and Cortex-M; the caller rings doorbells when told to.
 *
 * Ordering, in one place:
 *  - the producer writes a frame's bytes, then head_seq (relaxed), then head with release; the
 *    consumer loads head with acquire, so every byte below head is visible before it reads it;
 *  - the consumer copies a frame out, then stores tail_seq (relaxed) and tail with release; the
 *    producer loads tail with acquire before reusing those bytes;
 *  - sleeping uses a Dekker pair: the sleeper stores its waiting flag, fences (seq_cst), then
 *    re-reads the index; the other side stores the index, fences, then exchanges the flag to 0.
 *    At least one of them sees the other's store, so a wake-up is never lost.
 *
 * Trust: everything in the region may be scribbled on by the peer. The layout is validated at
 * attach and copied; our own indices are kept in private memory and the peer's are checked
 * (distance within the ring, 8-byte aligned) every time they are read. A frame header is copied
 * out once and checked (length, sequence, sender) before anything depends on it. */
#include <string.h>

#include "keel/icc.h"

_Static_assert(sizeof(keel_icc_ctrl) == KEEL_ICC_CTRL_BYTES, "control block is 4 cache lines");
_Static_assert(offsetof(keel_icc_ctrl, tail) == 64, "tail on its own cache line");
_Static_assert(offsetof(keel_icc_ctrl, rx_waiting) == 128, "rx_waiting at 128");
_Static_assert(offsetof(keel_icc_ctrl, tx_waiting) == 192, "tx_waiting at 192");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the region format is little-endian");

/* Header field offsets (docs/intercore.md). */
enum {
    H_MAGIC = 0,
    H_VERSION = 4,
    H_HDR_BYTES = 6,
    H_REGION_BYTES = 8,
    H_RING_BYTES = 12,
    H_MAX_MSG = 16,
    H_FLAGS = 20,
    H_ID_A = 24,
    H_ID_B = 40,
};

/* Frame header offsets. */
enum { F_LEN = 0, F_TYPE = 4, F_FLAGS = 6, F_SEQ = 8, F_CORR = 12, F_SENDER = 16 };

const char *keel_icc_err_name(keel_icc_err e)
{
    static const char *const names[KEEL_ICC_ERR_COUNT] = {
        [KEEL_ICC_OK] = "KEEL_ICC_OK",
        [KEEL_ICC_ERR_ARG] = "KEEL_ICC_ERR_ARG",
        [KEEL_ICC_ERR_WOULD_BLOCK] = "KEEL_ICC_ERR_WOULD_BLOCK",
        [KEEL_ICC_ERR_TIMEOUT] = "KEEL_ICC_ERR_TIMEOUT",
        [KEEL_ICC_ERR_TOO_BIG] = "KEEL_ICC_ERR_TOO_BIG",
        [KEEL_ICC_ERR_BUF_SMALL] = "KEEL_ICC_ERR_BUF_SMALL",
        [KEEL_ICC_ERR_REGION] = "KEEL_ICC_ERR_REGION",
        [KEEL_ICC_ERR_CORRUPT] = "KEEL_ICC_ERR_CORRUPT",
        [KEEL_ICC_ERR_FORGED] = "KEEL_ICC_ERR_FORGED",
        [KEEL_ICC_ERR_DENIED] = "KEEL_ICC_ERR_DENIED",
        [KEEL_ICC_ERR_PEER_GONE] = "KEEL_ICC_ERR_PEER_GONE",
        [KEEL_ICC_ERR_IO] = "KEEL_ICC_ERR_IO",
    };
    return (unsigned)e < KEEL_ICC_ERR_COUNT ? names[e] : "KEEL_ICC_ERR_UNKNOWN";
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool pow2(uint32_t v)
{
    return v && (v & (v - 1)) == 0;
}

uint32_t keel_icc_frame_bytes(size_t len)
{
    return (uint32_t)((KEEL_ICC_FRAME_HDR + len + KEEL_ICC_ALIGN - 1) &
                      ~(size_t)(KEEL_ICC_ALIGN - 1));
}

uint32_t keel_icc_region_bytes(uint32_t ring_bytes)
{
    if (!pow2(ring_bytes) || ring_bytes < KEEL_ICC_MIN_RING || ring_bytes > KEEL_ICC_MAX_RING) {
        return 0;
    }
    return KEEL_ICC_DATA_OFFSET + 2u * ring_bytes;
}

static bool layout_ok(uint32_t ring_bytes, uint32_t max_msg)
{
    return keel_icc_region_bytes(ring_bytes) != 0 && max_msg >= KEEL_ICC_MIN_MSG &&
           max_msg <= KEEL_ICC_MAX_MSG && keel_icc_frame_bytes(max_msg) <= ring_bytes;
}

keel_icc_err keel_icc_region_init(void *mem, size_t size, const keel_icc_layout *layout)
{
    if (!mem || !layout || ((uintptr_t)mem & 63) != 0 ||
        !layout_ok(layout->ring_bytes, layout->max_msg)) {
        return KEEL_ICC_ERR_ARG;
    }
    uint32_t need = keel_icc_region_bytes(layout->ring_bytes);
    if (size < need) {
        return KEEL_ICC_ERR_REGION;
    }
    uint8_t *b = mem;
    memset(b, 0, need);
    put16(b + H_VERSION, KEEL_ICC_VERSION);
    put16(b + H_HDR_BYTES, KEEL_ICC_HEADER_BYTES);
    put32(b + H_REGION_BYTES, need);
    put32(b + H_RING_BYTES, layout->ring_bytes);
    put32(b + H_MAX_MSG, layout->max_msg);
    put32(b + H_FLAGS, 0);
    memcpy(b + H_ID_A, layout->id_a.b, 16);
    memcpy(b + H_ID_B, layout->id_b.b, 16);
    /* The magic goes last, with release, so a side that sees it sees a complete header. */
    atomic_store_explicit((_Atomic uint32_t *)(void *)(b + H_MAGIC), KEEL_ICC_MAGIC,
                          memory_order_release);
    return KEEL_ICC_OK;
}

/* A peer index is plausible if it is 8-aligned and within one ring of ours. */
static bool span_ok(const keel_icc_ring *r, uint32_t ahead, uint32_t behind)
{
    uint32_t d = ahead - behind;
    return d <= r->ring_bytes && (d % KEEL_ICC_ALIGN) == 0;
}

keel_icc_err keel_icc_ring_attach(keel_icc_ring *r, void *mem, size_t size, keel_icc_side side)
{
    if (!r || !mem || (side != KEEL_ICC_SIDE_A && side != KEEL_ICC_SIDE_B)) {
        return KEEL_ICC_ERR_ARG;
    }
    memset(r, 0, sizeof *r);
    uint8_t *b = mem;
    if (size < KEEL_ICC_DATA_OFFSET || ((uintptr_t)mem & 63) != 0) {
        return KEEL_ICC_ERR_REGION;
    }
    uint32_t magic =
        atomic_load_explicit((_Atomic uint32_t *)(void *)(b + H_MAGIC), memory_order_acquire);
    uint32_t ring_bytes = get32(b + H_RING_BYTES), max_msg = get32(b + H_MAX_MSG);
    if (magic != KEEL_ICC_MAGIC || get16(b + H_VERSION) != KEEL_ICC_VERSION ||
        get16(b + H_HDR_BYTES) != KEEL_ICC_HEADER_BYTES || !layout_ok(ring_bytes, max_msg) ||
        get32(b + H_REGION_BYTES) != keel_icc_region_bytes(ring_bytes) ||
        size < keel_icc_region_bytes(ring_bytes)) {
        return KEEL_ICC_ERR_REGION;
    }
    r->base = b;
    r->ring_bytes = ring_bytes;
    r->max_msg = max_msg;
    r->side = side;
    memcpy(r->self.b, b + (side == KEEL_ICC_SIDE_A ? H_ID_A : H_ID_B), 16);
    memcpy(r->peer.b, b + (side == KEEL_ICC_SIDE_A ? H_ID_B : H_ID_A), 16);
    keel_icc_ctrl *ab = (keel_icc_ctrl *)(void *)(b + KEEL_ICC_HEADER_BYTES);
    keel_icc_ctrl *ba = (keel_icc_ctrl *)(void *)(b + KEEL_ICC_HEADER_BYTES + KEEL_ICC_CTRL_BYTES);
    uint8_t *dab = b + KEEL_ICC_DATA_OFFSET, *dba = dab + ring_bytes;
    r->tx_ctrl = side == KEEL_ICC_SIDE_A ? ab : ba;
    r->rx_ctrl = side == KEEL_ICC_SIDE_A ? ba : ab;
    r->tx_data = side == KEEL_ICC_SIDE_A ? dab : dba;
    r->rx_data = side == KEEL_ICC_SIDE_A ? dba : dab;
    /* Resume where this side left off: our own indices come from the region once, here. */
    r->tx_head = atomic_load_explicit(&r->tx_ctrl->head, memory_order_acquire);
    r->tx_seq = atomic_load_explicit(&r->tx_ctrl->head_seq, memory_order_relaxed);
    r->rx_tail = atomic_load_explicit(&r->rx_ctrl->tail, memory_order_acquire);
    r->rx_seq = atomic_load_explicit(&r->rx_ctrl->tail_seq, memory_order_relaxed);
    uint32_t tx_tail = atomic_load_explicit(&r->tx_ctrl->tail, memory_order_acquire);
    uint32_t rx_head = atomic_load_explicit(&r->rx_ctrl->head, memory_order_acquire);
    if (!span_ok(r, r->tx_head, tx_tail) || !span_ok(r, rx_head, r->rx_tail)) {
        return KEEL_ICC_ERR_REGION;
    }
    return KEEL_ICC_OK;
}

/* Copies into / out of a ring at a free-running position, wrapping at the end. */
static void ring_write(uint8_t *data, uint32_t size, uint32_t pos, const void *src, uint32_t n)
{
    uint32_t at = pos & (size - 1), first = size - at < n ? size - at : n;
    memcpy(data + at, src, first);
    memcpy(data, (const uint8_t *)src + first, n - first);
}
static void ring_read(const uint8_t *data, uint32_t size, uint32_t pos, void *dst, uint32_t n)
{
    uint32_t at = pos & (size - 1), first = size - at < n ? size - at : n;
    memcpy(dst, data + at, first);
    memcpy((uint8_t *)dst + first, data, n - first);
}

keel_icc_err keel_icc_ring_send(keel_icc_ring *r, uint16_t type, uint16_t flags, uint32_t corr,
                                const void *data, size_t len, uint32_t *seq_out, bool *ring_peer)
{
    *ring_peer = false;
    if (r->broken) {
        return KEEL_ICC_ERR_CORRUPT;
    }
    if (len > r->max_msg) {
        return KEEL_ICC_ERR_TOO_BIG;
    }
    if (len && !data) {
        return KEEL_ICC_ERR_ARG;
    }
    uint32_t need = keel_icc_frame_bytes(len);
    uint32_t tail = atomic_load_explicit(&r->tx_ctrl->tail, memory_order_acquire);
    if (!span_ok(r, r->tx_head, tail)) {
        r->broken = true;
        return KEEL_ICC_ERR_CORRUPT;
    }
    if (r->ring_bytes - (r->tx_head - tail) < need) {
        return KEEL_ICC_ERR_WOULD_BLOCK;
    }
    uint8_t hdr[KEEL_ICC_FRAME_HDR];
    uint32_t seq = r->tx_seq + 1;
    put32(hdr + F_LEN, (uint32_t)len);
    put16(hdr + F_TYPE, type);
    put16(hdr + F_FLAGS, flags);
    put32(hdr + F_SEQ, seq);
    put32(hdr + F_CORR, corr);
    memcpy(hdr + F_SENDER, r->self.b, 16);
    ring_write(r->tx_data, r->ring_bytes, r->tx_head, hdr, sizeof hdr);
    if (len) {
        ring_write(r->tx_data, r->ring_bytes, r->tx_head + KEEL_ICC_FRAME_HDR, data, (uint32_t)len);
    }
    uint32_t pad = need - KEEL_ICC_FRAME_HDR - (uint32_t)len;
    if (pad) {
        static const uint8_t zeros[KEEL_ICC_ALIGN];
        ring_write(r->tx_data, r->ring_bytes, r->tx_head + need - pad, zeros, pad);
    }
    r->tx_head += need;
    r->tx_seq = seq;
    atomic_store_explicit(&r->tx_ctrl->head_seq, seq, memory_order_relaxed);
    atomic_store_explicit(&r->tx_ctrl->head, r->tx_head, memory_order_release);
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&r->tx_ctrl->rx_waiting, memory_order_relaxed) &&
        atomic_exchange_explicit(&r->tx_ctrl->rx_waiting, 0, memory_order_acq_rel)) {
        *ring_peer = true;
    }
    if (seq_out) {
        *seq_out = seq;
    }
    return KEEL_ICC_OK;
}

keel_icc_err keel_icc_ring_recv(keel_icc_ring *r, keel_icc_msg *msg, void *buf, size_t cap,
                                bool *ring_peer)
{
    *ring_peer = false;
    if (r->broken) {
        return KEEL_ICC_ERR_CORRUPT;
    }
    uint32_t head = atomic_load_explicit(&r->rx_ctrl->head, memory_order_acquire);
    if (head == r->rx_tail) {
        return KEEL_ICC_ERR_WOULD_BLOCK;
    }
    uint32_t avail = head - r->rx_tail;
    if (!span_ok(r, head, r->rx_tail) || avail < KEEL_ICC_FRAME_HDR) {
        r->broken = true;
        return KEEL_ICC_ERR_CORRUPT;
    }
    /* One copy of the header; only the copy is checked and used. */
    uint8_t hdr[KEEL_ICC_FRAME_HDR];
    ring_read(r->rx_data, r->ring_bytes, r->rx_tail, hdr, sizeof hdr);
    uint32_t len = get32(hdr + F_LEN), seq = get32(hdr + F_SEQ);
    if (len > r->max_msg || keel_icc_frame_bytes(len) > avail || seq != r->rx_seq + 1) {
        r->broken = true;
        return KEEL_ICC_ERR_CORRUPT;
    }
    msg->len = len;
    msg->type = get16(hdr + F_TYPE);
    msg->flags = get16(hdr + F_FLAGS);
    msg->seq = seq;
    msg->corr = get32(hdr + F_CORR);
    memcpy(msg->sender.b, hdr + F_SENDER, 16);
    /* A frame naming another sender is consumed unread (whatever its size) and reported. */
    bool forged = memcmp(msg->sender.b, r->peer.b, 16) != 0;
    if (len > cap && !forged) {
        return KEEL_ICC_ERR_BUF_SMALL;
    }
    if (len && !forged) {
        ring_read(r->rx_data, r->ring_bytes, r->rx_tail + KEEL_ICC_FRAME_HDR, buf, len);
    }
    r->rx_tail += keel_icc_frame_bytes(len);
    r->rx_seq = seq;
    atomic_store_explicit(&r->rx_ctrl->tail_seq, seq, memory_order_relaxed);
    atomic_store_explicit(&r->rx_ctrl->tail, r->rx_tail, memory_order_release);
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&r->rx_ctrl->tx_waiting, memory_order_relaxed) &&
        atomic_exchange_explicit(&r->rx_ctrl->tx_waiting, 0, memory_order_acq_rel)) {
        *ring_peer = true;
    }
    return forged ? KEEL_ICC_ERR_FORGED : KEEL_ICC_OK;
}

bool keel_icc_ring_readable(keel_icc_ring *r)
{
    return r->broken || atomic_load_explicit(&r->rx_ctrl->head, memory_order_acquire) != r->rx_tail;
}

bool keel_icc_ring_arm_rx(keel_icc_ring *r)
{
    atomic_store_explicit(&r->rx_ctrl->rx_waiting, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    return !keel_icc_ring_readable(r);
}

bool keel_icc_ring_arm_tx(keel_icc_ring *r, size_t len)
{
    atomic_store_explicit(&r->tx_ctrl->tx_waiting, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    uint32_t tail = atomic_load_explicit(&r->tx_ctrl->tail, memory_order_acquire);
    if (r->broken || !span_ok(r, r->tx_head, tail)) {
        return false; /* let send report it */
    }
    return r->ring_bytes - (r->tx_head - tail) < keel_icc_frame_bytes(len);
}

/* The channel table (keel/icc.h): read once with plain loads, every field checked against the
 * memory this side has before a pointer is formed from it. */
keel_icc_err keel_icc_table_channel(const void *mem, size_t size, unsigned index, void **region,
                                    size_t *region_size)
{
    if (!mem || !region || !region_size || ((uintptr_t)mem & 63) != 0) {
        return KEEL_ICC_ERR_ARG;
    }
    if (size < KEEL_ICC_TABLE_BYTES) {
        return KEEL_ICC_ERR_REGION;
    }
    const volatile keel_icc_table *t = mem;
    uint32_t magic = t->magic;
    atomic_thread_fence(memory_order_acquire); /* the loader writes the magic last */
    uint32_t version = t->version, count = t->count, total = t->total;
    if (magic != KEEL_ICC_TABLE_MAGIC || version != KEEL_ICC_TABLE_VERSION ||
        count > KEEL_ICC_TABLE_MAX || total > size || total < KEEL_ICC_TABLE_BYTES) {
        return KEEL_ICC_ERR_REGION;
    }
    if (index >= count) {
        return KEEL_ICC_ERR_ARG;
    }
    uint32_t off = t->chan[index].offset, len = t->chan[index].size;
    if (off < KEEL_ICC_TABLE_BYTES || (off & 63u) != 0 || len < KEEL_ICC_DATA_OFFSET ||
        off > total || len > total - off) {
        return KEEL_ICC_ERR_REGION;
    }
    *region = (uint8_t *)(uintptr_t)mem + off;
    *region_size = len;
    return KEEL_ICC_OK;
}

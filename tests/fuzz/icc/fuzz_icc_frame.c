/* Fuzzes what a hostile peer controls: the region header (attach must refuse or accept a
 * consistent layout) and, in a valid region, the producer's index and every byte of the ring
 * (the frame parser must report CORRUPT, FORGED or a well-formed message, never read outside
 * the ring or hand out more than the buffer holds).
 *
 * Input: byte 0 picks the mode; the rest is laid over the header (mode 0) or over the A->B
 * ring's head index and data (mode 1). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keel/icc.h"

#define RING 2048u

static _Alignas(64) uint8_t region[KEEL_ICC_DATA_OFFSET + 2 * RING];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    keel_icc_layout l = {.ring_bytes = RING, .max_msg = KEEL_ICC_MIN_MSG};
    l.id_a.b[0] = 0xa;
    l.id_b.b[0] = 0xb;
    if (keel_icc_region_init(region, sizeof region, &l) != KEEL_ICC_OK)
        abort();
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    keel_icc_ring r;
    if (data[0] & 1) {
        if (n < 8)
            return 0;
        keel_icc_ctrl *ab = (keel_icc_ctrl *)(void *)(region + KEEL_ICC_HEADER_BYTES);
        uint32_t head, tail;
        memcpy(&head, in, 4);
        memcpy(&tail, in + 4, 4);
        atomic_store(&ab->head, head);
        atomic_store(&ab->tail, tail & ~7u);
        n -= 8;
        memcpy(region + KEEL_ICC_DATA_OFFSET, in + 8, n < RING ? n : RING);
        if (keel_icc_ring_attach(&r, region, sizeof region, KEEL_ICC_SIDE_B) != KEEL_ICC_OK) {
            return 0;
        }
    } else {
        memcpy(region, in, n < KEEL_ICC_HEADER_BYTES ? n : KEEL_ICC_HEADER_BYTES);
        size_t claimed = n > KEEL_ICC_HEADER_BYTES ? sizeof region : KEEL_ICC_DATA_OFFSET;
        if (keel_icc_ring_attach(&r, region, claimed, KEEL_ICC_SIDE_B) != KEEL_ICC_OK) {
            return 0;
        }
        /* Accepted: the layout it promised must fit what we have. */
        if (keel_icc_region_bytes(r.ring_bytes) > claimed)
            abort();
    }
    uint8_t buf[KEEL_ICC_MIN_MSG];
    for (int i = 0; i < 64; i++) {
        keel_icc_msg m;
        bool bell;
        size_t cap = (size_t)(i * 97) % sizeof buf;
        keel_icc_err rc = keel_icc_ring_recv(&r, &m, buf, cap, &bell);
        if (rc == KEEL_ICC_OK && m.len > cap)
            abort();
        if (rc != KEEL_ICC_OK && rc != KEEL_ICC_ERR_FORGED && rc != KEEL_ICC_ERR_BUF_SMALL)
            break;
    }
    /* The other direction still works for the side that attached. */
    bool bell;
    (void)keel_icc_ring_send(&r, 1, 0, 0, "x", 1, NULL, &bell);
    return 0;
}

/* Fuzzes the channel table an RT core reads at its start (keel_icc_table_channel): the loader
 * that wrote it is not trusted more than any other peer. Every answer must lie inside the
 * memory given; an accepted region must then attach or be refused by keel_icc_ring_attach,
 * never read outside. Input: laid over the start of a 16 KiB "PSRAM"; the last byte picks the
 * channel index. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keel/icc.h"

#define MEM (16u * 1024u)

static _Alignas(64) uint8_t mem[MEM];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    memset(mem, 0, sizeof mem);
    memcpy(mem, data, size - 1 < MEM ? size - 1 : MEM);
    void *region;
    size_t len;
    if (keel_icc_table_channel(mem, sizeof mem, data[size - 1] % 16u, &region, &len) !=
        KEEL_ICC_OK) {
        return 0;
    }
    uintptr_t lo = (uintptr_t)mem, hi = lo + sizeof mem, r = (uintptr_t)region;
    if (r < lo + KEEL_ICC_TABLE_BYTES || r > hi || len > hi - r || (r & 63u) != 0) {
        abort();
    }
    keel_icc_ring ring;
    if (keel_icc_ring_attach(&ring, region, len, KEEL_ICC_SIDE_B) == KEEL_ICC_OK) {
        uint8_t buf[KEEL_ICC_MIN_MSG];
        keel_icc_msg m;
        bool bell;
        (void)keel_icc_ring_recv(&ring, &m, buf, sizeof buf, &bell);
    }
    return 0;
}

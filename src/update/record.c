/* The durable state record and its two copies.
 *
 * A record is written to the copy that does not hold the current one: erase its block, write,
 * sync. A cut during that leaves the current copy intact (its block is never touched), and a
 * torn or erased copy fails its SHA-256, so loading always finds the last record whose sync
 * completed. The sequence number orders the copies; it is 32 bits and a device would need
 * four billion state changes to wrap it.
 */
#include <sodium.h>
#include <string.h>

#include "../image/image_priv.h"
#include "update_priv.h"

void ku_record_encode(const ku_record *r, uint8_t out[KU_RECORD_SIZE])
{
    memset(out, 0, KU_RECORD_SIZE);
    ki_put32(out + 0, KU_RECORD_MAGIC);
    ki_put32(out + 4, r->seq);
    out[8] = r->state;
    out[9] = r->active;
    out[10] = r->trial_boots;
    ki_put32(out + 12, r->floor);
    ki_put32(out + 16, r->manifest_len);
    memcpy(out + 20, r->manifest_hash, KEEL_IMAGE_HASH_SIZE);
    ki_put32(out + 52, r->chunk_count);
    memcpy(out + 56, r->bitmap, KU_BITMAP_BYTES);
    ki_put32(out + 568, r->push_len);
    crypto_hash_sha256(out + KU_RECORD_HASHED, out, KU_RECORD_HASHED);
}

bool ku_record_decode(const uint8_t in[KU_RECORD_SIZE], ku_record *r)
{
    uint8_t h[KEEL_IMAGE_HASH_SIZE];
    if (ki_get32(in) != KU_RECORD_MAGIC) {
        return false;
    }
    crypto_hash_sha256(h, in, KU_RECORD_HASHED);
    if (memcmp(h, in + KU_RECORD_HASHED, sizeof h) != 0) {
        return false;
    }
    r->seq = ki_get32(in + 4);
    r->state = in[8];
    r->active = in[9];
    r->trial_boots = in[10];
    r->floor = ki_get32(in + 12);
    r->manifest_len = ki_get32(in + 16);
    memcpy(r->manifest_hash, in + 20, KEEL_IMAGE_HASH_SIZE);
    r->chunk_count = ki_get32(in + 52);
    memcpy(r->bitmap, in + 56, KU_BITMAP_BYTES);
    r->push_len = ki_get32(in + 568);
    return r->state <= KEEL_UPDATE_TRIAL && r->active <= 1 &&
           r->chunk_count <= KEEL_RELEASE_MAX_CHUNKS;
}

uint32_t ku_record_stride(const keel_update_storage *s)
{
    return (KU_RECORD_SIZE + s->erase_size - 1) / s->erase_size * s->erase_size;
}

bool ku_record_load(const keel_update_storage *s, ku_record *r)
{
    uint8_t buf[KU_RECORD_SIZE];
    ku_record c[2];
    bool ok[2];
    for (int i = 0; i < 2; i++) {
        ok[i] = s->read(s->ctx, KEEL_UPDATE_AREA_STATE, (uint32_t)i * ku_record_stride(s), buf,
                        sizeof buf) == 0 &&
                ku_record_decode(buf, &c[i]);
    }
    if (!ok[0] && !ok[1]) {
        return false;
    }
    int pick = !ok[0] ? 1 : !ok[1] ? 0 : (c[1].seq > c[0].seq ? 1 : 0);
    *r = c[pick];
    return true;
}

int ku_record_store(const keel_update_storage *s, ku_record *r)
{
    ku_record next = *r;
    next.seq = r->seq + 1;
    uint32_t off = (next.seq & 1u) * ku_record_stride(s);
    uint8_t buf[KU_RECORD_SIZE];
    ku_record_encode(&next, buf);
    if (s->erase(s->ctx, KEEL_UPDATE_AREA_STATE, off, ku_record_stride(s)) != 0 ||
        s->write(s->ctx, KEEL_UPDATE_AREA_STATE, off, buf, sizeof buf) != 0 ||
        s->sync(s->ctx, KEEL_UPDATE_AREA_STATE) != 0) {
        return -1;
    }
    r->seq = next.seq;
    return 0;
}

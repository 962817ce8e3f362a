/* Push mode: a peer writes the image in order instead of the agent fetching chunks.
 *
 * This is how a MODBUS sensor takes an update (the sensor update profile, docs/updates.md): the
 * gateway writes file records in order; the sensor's agent fills one erase block in RAM and
 * stores it (erase, write, sync, then the record with the block's bit), so after a power cut
 * the sensor reports the start of the first block it does not hold and the gateway resumes
 * there. At commit the agent checks the SHA-256 the gateway announced, then the image's own
 * signature, component and security counter, and arms the trial exactly as an install does.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "update_priv.h"

static bool push_mode(const keel_update_agent *a)
{
    return a->rec.state == KEEL_UPDATE_DOWNLOADING && a->rec.manifest_len == 0;
}

/* Blocks stored in order from the start. */
static uint32_t blocks_done(const keel_update_agent *a)
{
    uint32_t i = 0;
    while (i < a->rec.chunk_count && ku_bit(&a->rec, i)) {
        i++;
    }
    return i;
}

uint32_t keel_update_push_next(const keel_update_agent *a)
{
    if (!a || !push_mode(a)) {
        return 0;
    }
    uint64_t next = (uint64_t)blocks_done(a) * a->st->erase_size + a->push_have;
    return next > a->rec.push_len ? a->rec.push_len : (uint32_t)next;
}

uint32_t keel_update_push_length(const keel_update_agent *a)
{
    return a && push_mode(a) ? a->rec.push_len : 0;
}

keel_update_err keel_update_push_begin(keel_update_agent *a, uint32_t len,
                                       const uint8_t sha256[KEEL_IMAGE_HASH_SIZE],
                                       keel_update_error *err)
{
    if (!a || !sha256) {
        return ku_fail(err, KEEL_UPDATE_ERR_ARG, "no agent or no hash");
    }
    if (!a->booted || a->reboot_pending) {
        return ku_fail(err, KEEL_UPDATE_ERR_STATE, "boot (or restart) before starting an update");
    }
    if (a->rec.state == KEEL_UPDATE_TRIAL) {
        return ku_fail(err, KEEL_UPDATE_ERR_STATE, "a trial is under way: confirm or revert first");
    }
    const keel_update_storage *s = a->st;
    uint64_t blocks = ((uint64_t)len + s->erase_size - 1) / s->erase_size;
    if (len < KEEL_IMAGE_HEADER_SIZE || len > s->size[KEEL_UPDATE_SLOT_A] ||
        blocks > KEEL_RELEASE_MAX_CHUNKS) {
        return ku_fail(err, KEEL_UPDATE_ERR_TOO_BIG, "image of %u bytes; this slot takes %u", len,
                       s->size[KEEL_UPDATE_SLOT_A]);
    }
    if (push_mode(a) && a->rec.push_len == len &&
        memcmp(a->rec.manifest_hash, sha256, KEEL_IMAGE_HASH_SIZE) == 0) {
        return KEEL_UPDATE_OK; /* the same image again: resume */
    }
    if (!a->push_buf && !(a->push_buf = malloc(s->erase_size))) {
        return ku_fail(err, KEEL_UPDATE_ERR_ARG, "out of memory");
    }
    free(a->manifest);
    a->manifest = NULL;
    ku_record next = a->rec;
    next.state = KEEL_UPDATE_DOWNLOADING;
    next.manifest_len = 0;
    next.push_len = len;
    memcpy(next.manifest_hash, sha256, KEEL_IMAGE_HASH_SIZE);
    next.chunk_count = (uint32_t)blocks;
    memset(next.bitmap, 0, sizeof next.bitmap);
    a->push_have = 0;
    return ku_commit(a, &next, err);
}

static keel_update_err store_block(keel_update_agent *a, keel_update_error *err)
{
    uint32_t i = blocks_done(a);
    keel_update_area slot = a->rec.active ? KEEL_UPDATE_SLOT_A : KEEL_UPDATE_SLOT_B;
    if (ku_store_bytes(a->st, slot, i * a->st->erase_size, a->push_buf, a->push_have) != 0) {
        return ku_fail(err, KEEL_UPDATE_ERR_STORAGE, "block %u: storage failed", i);
    }
    ku_record next = a->rec;
    next.bitmap[i / 8] |= (uint8_t)(1u << (i % 8));
    keel_update_err e = ku_commit(a, &next, err);
    if (e == KEEL_UPDATE_OK) {
        a->push_have = 0;
    }
    return e;
}

keel_update_err keel_update_push_write(keel_update_agent *a, uint32_t off, const uint8_t *data,
                                       uint32_t len, keel_update_error *err)
{
    if (!a || (!data && len)) {
        return ku_fail(err, KEEL_UPDATE_ERR_ARG, "no agent or no data");
    }
    if (!push_mode(a)) {
        return ku_fail(err, KEEL_UPDATE_ERR_STATE, "no pushed update in progress");
    }
    if (!a->push_buf && !(a->push_buf = malloc(a->st->erase_size))) {
        return ku_fail(err, KEEL_UPDATE_ERR_ARG, "out of memory");
    }
    if (off > a->rec.push_len || len > a->rec.push_len - off) {
        return ku_fail(err, KEEL_UPDATE_ERR_TOO_BIG, "bytes %u..%u past the image's %u", off,
                       off + len, a->rec.push_len);
    }
    uint32_t next = keel_update_push_next(a);
    if (off > next) {
        return ku_fail(err, KEEL_UPDATE_ERR_CHUNK, "bytes at %u, expected %u (in order)", off, next);
    }
    if (off + len <= next) {
        return KEEL_UPDATE_OK; /* already held (a resend) */
    }
    uint32_t skip = next - off;
    data += skip;
    len -= skip;
    uint32_t E = a->st->erase_size;
    while (len) {
        uint32_t n = E - a->push_have < len ? E - a->push_have : len;
        memcpy(a->push_buf + a->push_have, data, n);
        a->push_have += n;
        data += n;
        len -= n;
        bool last = keel_update_push_next(a) == a->rec.push_len;
        if (a->push_have == E || last) {
            keel_update_err e = store_block(a, err);
            if (e != KEEL_UPDATE_OK) {
                return e;
            }
        }
    }
    return KEEL_UPDATE_OK;
}

keel_update_err keel_update_push_commit(keel_update_agent *a, keel_update_error *err)
{
    if (!a) {
        return ku_fail(err, KEEL_UPDATE_ERR_ARG, "no agent");
    }
    if (!push_mode(a)) {
        return ku_fail(err, KEEL_UPDATE_ERR_STATE, "no pushed update in progress");
    }
    uint32_t len = a->rec.push_len;
    if (keel_update_push_next(a) != len || blocks_done(a) != a->rec.chunk_count) {
        return ku_fail(err, KEEL_UPDATE_ERR_STATE, "%u of %u bytes received",
                       keel_update_push_next(a), len);
    }
    int slot = 1 - a->rec.active;
    keel_update_area area = slot ? KEEL_UPDATE_SLOT_B : KEEL_UPDATE_SLOT_A;
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    uint8_t buf[1024], h[KEEL_IMAGE_HASH_SIZE];
    for (uint32_t off = 0; off < len;) {
        uint32_t n = len - off < sizeof buf ? len - off : (uint32_t)sizeof buf;
        if (a->st->read(a->st->ctx, area, off, buf, n) != 0) {
            return ku_fail(err, KEEL_UPDATE_ERR_STORAGE, "reading the staged image failed");
        }
        crypto_hash_sha256_update(&st, buf, n);
        off += n;
    }
    crypto_hash_sha256_final(&st, h);
    keel_update_err e = KEEL_UPDATE_OK;
    keel_image_info info;
    if (memcmp(h, a->rec.manifest_hash, sizeof h) != 0) {
        e = ku_fail(err, KEEL_UPDATE_ERR_IMAGE, "SHA-256 of the received image does not match");
    } else {
        /* The announced SHA-256 only says the transfer is complete and intact; it is not signed, so
         * the image is verified in full against its own signature. */
        e = ku_verify_slot(a, slot, len, false, &info, err);
    }
    return ku_finish_install(a, e, &info, err);
}

/* ---- local staging: the whole image at once ---------------------------------------------- */

keel_update_err keel_update_stage(keel_update_agent *a, const uint8_t *image, size_t len,
                                  keel_update_error *err)
{
    if (!a || !image) {
        return ku_fail(err, KEEL_UPDATE_ERR_ARG, "no agent or no image");
    }
    if (!a->booted || a->reboot_pending) {
        return ku_fail(err, KEEL_UPDATE_ERR_STATE, "boot (or restart) before starting an update");
    }
    if (a->rec.state == KEEL_UPDATE_TRIAL) {
        return ku_fail(err, KEEL_UPDATE_ERR_STATE, "a trial is under way: confirm or revert first");
    }
    const keel_update_storage *s = a->st;
    if (len < KEEL_IMAGE_HEADER_SIZE || len > s->size[KEEL_UPDATE_SLOT_A]) {
        return ku_fail(err, KEEL_UPDATE_ERR_TOO_BIG, "image of %zu bytes; this slot takes %u", len,
                       s->size[KEEL_UPDATE_SLOT_A]);
    }
    keel_update_err e;
    if (a->rec.state != KEEL_UPDATE_IDLE) {
        /* A download's chunk bits describe the slot about to be overwritten: drop them first,
         * durably, or a resumed download would trust bytes that are no longer its own. */
        ku_record idle = a->rec;
        idle.state = KEEL_UPDATE_IDLE;
        if ((e = ku_commit(a, &idle, err)) != KEEL_UPDATE_OK) {
            return e;
        }
        free(a->manifest);
        a->manifest = NULL;
    }
    int slot = 1 - a->rec.active;
    if (ku_store_bytes(s, slot ? KEEL_UPDATE_SLOT_B : KEEL_UPDATE_SLOT_A, 0, image,
                       (uint32_t)len) != 0) {
        return ku_fail(err, KEEL_UPDATE_ERR_STORAGE, "storage failed writing slot %c", 'A' + slot);
    }
    keel_image_info info;
    e = ku_verify_slot(a, slot, (uint32_t)len, false, &info, err);
    return ku_finish_install(a, e, &info, err);
}

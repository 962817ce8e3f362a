/* The update agent's core: boot decision, download bookkeeping, install, confirm, revert.
 *
 * Invariants, which the power-cut sweep checks at every storage operation:
 * - The confirmed slot (record.active) is never written while it is confirmed. Downloads go to
 *   the other slot, so whatever happens to a download, the confirmed image stays bootable.
 * - A chunk's bit is set in the record only after the chunk's bytes are synced; a record is
 *   written to the copy not holding the current one. So a cut loses at most the chunk landing.
 * - Every change of state is one record write, made durable before anything depends on it: a
 *   trial boot is counted before the trial image runs (a crash loop uses up its boots); the
 *   trial is armed only after the staged image verified; the security floor rises only on
 *   confirm, in the same record write that makes the new slot the confirmed one.
 * - In memory the agent changes a copy of the record and adopts it only once it is stored, so
 *   a failed write leaves the agent in the state the storage still holds.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "update_priv.h"

#define DEFAULT_TRIAL_BOOTS 3
#define DEFAULT_TRIAL_MS 60000u

keel_update_err ku_fail(keel_update_error *err, keel_update_err e, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return e;
}

const char *keel_update_err_name(keel_update_err e)
{
    static const char *const names[] = {
        "KEEL_UPDATE_OK",           "KEEL_UPDATE_ERR_ARG",      "KEEL_UPDATE_ERR_STORAGE",
        "KEEL_UPDATE_ERR_GEOMETRY", "KEEL_UPDATE_ERR_STATE",    "KEEL_UPDATE_ERR_MANIFEST",
        "KEEL_UPDATE_ERR_UNKNOWN_KEY", "KEEL_UPDATE_ERR_SIGNATURE", "KEEL_UPDATE_ERR_EXPIRED",
        "KEEL_UPDATE_ERR_TARGET",   "KEEL_UPDATE_ERR_ROLLBACK", "KEEL_UPDATE_ERR_TOO_BIG",
        "KEEL_UPDATE_ERR_CHUNK",    "KEEL_UPDATE_ERR_IMAGE",    "KEEL_UPDATE_ERR_NO_IMAGE",
        "KEEL_UPDATE_ERR_FETCH",    "KEEL_UPDATE_ERR_UP_TO_DATE", "KEEL_UPDATE_ERR_CANCELLED",
    };
    _Static_assert(sizeof names / sizeof names[0] == KEEL_UPDATE_ERR_COUNT, "a name per error");
    return (unsigned)e < KEEL_UPDATE_ERR_COUNT ? names[e] : "KEEL_UPDATE_ERR_UNKNOWN";
}

const char *keel_update_state_name(keel_update_state s)
{
    switch (s) {
    case KEEL_UPDATE_IDLE: return "idle";
    case KEEL_UPDATE_DOWNLOADING: return "downloading";
    case KEEL_UPDATE_TRIAL: return "trial";
    }
    return "unknown";
}

uint32_t keel_update_backoff_ms(unsigned attempt, uint32_t base_ms, uint32_t max_ms, uint32_t rnd)
{
    uint64_t cap = base_ms;
    for (unsigned i = 0; i < attempt && cap < max_ms; i++) {
        cap *= 2;
    }
    if (cap > max_ms) {
        cap = max_ms;
    }
    uint64_t half = cap / 2;
    return (uint32_t)(half + (cap - half == 0 ? 0 : rnd % (cap - half + 1)));
}

static keel_update_err geometry_ok(const keel_update_storage *s, keel_update_error *err)
{
    bool pow2 = s->erase_size && !(s->erase_size & (s->erase_size - 1)) && s->write_size &&
                !(s->write_size & (s->write_size - 1)) && s->write_size <= s->erase_size;
    if (!pow2 || KU_RECORD_SIZE % s->write_size != 0) {
        return ku_fail(err, KEEL_UPDATE_ERR_GEOMETRY,
                       "storage: erase size %u and write size %u must be powers of two, write "
                       "size at most 128 and at most the erase size",
                       s->erase_size, s->write_size);
    }
    for (int i = 0; i < KEEL_UPDATE_AREA_COUNT; i++) {
        if (s->size[i] % s->erase_size != 0) {
            return ku_fail(err, KEEL_UPDATE_ERR_GEOMETRY,
                           "storage: area %d is %u bytes, not a multiple of the erase size %u", i,
                           s->size[i], s->erase_size);
        }
    }
    if (s->size[KEEL_UPDATE_SLOT_A] != s->size[KEEL_UPDATE_SLOT_B] ||
        s->size[KEEL_UPDATE_AREA_STATE] < 2 * ku_record_stride(s)) {
        return ku_fail(err, KEEL_UPDATE_ERR_GEOMETRY,
                       "storage: slots must be the same size and the state area hold 2 records");
    }
    return KEEL_UPDATE_OK;
}

static uint32_t round_up(uint32_t v, uint32_t unit) { return (v + unit - 1) / unit * unit; }

/* Erases [off, off+len) rounded out to erase blocks, writes the bytes (the tail padded with
 * 0xff up to the write size), and syncs. The range must start on an erase block. */
int ku_store_bytes(const keel_update_storage *s, keel_update_area area, uint32_t off,
                       const uint8_t *data, uint32_t len)
{
    if (s->erase(s->ctx, area, off, round_up(len, s->erase_size)) != 0) {
        return -1;
    }
    uint32_t whole = len / s->write_size * s->write_size;
    if (whole && s->write(s->ctx, area, off, data, whole) != 0) {
        return -1;
    }
    if (whole < len) {
        uint8_t tail[128];
        memset(tail, 0xff, sizeof tail);
        memcpy(tail, data + whole, len - whole);
        if (s->write(s->ctx, area, off + whole, tail, s->write_size) != 0) {
            return -1;
        }
    }
    return s->sync(s->ctx, area);
}

keel_update_err keel_update_provision(const keel_update_storage *s, const uint8_t *image,
                                      size_t len, keel_update_error *err)
{
    if (!s || !image) {
        return ku_fail(err, KEEL_UPDATE_ERR_ARG, "no storage or no image");
    }
    keel_update_err e = geometry_ok(s, err);
    if (e != KEEL_UPDATE_OK) {
        return e;
    }
    if (len > s->size[KEEL_UPDATE_SLOT_A]) {
        return ku_fail(err, KEEL_UPDATE_ERR_TOO_BIG, "image of %zu bytes, slot of %u", len,
                       s->size[KEEL_UPDATE_SLOT_A]);
    }
    keel_image_info info;
    keel_image_error ie;
    if (keel_image_inspect(image, len, &info, &ie) != KEEL_IMAGE_OK) {
        return ku_fail(err, KEEL_UPDATE_ERR_IMAGE, "%s", ie.msg);
    }
    ku_record r = {.seq = 0, .state = KEEL_UPDATE_IDLE, .active = 0,
                   .floor = info.header.security_counter};
    if (ku_store_bytes(s, KEEL_UPDATE_SLOT_A, 0, image, (uint32_t)len) != 0 ||
        s->erase(s->ctx, KEEL_UPDATE_AREA_STATE, 0, s->size[KEEL_UPDATE_AREA_STATE]) != 0 ||
        s->sync(s->ctx, KEEL_UPDATE_AREA_STATE) != 0 || ku_record_store(s, &r) != 0) {
        return ku_fail(err, KEEL_UPDATE_ERR_STORAGE, "provisioning: storage failed");
    }
    return KEEL_UPDATE_OK;
}

/* Reads and checks the manifest the record names; on any mismatch the download is treated as
 * abandoned (the record still says DOWNLOADING until the next write; nothing depends on it). */
static bool load_manifest(keel_update_agent *a)
{
    const keel_update_storage *s = a->st;
    free(a->manifest);
    a->manifest = NULL;
    uint32_t len = a->rec.manifest_len;
    if (len == 0 || len > s->size[KEEL_UPDATE_AREA_MANIFEST]) {
        return false;
    }
    uint8_t *buf = malloc(len);
    uint8_t h[KEEL_IMAGE_HASH_SIZE];
    if (!buf || s->read(s->ctx, KEEL_UPDATE_AREA_MANIFEST, 0, buf, len) != 0) {
        free(buf);
        return false;
    }
    crypto_hash_sha256(h, buf, len);
    if (memcmp(h, a->rec.manifest_hash, sizeof h) != 0 ||
        keel_release_verify(buf, len, &a->cfg.keys, &a->man, NULL) != KEEL_IMAGE_OK ||
        a->man.chunk_count != a->rec.chunk_count) {
        free(buf);
        return false;
    }
    a->manifest = buf;
    a->manifest_len = len;
    return true;
}

keel_update_err keel_update_open(const keel_update_config *cfg, keel_update_agent **out,
                                 keel_update_error *err)
{
    if (!cfg || !cfg->storage || !out || !cfg->keys.keys || cfg->keys.count == 0) {
        return ku_fail(err, KEEL_UPDATE_ERR_ARG, "need storage and at least one trusted key");
    }
    keel_update_err e = geometry_ok(cfg->storage, err);
    if (e != KEEL_UPDATE_OK) {
        return e;
    }
    if (sodium_init() < 0) {
        return ku_fail(err, KEEL_UPDATE_ERR_ARG, "libsodium failed to initialise");
    }
    keel_update_agent *a = calloc(1, sizeof *a);
    if (!a) {
        return ku_fail(err, KEEL_UPDATE_ERR_ARG, "out of memory");
    }
    a->cfg = *cfg;
    if (!a->cfg.max_trial_boots) {
        a->cfg.max_trial_boots = DEFAULT_TRIAL_BOOTS;
    }
    if (!a->cfg.trial_timeout_ms) {
        a->cfg.trial_timeout_ms = DEFAULT_TRIAL_MS;
    }
    a->st = cfg->storage;
    a->running_slot = -1;
    if (!ku_record_load(a->st, &a->rec)) {
        free(a);
        return ku_fail(err, KEEL_UPDATE_ERR_NO_IMAGE,
                       "no valid state record: the device was never provisioned");
    }
    if (a->rec.state == KEEL_UPDATE_DOWNLOADING && a->rec.manifest_len != 0 && !load_manifest(a)) {
        a->rec.state = KEEL_UPDATE_IDLE;
    }
    *out = a;
    return KEEL_UPDATE_OK;
}

void keel_update_close(keel_update_agent *a)
{
    if (a) {
        free(a->manifest);
        free(a->push_buf);
        free(a);
    }
}

/* Stores `next` and adopts it; on failure the agent keeps the record the storage holds. */
keel_update_err ku_commit(keel_update_agent *a, ku_record *next, keel_update_error *err)
{
    next->seq = a->rec.seq;
    if (ku_record_store(a->st, next) != 0) {
        return ku_fail(err, KEEL_UPDATE_ERR_STORAGE, "storage failed writing the state record");
    }
    a->rec = *next;
    return KEEL_UPDATE_OK;
}

struct slot_reader {
    const keel_update_storage *s;
    keel_update_area area;
};

static int slot_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
    const struct slot_reader *r = ctx;
    return r->s->read(r->s->ctx, r->area, off, buf, len);
}

/* Verifies the image in a slot: signature, component, counter at or above the floor. */
keel_update_err ku_verify_slot(keel_update_agent *a, int slot, uint32_t max_size,
                               bool bytes_authenticated, keel_image_info *info,
                               keel_update_error *err)
{
    struct slot_reader r = {a->st, slot ? KEEL_UPDATE_SLOT_B : KEEL_UPDATE_SLOT_A};
    keel_image_error ie;
    keel_image_err e =
        bytes_authenticated
            ? keel_image_verify_signature_reader(slot_read, &r, max_size, &a->cfg.keys, info, &ie)
            : keel_image_verify_reader(slot_read, &r, max_size, &a->cfg.keys, info, &ie);
    if (e != KEEL_IMAGE_OK) {
        return ku_fail(err,
                       e == KEEL_IMAGE_ERR_UNKNOWN_KEY ? KEEL_UPDATE_ERR_UNKNOWN_KEY
                       : e == KEEL_IMAGE_ERR_SIGNATURE ? KEEL_UPDATE_ERR_SIGNATURE
                       : e == KEEL_IMAGE_ERR_IO        ? KEEL_UPDATE_ERR_STORAGE
                                                       : KEEL_UPDATE_ERR_IMAGE,
                       "slot %c: %s", 'A' + slot, ie.msg);
    }
    if (memcmp(info->header.component, a->cfg.component, KEEL_IMAGE_UUID_SIZE) != 0) {
        return ku_fail(err, KEEL_UPDATE_ERR_TARGET, "slot %c: image for another component",
                       'A' + slot);
    }
    if (info->header.security_counter < a->rec.floor) {
        return ku_fail(err, KEEL_UPDATE_ERR_ROLLBACK,
                       "slot %c: security counter %u below the floor %u", 'A' + slot,
                       info->header.security_counter, a->rec.floor);
    }
    return KEEL_UPDATE_OK;
}

keel_update_err keel_update_boot(keel_update_agent *a, uint64_t now_ms, keel_update_boot_info *out,
                                 keel_update_error *err)
{
    if (!a || !out) {
        return ku_fail(err, KEEL_UPDATE_ERR_ARG, "no agent");
    }
    memset(out, 0, sizeof *out);
    uint32_t slot_size = a->st->size[KEEL_UPDATE_SLOT_A];
    keel_update_err e;
    if (a->rec.state == KEEL_UPDATE_TRIAL) {
        int trial = 1 - a->rec.active;
        ku_record next = a->rec;
        if (a->rec.trial_boots < a->cfg.max_trial_boots &&
            ku_verify_slot(a, trial, slot_size, false, &out->image, NULL) == KEEL_UPDATE_OK) {
            next.trial_boots++;
            if ((e = ku_commit(a, &next, err)) != KEEL_UPDATE_OK) {
                return e;
            }
            out->slot = trial;
            out->trial = true;
        } else {
            next.state = KEEL_UPDATE_IDLE;
            next.trial_boots = 0;
            if ((e = ku_commit(a, &next, err)) != KEEL_UPDATE_OK) {
                return e;
            }
            out->reverted = true;
        }
    }
    if (!out->trial) {
        out->slot = a->rec.active;
        keel_update_error e1, e2;
        e = ku_verify_slot(a, out->slot, slot_size, false, &out->image, &e1);
        if (e == KEEL_UPDATE_ERR_STORAGE) {
            return ku_fail(err, e, "storage failed reading slot %c", 'A' + out->slot);
        }
        if (e != KEEL_UPDATE_OK) {
            /* The confirmed image should never fail; if it does (flash decay, tampering), the
             * other slot may still hold an acceptable image: adopt it rather than brick. A slot
             * being downloaded into is never a candidate. */
            int other = 1 - out->slot;
            if (a->rec.state == KEEL_UPDATE_DOWNLOADING ||
                ku_verify_slot(a, other, slot_size, false, &out->image, &e2) != KEEL_UPDATE_OK) {
                return ku_fail(err, KEEL_UPDATE_ERR_NO_IMAGE, "no bootable image: %s", e1.msg);
            }
            ku_record next = a->rec;
            next.active = (uint8_t)other;
            next.state = KEEL_UPDATE_IDLE;
            if ((e = ku_commit(a, &next, err)) != KEEL_UPDATE_OK) {
                return e;
            }
            out->slot = other;
        }
    }
    a->booted = true;
    a->running_slot = out->slot;
    a->running_trial = out->trial;
    a->running_version = out->image.header.version;
    a->running_image = out->image;
    a->reboot_pending = false;
    a->boot_ms = now_ms;
    if (out->trial) {
        a->trial_version = out->image.header.version;
    }
    return KEEL_UPDATE_OK;
}

static keel_update_err map_image_err(keel_image_err e)
{
    switch (e) {
    case KEEL_IMAGE_ERR_UNKNOWN_KEY: return KEEL_UPDATE_ERR_UNKNOWN_KEY;
    case KEEL_IMAGE_ERR_SIGNATURE: return KEEL_UPDATE_ERR_SIGNATURE;
    case KEEL_IMAGE_ERR_TOO_BIG: return KEEL_UPDATE_ERR_TOO_BIG;
    default: return KEEL_UPDATE_ERR_MANIFEST;
    }
}

keel_update_err keel_update_begin(keel_update_agent *a, const uint8_t *manifest, size_t len,
                                  uint64_t now_unix, keel_update_error *err)
{
    if (!a || !manifest) {
        return ku_fail(err, KEEL_UPDATE_ERR_ARG, "no agent or no manifest");
    }
    if (!a->booted || a->reboot_pending) {
        return ku_fail(err, KEEL_UPDATE_ERR_STATE, "boot (or restart) before starting an update");
    }
    if (a->rec.state == KEEL_UPDATE_TRIAL) {
        return ku_fail(err, KEEL_UPDATE_ERR_STATE, "a trial is under way: confirm or revert first");
    }
    const keel_update_storage *s = a->st;
    if (len > s->size[KEEL_UPDATE_AREA_MANIFEST]) {
        return ku_fail(err, KEEL_UPDATE_ERR_TOO_BIG, "manifest of %zu bytes, room for %u", len,
                       s->size[KEEL_UPDATE_AREA_MANIFEST]);
    }
    keel_release m;
    keel_image_error ie;
    keel_image_err ierr = keel_release_verify(manifest, len, &a->cfg.keys, &m, &ie);
    if (ierr != KEEL_IMAGE_OK) {
        return ku_fail(err, map_image_err(ierr), "%s", ie.msg);
    }
    if (now_unix > m.expires) {
        return ku_fail(err, KEEL_UPDATE_ERR_EXPIRED, "manifest expired %llu s ago",
                       (unsigned long long)(now_unix - m.expires));
    }
    if (memcmp(m.component, a->cfg.component, KEEL_IMAGE_UUID_SIZE) != 0) {
        char want[37], got[37];
        keel_image_uuid_format(a->cfg.component, want);
        keel_image_uuid_format(m.component, got);
        return ku_fail(err, KEEL_UPDATE_ERR_TARGET, "manifest for component %s, this is %s", got,
                       want);
    }
    if (strcmp(m.hardware, a->cfg.hardware) != 0) {
        return ku_fail(err, KEEL_UPDATE_ERR_TARGET, "manifest for hardware '%s', this is '%s'",
                       m.hardware, a->cfg.hardware);
    }
    if (m.security_counter < a->rec.floor) {
        return ku_fail(err, KEEL_UPDATE_ERR_ROLLBACK,
                       "manifest security counter %u is below this device's %u (rollback)",
                       m.security_counter, a->rec.floor);
    }
    if (keel_image_version_cmp(&m.version, &a->running_version) == 0) {
        return ku_fail(err, KEEL_UPDATE_ERR_UP_TO_DATE, "already running %u.%u.%u",
                       m.version.major, m.version.minor, m.version.patch);
    }
    if (m.image_size > s->size[KEEL_UPDATE_SLOT_A]) {
        return ku_fail(err, KEEL_UPDATE_ERR_TOO_BIG, "image of %u bytes, slot of %u", m.image_size,
                       s->size[KEEL_UPDATE_SLOT_A]);
    }
    if (m.chunk_size % s->erase_size != 0) {
        return ku_fail(err, KEEL_UPDATE_ERR_GEOMETRY,
                       "chunk size %u is not a multiple of the erase size %u", m.chunk_size,
                       s->erase_size);
    }
    uint8_t h[KEEL_IMAGE_HASH_SIZE];
    crypto_hash_sha256(h, manifest, len);
    if (a->rec.state == KEEL_UPDATE_DOWNLOADING && a->manifest &&
        memcmp(h, a->rec.manifest_hash, sizeof h) == 0) {
        return KEEL_UPDATE_OK; /* the same release: resume with the chunks already stored */
    }
    /* A new download. The record still names the old manifest by hash until the new record is
     * stored, so a cut while the manifest area is rewritten reads back as "abandoned". */
    free(a->manifest);
    a->manifest = NULL;
    if (ku_store_bytes(s, KEEL_UPDATE_AREA_MANIFEST, 0, manifest, (uint32_t)len) != 0) {
        return ku_fail(err, KEEL_UPDATE_ERR_STORAGE, "storage failed writing the manifest");
    }
    ku_record next = a->rec;
    next.state = KEEL_UPDATE_DOWNLOADING;
    next.push_len = 0;
    next.manifest_len = (uint32_t)len;
    memcpy(next.manifest_hash, h, sizeof h);
    next.chunk_count = m.chunk_count;
    memset(next.bitmap, 0, sizeof next.bitmap);
    keel_update_err e = ku_commit(a, &next, err);
    if (e != KEEL_UPDATE_OK) {
        return e;
    }
    a->manifest = malloc(len);
    if (!a->manifest) {
        a->rec.state = KEEL_UPDATE_IDLE;
        return ku_fail(err, KEEL_UPDATE_ERR_ARG, "out of memory");
    }
    memcpy(a->manifest, manifest, len);
    a->manifest_len = len;
    if (keel_release_parse(a->manifest, len, &a->man, NULL) != KEEL_IMAGE_OK) {
        return ku_fail(err, KEEL_UPDATE_ERR_MANIFEST, "manifest changed under the agent");
    }
    return KEEL_UPDATE_OK;
}

static bool chunk_done(const ku_record *r, uint32_t i) { return ku_bit(r, i); }

static uint32_t chunk_len(const keel_release *m, uint32_t i)
{
    uint32_t off = i * m->chunk_size;
    return m->image_size - off < m->chunk_size ? m->image_size - off : m->chunk_size;
}

bool keel_update_next_chunk(const keel_update_agent *a, keel_update_chunk_req *req)
{
    if (!a || !req || a->rec.state != KEEL_UPDATE_DOWNLOADING || !a->manifest) {
        return false;
    }
    for (uint32_t i = 0; i < a->man.chunk_count; i++) {
        if (!chunk_done(&a->rec, i)) {
            req->index = i;
            req->offset = i * a->man.chunk_size;
            req->length = chunk_len(&a->man, i);
            return true;
        }
    }
    return false;
}

const char *keel_update_image_name(const keel_update_agent *a)
{
    return a && a->manifest ? a->man.image_name : "";
}

keel_update_err keel_update_chunk(keel_update_agent *a, uint32_t index, const uint8_t *data,
                                  size_t len, keel_update_error *err)
{
    if (!a || (!data && len)) {
        return ku_fail(err, KEEL_UPDATE_ERR_ARG, "no agent or no data");
    }
    if (a->rec.state != KEEL_UPDATE_DOWNLOADING || !a->manifest) {
        return ku_fail(err, KEEL_UPDATE_ERR_STATE, "no download in progress");
    }
    const keel_release *m = &a->man;
    if (index >= m->chunk_count) {
        return ku_fail(err, KEEL_UPDATE_ERR_CHUNK, "chunk %u: the manifest has %u chunks", index,
                       m->chunk_count);
    }
    if (len != chunk_len(m, index)) {
        return ku_fail(err, len > chunk_len(m, index) ? KEEL_UPDATE_ERR_TOO_BIG : KEEL_UPDATE_ERR_CHUNK,
                       "chunk %u: %zu bytes, the manifest says %u", index, len, chunk_len(m, index));
    }
    uint8_t h[KEEL_IMAGE_HASH_SIZE];
    crypto_hash_sha256(h, data, len);
    if (memcmp(h, m->chunk_hashes + (size_t)index * KEEL_IMAGE_HASH_SIZE, sizeof h) != 0) {
        return ku_fail(err, KEEL_UPDATE_ERR_CHUNK,
                       "chunk %u: SHA-256 does not match the manifest (tampered or misplaced)",
                       index);
    }
    if (chunk_done(&a->rec, index)) {
        return KEEL_UPDATE_OK;
    }
    keel_update_area slot = a->rec.active ? KEEL_UPDATE_SLOT_A : KEEL_UPDATE_SLOT_B;
    if (ku_store_bytes(a->st, slot, index * m->chunk_size, data, (uint32_t)len) != 0) {
        return ku_fail(err, KEEL_UPDATE_ERR_STORAGE, "chunk %u: storage failed", index);
    }
    ku_record next = a->rec;
    next.bitmap[index / 8] |= (uint8_t)(1u << (index % 8));
    return ku_commit(a, &next, err);
}

keel_update_err keel_update_chunks(keel_update_agent *a, uint32_t first, uint32_t count,
                                   const uint8_t *data, size_t len, keel_update_error *err)
{
    if (!a || (!data && len) || count == 0) {
        return ku_fail(err, KEEL_UPDATE_ERR_ARG, "no agent, no data or no chunks");
    }
    if (a->rec.state != KEEL_UPDATE_DOWNLOADING || !a->manifest) {
        return ku_fail(err, KEEL_UPDATE_ERR_STATE, "no download in progress");
    }
    const keel_release *m = &a->man;
    if (first >= m->chunk_count || count > m->chunk_count - first) {
        return ku_fail(err, KEEL_UPDATE_ERR_CHUNK, "chunks %u+%u: the manifest has %u chunks",
                       first, count, m->chunk_count);
    }
    size_t want = 0;
    for (uint32_t i = first; i < first + count; i++) {
        want += chunk_len(m, i);
    }
    if (len != want) {
        return ku_fail(err, len > want ? KEEL_UPDATE_ERR_TOO_BIG : KEEL_UPDATE_ERR_CHUNK,
                       "chunks %u+%u: %zu bytes, the manifest says %zu", first, count, len, want);
    }
    /* every hash first: a bad chunk stores nothing of the run */
    size_t off = 0;
    for (uint32_t i = first; i < first + count; i++) {
        uint8_t h[KEEL_IMAGE_HASH_SIZE];
        crypto_hash_sha256(h, data + off, chunk_len(m, i));
        if (memcmp(h, m->chunk_hashes + (size_t)i * KEEL_IMAGE_HASH_SIZE, sizeof h) != 0) {
            return ku_fail(err, KEEL_UPDATE_ERR_CHUNK,
                           "chunk %u: SHA-256 does not match the manifest (tampered or misplaced)",
                           i);
        }
        off += chunk_len(m, i);
    }
    /* then each stretch of chunks not stored yet, written and synced as one (a stored chunk
     * is never written again: the record says its bytes are there) */
    keel_update_area slot = a->rec.active ? KEEL_UPDATE_SLOT_A : KEEL_UPDATE_SLOT_B;
    ku_record next = a->rec;
    uint32_t i = first;
    off = 0;
    while (i < first + count) {
        if (chunk_done(&a->rec, i)) {
            off += chunk_len(m, i++);
            continue;
        }
        uint32_t j = i;
        size_t run = 0;
        while (j < first + count && !chunk_done(&a->rec, j)) {
            run += chunk_len(m, j);
            next.bitmap[j / 8] |= (uint8_t)(1u << (j % 8));
            j++;
        }
        if (ku_store_bytes(a->st, slot, i * m->chunk_size, data + off, (uint32_t)run) != 0) {
            return ku_fail(err, KEEL_UPDATE_ERR_STORAGE, "chunks %u-%u: storage failed", i,
                           j - 1);
        }
        off += run;
        i = j;
    }
    if (memcmp(next.bitmap, a->rec.bitmap, sizeof next.bitmap) == 0) {
        return KEEL_UPDATE_OK; /* all of them were stored already */
    }
    return ku_commit(a, &next, err);
}

keel_update_err keel_update_install(keel_update_agent *a, keel_update_error *err)
{
    if (!a) {
        return ku_fail(err, KEEL_UPDATE_ERR_ARG, "no agent");
    }
    keel_update_chunk_req req;
    if (a->rec.state != KEEL_UPDATE_DOWNLOADING || !a->manifest) {
        return ku_fail(err, KEEL_UPDATE_ERR_STATE, "no download in progress");
    }
    if (keel_update_next_chunk(a, &req)) {
        return ku_fail(err, KEEL_UPDATE_ERR_STATE, "chunk %u of %u is still missing", req.index,
                       a->man.chunk_count);
    }
    /* Every byte was checked against the signed manifest as its chunk landed; what is left is
     * the image's own header and signature (read back from the slot: header and trailer only).
     * The bootloader hashes the slot in full before it runs it, so a slot that decayed since
     * is caught there and the trial reverts. */
    int slot = 1 - a->rec.active;
    keel_image_info info;
    keel_update_err e = ku_verify_slot(a, slot, a->man.image_size, true, &info, err);
    if (e == KEEL_UPDATE_OK && (info.image_size != a->man.image_size ||
                                info.header.security_counter != a->man.security_counter ||
                                keel_image_version_cmp(&info.header.version, &a->man.version))) {
        e = ku_fail(err, KEEL_UPDATE_ERR_IMAGE,
                    "staged image (version %u.%u.%u, counter %u) disagrees with its manifest",
                    info.header.version.major, info.header.version.minor,
                    info.header.version.patch, info.header.security_counter);
    }
    return ku_finish_install(a, e, &info, err);
}

/* The end of every install, pulled or pushed: `e` is the verdict on the staged image. A refused
 * image abandons the update (back to IDLE, the running slot untouched); an accepted one is put
 * on trial and a reboot into it is requested. A storage failure is returned as is: the record
 * on disk still says DOWNLOADING, and the next attempt verifies (and decides) again. */
keel_update_err ku_finish_install(keel_update_agent *a, keel_update_err e,
                                  const keel_image_info *info, keel_update_error *err)
{
    if (e == KEEL_UPDATE_ERR_STORAGE) {
        return e;
    }
    ku_record next = a->rec;
    if (e != KEEL_UPDATE_OK) {
        keel_update_error keep = *err;
        next.state = KEEL_UPDATE_IDLE;
        if (ku_commit(a, &next, NULL) != KEEL_UPDATE_OK) {
            /* Abandoning failed too: the record still says DOWNLOADING with every chunk
             * stored, and the next install attempt verifies (and refuses) again. */
        }
        *err = keep;
        return e;
    }
    next.state = KEEL_UPDATE_TRIAL;
    next.trial_boots = 0;
    if ((e = ku_commit(a, &next, err)) != KEEL_UPDATE_OK) {
        return e;
    }
    a->trial_version = info->header.version;
    a->reboot_pending = true;
    return KEEL_UPDATE_OK;
}

keel_update_err keel_update_confirm(keel_update_agent *a, keel_update_error *err)
{
    if (!a) {
        return ku_fail(err, KEEL_UPDATE_ERR_ARG, "no agent");
    }
    if (!a->running_trial || a->rec.state != KEEL_UPDATE_TRIAL || a->reboot_pending) {
        return ku_fail(err, KEEL_UPDATE_ERR_STATE, "not running an image on trial");
    }
    /* keel_update_boot verified this image before it ran: its counter is known. */
    const keel_image_info *info = &a->running_image;
    ku_record next = a->rec;
    next.state = KEEL_UPDATE_IDLE;
    next.active = (uint8_t)a->running_slot;
    next.trial_boots = 0;
    if (info->header.security_counter > next.floor) {
        next.floor = info->header.security_counter;
    }
    keel_update_err e = ku_commit(a, &next, err);
    if (e != KEEL_UPDATE_OK) {
        return e;
    }
    a->running_trial = false;
    return KEEL_UPDATE_OK;
}

keel_update_err keel_update_revert(keel_update_agent *a, keel_update_error *err)
{
    if (!a) {
        return ku_fail(err, KEEL_UPDATE_ERR_ARG, "no agent");
    }
    if (a->rec.state != KEEL_UPDATE_TRIAL) {
        return ku_fail(err, KEEL_UPDATE_ERR_STATE, "no trial to revert");
    }
    ku_record next = a->rec;
    next.state = KEEL_UPDATE_IDLE;
    next.trial_boots = 0;
    keel_update_err e = ku_commit(a, &next, err);
    if (e != KEEL_UPDATE_OK) {
        return e;
    }
    /* Running the trial image: restart into the confirmed one. Merely armed: nothing to do. */
    a->reboot_pending = a->running_trial;
    a->running_trial = false;
    return KEEL_UPDATE_OK;
}

keel_update_err keel_update_abandon(keel_update_agent *a, keel_update_error *err)
{
    if (!a) {
        return ku_fail(err, KEEL_UPDATE_ERR_ARG, "no agent");
    }
    if (a->rec.state != KEEL_UPDATE_DOWNLOADING) {
        return ku_fail(err, KEEL_UPDATE_ERR_STATE, "no download in progress");
    }
    ku_record next = a->rec;
    next.state = KEEL_UPDATE_IDLE;
    keel_update_err e = ku_commit(a, &next, err);
    if (e == KEEL_UPDATE_OK) {
        free(a->manifest);
        a->manifest = NULL;
    }
    return e;
}

keel_update_err keel_update_tick(keel_update_agent *a, uint64_t now_ms, bool *reboot,
                                 keel_update_error *err)
{
    if (!a || !reboot) {
        return ku_fail(err, KEEL_UPDATE_ERR_ARG, "no agent");
    }
    *reboot = a->reboot_pending;
    if (a->running_trial && now_ms - a->boot_ms >= a->cfg.trial_timeout_ms) {
        keel_update_err e = keel_update_revert(a, err);
        if (e != KEEL_UPDATE_OK) {
            return e;
        }
        *reboot = true;
    }
    return KEEL_UPDATE_OK;
}

void keel_update_get_status(const keel_update_agent *a, keel_update_status *out)
{
    memset(out, 0, sizeof *out);
    out->state = (keel_update_state)a->rec.state;
    out->running_slot = a->booted ? a->running_slot : -1;
    out->running_trial = a->running_trial;
    out->reboot_pending = a->reboot_pending;
    out->running_version = a->running_version;
    out->security_floor = a->rec.floor;
    out->trial_boots = a->rec.trial_boots;
    out->max_trial_boots = a->cfg.max_trial_boots;
    if (a->rec.state == KEEL_UPDATE_DOWNLOADING && a->manifest) {
        out->chunks_total = a->man.chunk_count;
        for (uint32_t i = 0; i < a->man.chunk_count; i++) {
            out->chunks_done += chunk_done(&a->rec, i);
        }
        out->target_version = a->man.version;
    } else if (a->rec.state == KEEL_UPDATE_DOWNLOADING && a->rec.manifest_len == 0) {
        out->chunks_total = a->rec.chunk_count;
        for (uint32_t i = 0; i < a->rec.chunk_count; i++) {
            out->chunks_done += chunk_done(&a->rec, i);
        }
    } else if (a->rec.state == KEEL_UPDATE_TRIAL) {
        out->target_version = a->trial_version;
    }
}

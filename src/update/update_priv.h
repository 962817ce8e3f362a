/* The update agent's private parts: the durable state record and the agent structure. */
#ifndef KEEL_UPDATE_PRIV_H
#define KEEL_UPDATE_PRIV_H

#include <stdarg.h>

#include "keel/update.h"

#define KU_RECORD_MAGIC 0x4450554bu /* "KUPD" */
#define KU_RECORD_SIZE 640u
#define KU_RECORD_HASHED 608u       /* bytes covered by the record's SHA-256 */
#define KU_BITMAP_BYTES (KEEL_RELEASE_MAX_CHUNKS / 8u)

/* The durable state, encoded by ku_record_encode (docs/updates.md has the bytes). */
typedef struct ku_record {
    uint32_t seq;
    uint8_t state;       /* keel_update_state */
    uint8_t active;      /* the confirmed slot */
    uint8_t trial_boots; /* boots spent on the trial so far */
    uint32_t floor;      /* lowest security counter ever accepted again */
    uint32_t manifest_len;
    uint8_t manifest_hash[KEEL_IMAGE_HASH_SIZE];
    uint32_t chunk_count;
    uint8_t bitmap[KU_BITMAP_BYTES];
    uint32_t push_len;   /* push mode (manifest_len 0): image length; bitmap counts blocks */
} ku_record;

void ku_record_encode(const ku_record *r, uint8_t out[KU_RECORD_SIZE]);
/* false if the bytes are not a valid record (erased, torn, corrupt). */
bool ku_record_decode(const uint8_t in[KU_RECORD_SIZE], ku_record *r);
/* Offset of record copy 0 or 1 in the state area; area bytes needed for both. */
uint32_t ku_record_stride(const keel_update_storage *s);
/* Reads both copies; the valid one with the higher sequence wins. false if neither is valid. */
bool ku_record_load(const keel_update_storage *s, ku_record *r);
/* Writes r (with r->seq + 1) into the copy not holding the current record: erase, write,
 * sync. On success r->seq is the new sequence number. */
int ku_record_store(const keel_update_storage *s, ku_record *r);

struct keel_update_agent {
    keel_update_config cfg;
    const keel_update_storage *st;
    ku_record rec;
    uint8_t *manifest;        /* bytes of the download in progress (or NULL) */
    size_t manifest_len;
    keel_release man;        /* parsed, points into `manifest` */
    bool booted;
    int running_slot;
    bool running_trial;
    bool reboot_pending;
    keel_image_version running_version;
    keel_image_info running_image; /* as keel_update_boot verified it */
    uint64_t boot_ms;
    keel_image_version trial_version;
    uint8_t *push_buf;        /* push mode: the erase block being filled */
    uint32_t push_have;       /* bytes in push_buf */
};

/* Bit i of the record's bitmap. */
static inline bool ku_bit(const ku_record *r, uint32_t i) { return r->bitmap[i / 8] & (1u << (i % 8)); }

/* Erases [off, off+len) rounded out to erase blocks (off on a block), writes the bytes (the
 * tail padded with 0xff to the write size) and syncs the area. 0 or -1. */
int ku_store_bytes(const keel_update_storage *s, keel_update_area area, uint32_t off,
                   const uint8_t *data, uint32_t len);
/* Stores `next` as the new record and adopts it; on failure the agent keeps the old one. */
keel_update_err ku_commit(keel_update_agent *a, ku_record *next, keel_update_error *err);
/* Ends an install (pulled or pushed) with the verdict `e` on the staged image. */
keel_update_err ku_finish_install(keel_update_agent *a, keel_update_err e,
                                  const keel_image_info *info, keel_update_error *err);
/* Verifies a slot's image: signature, component, counter at or above the floor; the full
 * SHA-256 pass unless `bytes_authenticated` (every byte was checked against a signed
 * manifest as it landed). */
keel_update_err ku_verify_slot(keel_update_agent *a, int slot, uint32_t max_size,
                               bool bytes_authenticated, keel_image_info *info,
                               keel_update_error *err);

keel_update_err ku_fail(keel_update_error *err, keel_update_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

/* The signed image codec: header, payload, TLV trailer (see docs/updates.md for the bytes).
 *
 * Layout choices, after MCUboot: the signature covers the SHA-256 of header and payload, not the
 * bytes themselves, so a verifier streams the image once through SHA-256 and then checks 64
 * bytes of signature; the trailer is a TLV list so a later format can add entries, but this
 * version accepts exactly the three entries it writes, each once, and rejects anything else
 * (an unknown TLV could otherwise smuggle bytes past the signature). All sizes are checked
 * against the bytes actually available before they are used.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "image_priv.h"

#define HDR_FORMAT 1u
#define TRAILER_MAX 1024u

keel_image_err ki_fail(keel_image_error *err, keel_image_err e, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return e;
}

bool ki_crypto_ready(void)
{
    static int state; /* 0 unknown, 1 ok, -1 failed */
    if (state == 0) {
        state = sodium_init() >= 0 ? 1 : -1;
    }
    return state == 1;
}

const keel_image_pubkey *ki_find_key(const keel_image_keys *keys, const uint8_t *id)
{
    if (!keys) {
        return NULL;
    }
    for (size_t i = 0; i < keys->count; i++) {
        if (memcmp(keys->keys[i].id, id, KEEL_IMAGE_KEY_ID_SIZE) == 0) {
            return &keys->keys[i];
        }
    }
    return NULL;
}

const char *keel_image_err_name(keel_image_err e)
{
    static const char *const names[] = {
        "KEEL_IMAGE_OK",          "KEEL_IMAGE_ERR_ARG",         "KEEL_IMAGE_ERR_IO",
        "KEEL_IMAGE_ERR_TRUNCATED", "KEEL_IMAGE_ERR_FORMAT",    "KEEL_IMAGE_ERR_TOO_BIG",
        "KEEL_IMAGE_ERR_HASH",    "KEEL_IMAGE_ERR_UNKNOWN_KEY", "KEEL_IMAGE_ERR_SIGNATURE",
        "KEEL_IMAGE_ERR_NO_SPACE", "KEEL_IMAGE_ERR_CRYPTO",
    };
    _Static_assert(sizeof names / sizeof names[0] == KEEL_IMAGE_ERR_COUNT, "a name per error");
    return (unsigned)e < KEEL_IMAGE_ERR_COUNT ? names[e] : "KEEL_IMAGE_ERR_UNKNOWN";
}

uint32_t keel_image_size(uint32_t payload_size)
{
    return KEEL_IMAGE_HEADER_SIZE + payload_size + KEEL_IMAGE_TRAILER_SIZE;
}

static void encode_header(const keel_image_header *h, uint8_t out[KEEL_IMAGE_HEADER_SIZE])
{
    memset(out, 0, KEEL_IMAGE_HEADER_SIZE);
    ki_put32(out + 0, KEEL_IMAGE_MAGIC);
    ki_put16(out + 4, KEEL_IMAGE_HEADER_SIZE);
    ki_put16(out + 6, HDR_FORMAT);
    memcpy(out + 8, h->component, KEEL_IMAGE_UUID_SIZE);
    ki_put16(out + 24, h->version.major);
    ki_put16(out + 26, h->version.minor);
    ki_put32(out + 28, h->version.patch);
    ki_put32(out + 32, h->security_counter);
    ki_put32(out + 36, h->payload_size);
    ki_put32(out + 40, h->flags);
}

keel_image_err keel_image_parse_header(const uint8_t *buf, size_t len, keel_image_header *out,
                                       keel_image_error *err)
{
    if (!buf || !out) {
        return ki_fail(err, KEEL_IMAGE_ERR_ARG, "no buffer");
    }
    if (len < KEEL_IMAGE_HEADER_SIZE) {
        return ki_fail(err, KEEL_IMAGE_ERR_TRUNCATED, "image: %zu bytes, a header needs %u", len,
                       KEEL_IMAGE_HEADER_SIZE);
    }
    if (ki_get32(buf) != KEEL_IMAGE_MAGIC) {
        return ki_fail(err, KEEL_IMAGE_ERR_FORMAT, "image: bad magic 0x%08x at offset 0 (want 0x%08x)",
                       ki_get32(buf), KEEL_IMAGE_MAGIC);
    }
    if (ki_get16(buf + 4) != KEEL_IMAGE_HEADER_SIZE) {
        return ki_fail(err, KEEL_IMAGE_ERR_FORMAT, "image: header size %u at offset 4 (want %u)",
                       ki_get16(buf + 4), KEEL_IMAGE_HEADER_SIZE);
    }
    if (ki_get16(buf + 6) != HDR_FORMAT) {
        return ki_fail(err, KEEL_IMAGE_ERR_FORMAT, "image: format %u at offset 6 (want %u)",
                       ki_get16(buf + 6), HDR_FORMAT);
    }
    for (unsigned i = 44; i < KEEL_IMAGE_HEADER_SIZE; i++) {
        if (buf[i] != 0) {
            return ki_fail(err, KEEL_IMAGE_ERR_FORMAT, "image: reserved byte %u is not zero", i);
        }
    }
    memcpy(out->component, buf + 8, KEEL_IMAGE_UUID_SIZE);
    out->version.major = ki_get16(buf + 24);
    out->version.minor = ki_get16(buf + 26);
    out->version.patch = ki_get32(buf + 28);
    out->security_counter = ki_get32(buf + 32);
    out->payload_size = ki_get32(buf + 36);
    out->flags = ki_get32(buf + 40);
    if (out->payload_size > UINT32_MAX - KEEL_IMAGE_HEADER_SIZE - TRAILER_MAX) {
        return ki_fail(err, KEEL_IMAGE_ERR_FORMAT, "image: payload size %u at offset 36 overflows",
                       out->payload_size);
    }
    return KEEL_IMAGE_OK;
}

keel_image_err keel_image_sign(const keel_image_header *hdr, const uint8_t *payload,
                               const keel_image_seckey *key, uint8_t *out, size_t cap,
                               size_t *out_len)
{
    if (!hdr || (!payload && hdr->payload_size) || !key || !out || !out_len) {
        return KEEL_IMAGE_ERR_ARG;
    }
    if (hdr->payload_size > UINT32_MAX - KEEL_IMAGE_HEADER_SIZE - TRAILER_MAX) {
        return KEEL_IMAGE_ERR_TOO_BIG;
    }
    if (!ki_crypto_ready()) {
        return KEEL_IMAGE_ERR_CRYPTO;
    }
    size_t total = keel_image_size(hdr->payload_size);
    if (cap < total) {
        return KEEL_IMAGE_ERR_NO_SPACE;
    }
    encode_header(hdr, out);
    memmove(out + KEEL_IMAGE_HEADER_SIZE, payload, hdr->payload_size);
    uint8_t digest[KEEL_IMAGE_HASH_SIZE];
    crypto_hash_sha256(digest, out, KEEL_IMAGE_HEADER_SIZE + (size_t)hdr->payload_size);

    uint8_t *t = out + KEEL_IMAGE_HEADER_SIZE + hdr->payload_size;
    ki_put16(t, KEEL_IMAGE_TLV_MAGIC);
    ki_put16(t + 2, KEEL_IMAGE_TRAILER_SIZE);
    t += 4;
    ki_put16(t, KEEL_IMAGE_TLV_KEY_ID);
    ki_put16(t + 2, KEEL_IMAGE_KEY_ID_SIZE);
    memcpy(t + 4, key->id, KEEL_IMAGE_KEY_ID_SIZE);
    t += 4 + KEEL_IMAGE_KEY_ID_SIZE;
    ki_put16(t, KEEL_IMAGE_TLV_SHA256);
    ki_put16(t + 2, KEEL_IMAGE_HASH_SIZE);
    memcpy(t + 4, digest, KEEL_IMAGE_HASH_SIZE);
    t += 4 + KEEL_IMAGE_HASH_SIZE;
    ki_put16(t, KEEL_IMAGE_TLV_ED25519);
    ki_put16(t + 2, KEEL_IMAGE_SIG_SIZE);
    crypto_sign_detached(t + 4, NULL, digest, sizeof digest, key->sk);
    *out_len = total;
    return KEEL_IMAGE_OK;
}

/* The trailer's three entries, found by parse_trailer. */
struct trailer {
    const uint8_t *key_id, *hash, *sig;
};

static keel_image_err parse_trailer(const uint8_t *t, uint32_t len, struct trailer *tr,
                                    keel_image_error *err)
{
    memset(tr, 0, sizeof *tr);
    uint32_t off = 4;
    while (off < len) {
        if (len - off < 4) {
            return ki_fail(err, KEEL_IMAGE_ERR_FORMAT, "image trailer: TLV header cut at +%u", off);
        }
        uint16_t type = ki_get16(t + off), n = ki_get16(t + off + 2);
        if (n > len - off - 4) {
            return ki_fail(err, KEEL_IMAGE_ERR_FORMAT,
                           "image trailer: TLV 0x%02x at +%u claims %u bytes, %u left", type, off, n,
                           len - off - 4);
        }
        const uint8_t *v = t + off + 4;
        const uint8_t **slot = NULL;
        uint16_t want = 0;
        switch (type) {
        case KEEL_IMAGE_TLV_KEY_ID: slot = &tr->key_id; want = KEEL_IMAGE_KEY_ID_SIZE; break;
        case KEEL_IMAGE_TLV_SHA256: slot = &tr->hash; want = KEEL_IMAGE_HASH_SIZE; break;
        case KEEL_IMAGE_TLV_ED25519: slot = &tr->sig; want = KEEL_IMAGE_SIG_SIZE; break;
        default:
            return ki_fail(err, KEEL_IMAGE_ERR_FORMAT, "image trailer: unknown TLV type 0x%02x at +%u",
                           type, off);
        }
        if (n != want) {
            return ki_fail(err, KEEL_IMAGE_ERR_FORMAT,
                           "image trailer: TLV 0x%02x has %u bytes (want %u)", type, n, want);
        }
        if (*slot) {
            return ki_fail(err, KEEL_IMAGE_ERR_FORMAT, "image trailer: TLV 0x%02x appears twice", type);
        }
        *slot = v;
        off += 4u + n;
    }
    if (!tr->key_id || !tr->hash || !tr->sig) {
        return ki_fail(err, KEEL_IMAGE_ERR_FORMAT, "image trailer: missing %s TLV",
                       !tr->key_id ? "key id" : !tr->hash ? "SHA-256" : "signature");
    }
    return KEEL_IMAGE_OK;
}

/* Shared by verify and inspect: streams the image through `read`, fills info; checks the
 * signature only when keys is non-NULL. */
static keel_image_err check_image(keel_image_read_fn read, void *ctx, uint32_t max_size,
                                  bool skip_hash, const keel_image_keys *keys, bool exact,
                                  keel_image_info *info, keel_image_error *err)
{
    if (!ki_crypto_ready()) {
        return ki_fail(err, KEEL_IMAGE_ERR_CRYPTO, "libsodium failed to initialise");
    }
    keel_image_info local;
    if (!info) {
        info = &local;
    }
    memset(info, 0, sizeof *info);
    uint8_t block[4096];
    if (max_size < KEEL_IMAGE_HEADER_SIZE) {
        return ki_fail(err, KEEL_IMAGE_ERR_TRUNCATED, "image: %u bytes, a header needs %u", max_size,
                       KEEL_IMAGE_HEADER_SIZE);
    }
    if (read(ctx, 0, block, KEEL_IMAGE_HEADER_SIZE) != 0) {
        return ki_fail(err, KEEL_IMAGE_ERR_IO, "image: cannot read the header");
    }
    keel_image_err e = keel_image_parse_header(block, KEEL_IMAGE_HEADER_SIZE, &info->header, err);
    if (e != KEEL_IMAGE_OK) {
        return e;
    }
    uint32_t psize = info->header.payload_size;
    if (psize > max_size - KEEL_IMAGE_HEADER_SIZE || max_size - KEEL_IMAGE_HEADER_SIZE - psize < 4) {
        return ki_fail(err, exact ? KEEL_IMAGE_ERR_TRUNCATED : KEEL_IMAGE_ERR_TOO_BIG,
                       "image: header says %u payload bytes, only room for %u in all", psize,
                       max_size);
    }
    uint32_t end = KEEL_IMAGE_HEADER_SIZE + psize;
    if (!skip_hash) {
        crypto_hash_sha256_state st;
        crypto_hash_sha256_init(&st);
        crypto_hash_sha256_update(&st, block, KEEL_IMAGE_HEADER_SIZE);
        uint32_t off = KEEL_IMAGE_HEADER_SIZE;
        while (off < end) {
            uint32_t n = end - off < sizeof block ? end - off : (uint32_t)sizeof block;
            if (read(ctx, off, block, n) != 0) {
                return ki_fail(err, KEEL_IMAGE_ERR_IO, "image: cannot read payload at %u", off);
            }
            crypto_hash_sha256_update(&st, block, n);
            off += n;
        }
        crypto_hash_sha256_final(&st, info->hash);
    }

    uint8_t trailer[TRAILER_MAX];
    if (read(ctx, end, trailer, 4) != 0) {
        return ki_fail(err, KEEL_IMAGE_ERR_IO, "image: cannot read the trailer at %u", end);
    }
    if (ki_get16(trailer) != KEEL_IMAGE_TLV_MAGIC) {
        return ki_fail(err, KEEL_IMAGE_ERR_FORMAT, "image: bad trailer magic 0x%04x at offset %u",
                       ki_get16(trailer), end);
    }
    uint32_t tlen = ki_get16(trailer + 2);
    if (tlen < 4 || tlen > TRAILER_MAX) {
        return ki_fail(err, KEEL_IMAGE_ERR_FORMAT, "image: trailer size %u at offset %u", tlen, end + 2);
    }
    if (tlen > max_size - end) {
        return ki_fail(err, KEEL_IMAGE_ERR_TRUNCATED, "image: trailer of %u bytes cut at %u", tlen,
                       max_size);
    }
    if (exact && max_size - end != tlen) {
        return ki_fail(err, KEEL_IMAGE_ERR_FORMAT, "image: %u bytes after the trailer",
                       max_size - end - tlen);
    }
    if (read(ctx, end + 4, trailer + 4, tlen - 4) != 0) {
        return ki_fail(err, KEEL_IMAGE_ERR_IO, "image: cannot read the trailer at %u", end);
    }
    struct trailer tr;
    e = parse_trailer(trailer, tlen, &tr, err);
    if (e != KEEL_IMAGE_OK) {
        return e;
    }
    info->image_size = end + tlen;
    memcpy(info->key_id, tr.key_id, KEEL_IMAGE_KEY_ID_SIZE);
    if (skip_hash) {
        memcpy(info->hash, tr.hash, KEEL_IMAGE_HASH_SIZE);
    }
    if (sodium_memcmp(tr.hash, info->hash, KEEL_IMAGE_HASH_SIZE) != 0) {
        return ki_fail(err, KEEL_IMAGE_ERR_HASH, "image: SHA-256 of header and payload does not match");
    }
    if (!keys) {
        return KEEL_IMAGE_OK;
    }
    const keel_image_pubkey *k = ki_find_key(keys, tr.key_id);
    if (!k) {
        char hex[2 * KEEL_IMAGE_KEY_ID_SIZE + 1];
        sodium_bin2hex(hex, sizeof hex, tr.key_id, KEEL_IMAGE_KEY_ID_SIZE);
        return ki_fail(err, KEEL_IMAGE_ERR_UNKNOWN_KEY, "image: signed by key %s, not trusted", hex);
    }
    if (crypto_sign_verify_detached(tr.sig, info->hash, KEEL_IMAGE_HASH_SIZE, k->pk) != 0) {
        return ki_fail(err, KEEL_IMAGE_ERR_SIGNATURE, "image: Ed25519 signature does not verify");
    }
    return KEEL_IMAGE_OK;
}

keel_image_err keel_image_verify_reader(keel_image_read_fn read, void *ctx, uint32_t max_size,
                                        const keel_image_keys *keys, keel_image_info *info,
                                        keel_image_error *err)
{
    if (!read || !keys) {
        return ki_fail(err, KEEL_IMAGE_ERR_ARG, "no reader or no keys");
    }
    return check_image(read, ctx, max_size, false, keys, false, info, err);
}

keel_image_err keel_image_verify_signature_reader(keel_image_read_fn read, void *ctx,
                                                  uint32_t max_size, const keel_image_keys *keys,
                                                  keel_image_info *info, keel_image_error *err)
{
    if (!read || !keys) {
        return ki_fail(err, KEEL_IMAGE_ERR_ARG, "no reader or no keys");
    }
    return check_image(read, ctx, max_size, true, keys, false, info, err);
}

struct membuf {
    const uint8_t *p;
    size_t len;
};

static int mem_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
    const struct membuf *m = ctx;
    if (off > m->len || len > m->len - off) {
        return -1;
    }
    memcpy(buf, m->p + off, len);
    return 0;
}

keel_image_err keel_image_verify(const uint8_t *buf, size_t len, const keel_image_keys *keys,
                                 keel_image_info *info, keel_image_error *err)
{
    if (!buf || !keys) {
        return ki_fail(err, KEEL_IMAGE_ERR_ARG, "no image or no keys");
    }
    if (len > UINT32_MAX) {
        return ki_fail(err, KEEL_IMAGE_ERR_TOO_BIG, "image: %zu bytes", len);
    }
    struct membuf m = {buf, len};
    return check_image(mem_read, &m, (uint32_t)len, false, keys, true, info, err);
}

keel_image_err keel_image_inspect(const uint8_t *buf, size_t len, keel_image_info *info,
                                  keel_image_error *err)
{
    if (!buf || len > UINT32_MAX) {
        return ki_fail(err, KEEL_IMAGE_ERR_ARG, "no image");
    }
    struct membuf m = {buf, len};
    return check_image(mem_read, &m, (uint32_t)len, false, NULL, true, info, err);
}

bool keel_image_version_parse(const char *s, keel_image_version *out)
{
    unsigned long v[3];
    const char *p = s;
    for (int i = 0; i < 3; i++) {
        if (*p < '0' || *p > '9') {
            return false;
        }
        char *end;
        v[i] = strtoul(p, &end, 10);
        if (end - p > 10 || v[i] > (i < 2 ? 0xffffUL : 0xffffffffUL)) {
            return false;
        }
        p = end;
        if (i < 2) {
            if (*p != '.') {
                return false;
            }
            p++;
        }
    }
    if (*p != '\0') {
        return false;
    }
    out->major = (uint16_t)v[0];
    out->minor = (uint16_t)v[1];
    out->patch = (uint32_t)v[2];
    return true;
}

int keel_image_version_cmp(const keel_image_version *a, const keel_image_version *b)
{
    uint64_t x = ((uint64_t)a->major << 48) | ((uint64_t)a->minor << 32) | a->patch;
    uint64_t y = ((uint64_t)b->major << 48) | ((uint64_t)b->minor << 32) | b->patch;
    return x < y ? -1 : x > y ? 1 : 0;
}

bool keel_image_uuid_parse(const char *s, uint8_t out[KEEL_IMAGE_UUID_SIZE])
{
    if (strlen(s) != 36) {
        return false;
    }
    int n = 0;
    for (int i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') {
                return false;
            }
            i++;
            continue;
        }
        unsigned char b;
        if (sodium_hex2bin(&b, 1, s + i, 2, NULL, NULL, NULL) != 0) {
            return false;
        }
        out[n++] = b;
        i += 2;
    }
    return n == KEEL_IMAGE_UUID_SIZE;
}

void keel_image_uuid_format(const uint8_t uuid[KEEL_IMAGE_UUID_SIZE], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    int o = 0;
    for (int i = 0; i < KEEL_IMAGE_UUID_SIZE; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out[o++] = '-';
        }
        out[o++] = hex[uuid[i] >> 4];
        out[o++] = hex[uuid[i] & 15];
    }
    out[o] = '\0';
}

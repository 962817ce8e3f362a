/* The release manifest codec: a signed description of one image as a list of chunks.
 *
 * The device fetches the manifest first, checks its signature, expiry and targets, and then
 * fetches the image chunk by chunk with HTTP range requests, checking each chunk's SHA-256 as it
 * lands. So a chunk is trusted only through the manifest's signature, and the manifest must say
 * exactly how many chunks of which size make up exactly how many bytes: a parser that accepted
 * a count that disagrees with the size would let a server stream endless data.
 */
#include <sodium.h>
#include <string.h>

#include "image_priv.h"

#define MAN_FORMAT 1u

uint32_t keel_release_size(uint32_t chunk_count)
{
    return KEEL_RELEASE_HEADER_SIZE + chunk_count * KEEL_IMAGE_HASH_SIZE + KEEL_RELEASE_SIG_SIZE;
}

static bool name_ok(const char *s)
{
    if (s[0] == '\0' || s[0] == '.') {
        return false;
    }
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* A NUL-padded text field: printable ASCII, then only NULs. */
static bool text_field(const uint8_t *p, size_t n, char *out)
{
    size_t len = 0;
    while (len < n && p[len] != 0) {
        if (p[len] < 0x20 || p[len] > 0x7e) {
            return false;
        }
        len++;
    }
    for (size_t i = len; i < n; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    memcpy(out, p, len);
    out[len] = '\0';
    return true;
}

keel_image_err keel_release_make(keel_release *m, const uint8_t *image, size_t len,
                                  const keel_image_seckey *key, uint8_t *out, size_t cap,
                                  size_t *out_len)
{
    if (!m || !image || !key || !out || !out_len || len == 0 || len > UINT32_MAX ||
        m->chunk_size == 0 || strlen(m->hardware) > KEEL_RELEASE_HW_SIZE ||
        strlen(m->image_name) > KEEL_RELEASE_NAME_SIZE || !name_ok(m->image_name)) {
        return KEEL_IMAGE_ERR_ARG;
    }
    if (!ki_crypto_ready()) {
        return KEEL_IMAGE_ERR_CRYPTO;
    }
    uint64_t count = (len + m->chunk_size - 1) / m->chunk_size;
    if (count > KEEL_RELEASE_MAX_CHUNKS) {
        return KEEL_IMAGE_ERR_TOO_BIG;
    }
    m->image_size = (uint32_t)len;
    m->chunk_count = (uint32_t)count;
    size_t total = keel_release_size(m->chunk_count);
    if (cap < total) {
        return KEEL_IMAGE_ERR_NO_SPACE;
    }
    memset(out, 0, KEEL_RELEASE_HEADER_SIZE);
    ki_put32(out + 0, KEEL_RELEASE_MAGIC);
    ki_put16(out + 4, KEEL_RELEASE_HEADER_SIZE);
    ki_put16(out + 6, MAN_FORMAT);
    memcpy(out + 8, m->component, KEEL_IMAGE_UUID_SIZE);
    memcpy(out + 24, m->hardware, strlen(m->hardware));
    ki_put16(out + 40, m->version.major);
    ki_put16(out + 42, m->version.minor);
    ki_put32(out + 44, m->version.patch);
    ki_put32(out + 48, m->security_counter);
    ki_put32(out + 52, m->serial);
    ki_put64(out + 56, m->expires);
    ki_put32(out + 64, m->image_size);
    ki_put32(out + 68, m->chunk_size);
    ki_put32(out + 72, m->chunk_count);
    crypto_hash_sha256(m->image_hash, image, len);
    memcpy(out + 76, m->image_hash, KEEL_IMAGE_HASH_SIZE);
    memcpy(out + 108, m->image_name, strlen(m->image_name));
    uint8_t *h = out + KEEL_RELEASE_HEADER_SIZE;
    for (uint32_t i = 0; i < m->chunk_count; i++) {
        size_t off = (size_t)i * m->chunk_size;
        size_t n = len - off < m->chunk_size ? len - off : m->chunk_size;
        crypto_hash_sha256(h + (size_t)i * KEEL_IMAGE_HASH_SIZE, image + off, n);
    }
    m->chunk_hashes = h;
    uint8_t *s = h + (size_t)m->chunk_count * KEEL_IMAGE_HASH_SIZE;
    memcpy(s, key->id, KEEL_IMAGE_KEY_ID_SIZE);
    memcpy(m->key_id, key->id, KEEL_IMAGE_KEY_ID_SIZE);
    crypto_sign_detached(s + KEEL_IMAGE_KEY_ID_SIZE, NULL, out, (size_t)(s - out), key->sk);
    *out_len = total;
    return KEEL_IMAGE_OK;
}

keel_image_err keel_release_parse(const uint8_t *buf, size_t len, keel_release *m,
                                   keel_image_error *err)
{
    if (!buf || !m) {
        return ki_fail(err, KEEL_IMAGE_ERR_ARG, "no manifest");
    }
    memset(m, 0, sizeof *m);
    if (len < KEEL_RELEASE_HEADER_SIZE) {
        return ki_fail(err, KEEL_IMAGE_ERR_TRUNCATED, "manifest: %zu bytes, the header needs %u", len,
                       KEEL_RELEASE_HEADER_SIZE);
    }
    if (ki_get32(buf) != KEEL_RELEASE_MAGIC) {
        return ki_fail(err, KEEL_IMAGE_ERR_FORMAT, "manifest: bad magic 0x%08x at offset 0",
                       ki_get32(buf));
    }
    if (ki_get16(buf + 4) != KEEL_RELEASE_HEADER_SIZE || ki_get16(buf + 6) != MAN_FORMAT) {
        return ki_fail(err, KEEL_IMAGE_ERR_FORMAT,
                       "manifest: header size %u / format %u at offset 4 (want %u / %u)",
                       ki_get16(buf + 4), ki_get16(buf + 6), KEEL_RELEASE_HEADER_SIZE, MAN_FORMAT);
    }
    if (ki_get32(buf + 156) != 0) {
        return ki_fail(err, KEEL_IMAGE_ERR_FORMAT, "manifest: reserved bytes at 156 are not zero");
    }
    memcpy(m->component, buf + 8, KEEL_IMAGE_UUID_SIZE);
    if (!text_field(buf + 24, KEEL_RELEASE_HW_SIZE, m->hardware)) {
        return ki_fail(err, KEEL_IMAGE_ERR_FORMAT, "manifest: hardware id at offset 24 is not text");
    }
    m->version.major = ki_get16(buf + 40);
    m->version.minor = ki_get16(buf + 42);
    m->version.patch = ki_get32(buf + 44);
    m->security_counter = ki_get32(buf + 48);
    m->serial = ki_get32(buf + 52);
    m->expires = ki_get64(buf + 56);
    m->image_size = ki_get32(buf + 64);
    m->chunk_size = ki_get32(buf + 68);
    m->chunk_count = ki_get32(buf + 72);
    memcpy(m->image_hash, buf + 76, KEEL_IMAGE_HASH_SIZE);
    if (!text_field(buf + 108, KEEL_RELEASE_NAME_SIZE, m->image_name) || !name_ok(m->image_name)) {
        return ki_fail(err, KEEL_IMAGE_ERR_FORMAT,
                       "manifest: image name at offset 108 is not a plain file name");
    }
    if (m->image_size == 0 || m->chunk_size == 0) {
        return ki_fail(err, KEEL_IMAGE_ERR_FORMAT, "manifest: image size %u, chunk size %u",
                       m->image_size, m->chunk_size);
    }
    uint64_t want = ((uint64_t)m->image_size + m->chunk_size - 1) / m->chunk_size;
    if (m->chunk_count != want) {
        return ki_fail(err, KEEL_IMAGE_ERR_FORMAT,
                       "manifest: %u chunks at offset 72, but %u bytes in chunks of %u need %llu",
                       m->chunk_count, m->image_size, m->chunk_size, (unsigned long long)want);
    }
    if (m->chunk_count > KEEL_RELEASE_MAX_CHUNKS) {
        return ki_fail(err, KEEL_IMAGE_ERR_TOO_BIG, "manifest: %u chunks (at most %u)",
                       m->chunk_count, KEEL_RELEASE_MAX_CHUNKS);
    }
    size_t total = keel_release_size(m->chunk_count);
    if (len < total) {
        return ki_fail(err, KEEL_IMAGE_ERR_TRUNCATED, "manifest: %zu bytes, %u chunks need %zu", len,
                       m->chunk_count, total);
    }
    if (len > total) {
        return ki_fail(err, KEEL_IMAGE_ERR_FORMAT, "manifest: %zu bytes after the signature",
                       len - total);
    }
    m->chunk_hashes = buf + KEEL_RELEASE_HEADER_SIZE;
    memcpy(m->key_id, buf + total - KEEL_RELEASE_SIG_SIZE, KEEL_IMAGE_KEY_ID_SIZE);
    return KEEL_IMAGE_OK;
}

keel_image_err keel_release_verify(const uint8_t *buf, size_t len, const keel_image_keys *keys,
                                    keel_release *m, keel_image_error *err)
{
    if (!keys) {
        return ki_fail(err, KEEL_IMAGE_ERR_ARG, "no keys");
    }
    keel_image_err e = keel_release_parse(buf, len, m, err);
    if (e != KEEL_IMAGE_OK) {
        return e;
    }
    if (!ki_crypto_ready()) {
        return ki_fail(err, KEEL_IMAGE_ERR_CRYPTO, "libsodium failed to initialise");
    }
    const keel_image_pubkey *k = ki_find_key(keys, m->key_id);
    if (!k) {
        char hex[2 * KEEL_IMAGE_KEY_ID_SIZE + 1];
        sodium_bin2hex(hex, sizeof hex, m->key_id, KEEL_IMAGE_KEY_ID_SIZE);
        return ki_fail(err, KEEL_IMAGE_ERR_UNKNOWN_KEY, "manifest: signed by key %s, not trusted",
                       hex);
    }
    size_t signed_len = len - KEEL_RELEASE_SIG_SIZE;
    if (crypto_sign_verify_detached(buf + signed_len + KEEL_IMAGE_KEY_ID_SIZE, buf, signed_len,
                                    k->pk) != 0) {
        return ki_fail(err, KEEL_IMAGE_ERR_SIGNATURE, "manifest: Ed25519 signature does not verify");
    }
    return KEEL_IMAGE_OK;
}

/* Key generation and the file side of images: key files, whole-file reads with a size limit,
 * and atomic writes (temporary file, fsync, rename), so a tool interrupted mid-write never
 * leaves a half key or half image under the final name. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image_priv.h"

void keel_image_pubkey_derive_id(keel_image_pubkey *pub)
{
    uint8_t h[KEEL_IMAGE_HASH_SIZE];
    crypto_hash_sha256(h, pub->pk, KEEL_IMAGE_PK_SIZE);
    memcpy(pub->id, h, KEEL_IMAGE_KEY_ID_SIZE);
}

keel_image_err keel_image_keygen(keel_image_pubkey *pub, keel_image_seckey *sec)
{
    if (!pub || !sec) {
        return KEEL_IMAGE_ERR_ARG;
    }
    if (!ki_crypto_ready()) {
        return KEEL_IMAGE_ERR_CRYPTO;
    }
    crypto_sign_keypair(pub->pk, sec->sk);
    keel_image_pubkey_derive_id(pub);
    memcpy(sec->id, pub->id, KEEL_IMAGE_KEY_ID_SIZE);
    return KEEL_IMAGE_OK;
}

keel_image_err keel_image_read_file(const char *path, size_t max, uint8_t **out, size_t *out_len,
                                    keel_image_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return ki_fail(err, KEEL_IMAGE_ERR_IO, "%s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ki_fail(err, KEEL_IMAGE_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return ki_fail(err, KEEL_IMAGE_ERR_TOO_BIG, "%s: %lld bytes (at most %zu)", path,
                       (long long)st.st_size, max);
    }
    size_t len = (size_t)st.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        close(fd);
        return ki_fail(err, KEEL_IMAGE_ERR_IO, "%s: out of memory", path);
    }
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            free(buf);
            close(fd);
            return ki_fail(err, KEEL_IMAGE_ERR_IO, "%s: short read", path);
        }
        got += (size_t)n;
    }
    close(fd);
    *out = buf;
    *out_len = len;
    return KEEL_IMAGE_OK;
}

static keel_image_err write_mode(const char *path, const uint8_t *buf, size_t len, mode_t mode,
                                 keel_image_error *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        return ki_fail(err, KEEL_IMAGE_ERR_ARG, "%s: path too long", path);
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        return ki_fail(err, KEEL_IMAGE_ERR_IO, "%s: %s", tmp, strerror(errno));
    }
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, buf + done, len - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return ki_fail(err, KEEL_IMAGE_ERR_IO, "%s: %s", tmp, strerror(e));
        }
        done += (size_t)n;
    }
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return ki_fail(err, KEEL_IMAGE_ERR_IO, "%s: %s", path, strerror(e));
    }
    return KEEL_IMAGE_OK;
}

keel_image_err keel_image_write_file(const char *path, const uint8_t *buf, size_t len,
                                     keel_image_error *err)
{
    return write_mode(path, buf, len, 0644, err);
}

keel_image_err keel_image_key_save(const char *pub_path, const char *sec_path,
                                   const keel_image_pubkey *pub, const keel_image_seckey *sec,
                                   keel_image_error *err)
{
    keel_image_err e = write_mode(sec_path, sec->sk, KEEL_IMAGE_SK_SIZE, 0600, err);
    if (e != KEEL_IMAGE_OK) {
        return e;
    }
    return keel_image_write_file(pub_path, pub->pk, KEEL_IMAGE_PK_SIZE, err);
}

static keel_image_err load_exact(const char *path, size_t want, uint8_t *out, const char *what,
                                 keel_image_error *err)
{
    uint8_t *buf;
    size_t len;
    keel_image_err e = keel_image_read_file(path, 4096, &buf, &len, err);
    if (e != KEEL_IMAGE_OK) {
        return e;
    }
    if (len != want) {
        free(buf);
        return ki_fail(err, KEEL_IMAGE_ERR_FORMAT, "%s: %zu bytes, a %s key file has %zu", path,
                       len, what, want);
    }
    memcpy(out, buf, want);
    sodium_memzero(buf, len);
    free(buf);
    return KEEL_IMAGE_OK;
}

keel_image_err keel_image_pubkey_load(const char *path, keel_image_pubkey *out,
                                      keel_image_error *err)
{
    if (!ki_crypto_ready()) {
        return ki_fail(err, KEEL_IMAGE_ERR_CRYPTO, "libsodium failed to initialise");
    }
    keel_image_err e = load_exact(path, KEEL_IMAGE_PK_SIZE, out->pk, "public", err);
    if (e == KEEL_IMAGE_OK) {
        keel_image_pubkey_derive_id(out);
    }
    return e;
}

keel_image_err keel_image_seckey_load(const char *path, keel_image_seckey *out,
                                      keel_image_error *err)
{
    if (!ki_crypto_ready()) {
        return ki_fail(err, KEEL_IMAGE_ERR_CRYPTO, "libsodium failed to initialise");
    }
    keel_image_err e = load_exact(path, KEEL_IMAGE_SK_SIZE, out->sk, "secret", err);
    if (e == KEEL_IMAGE_OK) {
        keel_image_pubkey pub;
        crypto_sign_ed25519_sk_to_pk(pub.pk, out->sk);
        keel_image_pubkey_derive_id(&pub);
        memcpy(out->id, pub.id, KEEL_IMAGE_KEY_ID_SIZE);
    }
    return e;
}

keel_image_err keel_image_verify_file(const char *path, const keel_image_keys *keys,
                                      keel_image_info *info, keel_image_error *err)
{
    uint8_t *buf;
    size_t len;
    keel_image_err e = keel_image_read_file(path, UINT32_MAX, &buf, &len, err);
    if (e != KEEL_IMAGE_OK) {
        return e;
    }
    e = keel_image_verify(buf, len, keys, info, err);
    free(buf);
    return e;
}

/* Signed images and release manifests: the two formats every Keel update travels in.
 *
 * An image is a 64-byte header, the payload, and a TLV trailer holding the SHA-256 of header and
 * payload, the id of the signing key and an Ed25519 signature of that digest (libsodium). The
 * digest-then-sign layout lets a device verify an image of any size in one streaming pass.
 * A manifest names one image for one component and hardware, carries an expiry time and the
 * SHA-256 of every chunk of the image, and is itself signed. Both are documented byte by byte
 * in docs/updates.md. Parsing never trusts a length field before checking it against the data
 * actually present, and every refusal names what was wrong in a keel_image_error message.
 */
#ifndef KEEL_IMAGE_H
#define KEEL_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/status.h"

typedef enum keel_image_err {
    KEEL_IMAGE_OK = 0,
    KEEL_IMAGE_ERR_ARG,        /* a bad argument from the caller */
    KEEL_IMAGE_ERR_IO,         /* a file could not be read or written */
    KEEL_IMAGE_ERR_TRUNCATED,  /* fewer bytes than the format says */
    KEEL_IMAGE_ERR_FORMAT,     /* bad magic, size field, TLV layout */
    KEEL_IMAGE_ERR_TOO_BIG,    /* larger than the caller's limit */
    KEEL_IMAGE_ERR_HASH,       /* a SHA-256 does not match */
    KEEL_IMAGE_ERR_UNKNOWN_KEY,/* signed by a key that is not trusted */
    KEEL_IMAGE_ERR_SIGNATURE,  /* the signature does not verify */
    KEEL_IMAGE_ERR_NO_SPACE,   /* the output buffer is too small */
    KEEL_IMAGE_ERR_CRYPTO,     /* libsodium could not be initialised */
    KEEL_IMAGE_ERR_COUNT
} keel_image_err;

const char *keel_image_err_name(keel_image_err e);

/* ---- keys ---------------------------------------------------------------------------------- */

#define KEEL_IMAGE_KEY_ID_SIZE 8   /* first 8 bytes of SHA-256(public key) */
#define KEEL_IMAGE_PK_SIZE 32
#define KEEL_IMAGE_SK_SIZE 64      /* libsodium's seed || public key form */
#define KEEL_IMAGE_SIG_SIZE 64
#define KEEL_IMAGE_HASH_SIZE 32

typedef struct keel_image_pubkey {
    uint8_t id[KEEL_IMAGE_KEY_ID_SIZE];
    uint8_t pk[KEEL_IMAGE_PK_SIZE];
} keel_image_pubkey;

typedef struct keel_image_seckey {
    uint8_t id[KEEL_IMAGE_KEY_ID_SIZE];
    uint8_t sk[KEEL_IMAGE_SK_SIZE];
} keel_image_seckey;

/* The set of keys a device trusts. */
typedef struct keel_image_keys {
    const keel_image_pubkey *keys;
    size_t count;
} keel_image_keys;

/* Room for one human-readable error. */
typedef struct keel_image_error {
    char msg[256];
} keel_image_error;

KEEL_NODISCARD keel_image_err keel_image_keygen(keel_image_pubkey *pub, keel_image_seckey *sec);
/* Key files: a public key file is the 32 raw bytes of the Ed25519 public key; a secret key file
 * is the 64 raw bytes of libsodium's secret key. The id is derived, never stored. */
KEEL_NODISCARD keel_image_err keel_image_key_save(const char *pub_path, const char *sec_path,
                                                  const keel_image_pubkey *pub,
                                                  const keel_image_seckey *sec,
                                                  keel_image_error *err);
KEEL_NODISCARD keel_image_err keel_image_pubkey_load(const char *path, keel_image_pubkey *out,
                                                     keel_image_error *err);
KEEL_NODISCARD keel_image_err keel_image_seckey_load(const char *path, keel_image_seckey *out,
                                                     keel_image_error *err);
/* Fills pub->id from pub->pk. */
void keel_image_pubkey_derive_id(keel_image_pubkey *pub);

/* ---- images -------------------------------------------------------------------------------- */

#define KEEL_IMAGE_MAGIC 0x474d494bu       /* "KIMG" little-endian */
#define KEEL_IMAGE_HEADER_SIZE 64u
#define KEEL_IMAGE_TLV_MAGIC 0x6b54u       /* "Tk" */
#define KEEL_IMAGE_TLV_KEY_ID 0x01u
#define KEEL_IMAGE_TLV_SHA256 0x10u
#define KEEL_IMAGE_TLV_ED25519 0x20u
/* The trailer Keel writes: info (4) + key id TLV (4+8) + hash TLV (4+32) + signature TLV (4+64). */
#define KEEL_IMAGE_TRAILER_SIZE 120u
#define KEEL_IMAGE_UUID_SIZE 16

typedef struct keel_image_version {
    uint16_t major;
    uint16_t minor;
    uint32_t patch;
} keel_image_version;

typedef struct keel_image_header {
    uint8_t component[KEEL_IMAGE_UUID_SIZE]; /* what this image is (an app, the RT core, ...) */
    keel_image_version version;
    uint32_t security_counter;               /* never accepted below the device's floor */
    uint32_t payload_size;
    uint32_t flags;                          /* reserved for the application; 0 by default */
} keel_image_header;

/* What a verification found. */
typedef struct keel_image_info {
    keel_image_header header;
    uint32_t image_size;                     /* header + payload + trailer */
    uint8_t hash[KEEL_IMAGE_HASH_SIZE];      /* SHA-256 of header and payload */
    uint8_t key_id[KEEL_IMAGE_KEY_ID_SIZE];
} keel_image_info;

/* Total size of a Keel-signed image with `payload_size` payload bytes. */
uint32_t keel_image_size(uint32_t payload_size);

/* Writes header + payload + trailer into out[0..cap). *out_len gets keel_image_size(). */
KEEL_NODISCARD keel_image_err keel_image_sign(const keel_image_header *hdr, const uint8_t *payload,
                                              const keel_image_seckey *key, uint8_t *out,
                                              size_t cap, size_t *out_len);

/* Parses and checks the header only (magic, header size, payload size against `len` when
 * len >= the whole image would need; a header-only buffer of 64 bytes is enough). */
KEEL_NODISCARD keel_image_err keel_image_parse_header(const uint8_t *buf, size_t len,
                                                      keel_image_header *out,
                                                      keel_image_error *err);

/* Reads `len` bytes at `off` of an image kept elsewhere (a slot, a file). Returns 0 or -1. */
typedef int (*keel_image_read_fn)(void *ctx, uint32_t off, void *buf, uint32_t len);

/* Verifies an image of at most `max_size` bytes held behind `read`: header, payload hash, key id
 * among `keys`, signature. Reads in blocks; uses no heap. `info` may be NULL. */
KEEL_NODISCARD keel_image_err keel_image_verify_reader(keel_image_read_fn read, void *ctx,
                                                       uint32_t max_size,
                                                       const keel_image_keys *keys,
                                                       keel_image_info *info,
                                                       keel_image_error *err);
/* Header, trailer, key and signature only: does NOT check that header and payload hash to the
 * trailer's digest. For bytes already authenticated another way (every chunk checked against a
 * signed manifest as it landed), where a full pass would only repeat that work; a bootloader
 * must still use keel_image_verify_reader before it runs the image. */
KEEL_NODISCARD keel_image_err keel_image_verify_signature_reader(keel_image_read_fn read,
                                                                 void *ctx, uint32_t max_size,
                                                                 const keel_image_keys *keys,
                                                                 keel_image_info *info,
                                                                 keel_image_error *err);
/* The same for an image in memory (`len` bytes; bytes after the image are an error). */
KEEL_NODISCARD keel_image_err keel_image_verify(const uint8_t *buf, size_t len,
                                                const keel_image_keys *keys,
                                                keel_image_info *info, keel_image_error *err);
/* The same for an image file. */
KEEL_NODISCARD keel_image_err keel_image_verify_file(const char *path, const keel_image_keys *keys,
                                                     keel_image_info *info,
                                                     keel_image_error *err);
/* Parses header and trailer and recomputes the hash, without checking a signature (inspect). */
KEEL_NODISCARD keel_image_err keel_image_inspect(const uint8_t *buf, size_t len,
                                                 keel_image_info *info, keel_image_error *err);

/* "1.2.3" into *out; false if malformed. */
bool keel_image_version_parse(const char *s, keel_image_version *out);
/* -1, 0, 1 */
int keel_image_version_cmp(const keel_image_version *a, const keel_image_version *b);
/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into 16 bytes; false if malformed. */
bool keel_image_uuid_parse(const char *s, uint8_t out[KEEL_IMAGE_UUID_SIZE]);
void keel_image_uuid_format(const uint8_t uuid[KEEL_IMAGE_UUID_SIZE], char out[37]);

/* ---- release manifests --------------------------------------------------------------------- */

#define KEEL_RELEASE_MAGIC 0x4e414d4bu     /* "KMAN" little-endian */
#define KEEL_RELEASE_HEADER_SIZE 160u
#define KEEL_RELEASE_HW_SIZE 16
#define KEEL_RELEASE_NAME_SIZE 48
#define KEEL_RELEASE_MAX_CHUNKS 4096u
#define KEEL_RELEASE_SIG_SIZE (KEEL_IMAGE_KEY_ID_SIZE + KEEL_IMAGE_SIG_SIZE)

typedef struct keel_release {
    uint8_t component[KEEL_IMAGE_UUID_SIZE];
    char hardware[KEEL_RELEASE_HW_SIZE + 1];   /* NUL-terminated */
    keel_image_version version;
    uint32_t security_counter;
    uint32_t serial;                            /* release sequence number */
    uint64_t expires;                           /* Unix seconds; refused after this */
    uint32_t image_size;
    uint32_t chunk_size;
    uint32_t chunk_count;
    uint8_t image_hash[KEEL_IMAGE_HASH_SIZE];   /* SHA-256 of the whole image file */
    char image_name[KEEL_RELEASE_NAME_SIZE + 1]; /* the image's file, next to the manifest */
    uint8_t key_id[KEEL_IMAGE_KEY_ID_SIZE];
    const uint8_t *chunk_hashes;                /* chunk_count * 32 bytes, points into the bytes */
} keel_release;

/* Bytes of a manifest with `chunk_count` chunks. */
uint32_t keel_release_size(uint32_t chunk_count);

/* Builds and signs a manifest for `image` (len bytes). Fields image_size, chunk_count,
 * image_hash, key_id and chunk_hashes of `m` are computed; the rest are the caller's. */
KEEL_NODISCARD keel_image_err keel_release_make(keel_release *m, const uint8_t *image, size_t len,
                                                 const keel_image_seckey *key, uint8_t *out,
                                                 size_t cap, size_t *out_len);

/* Parses a manifest and checks its structure (sizes, chunk count, names), not its signature.
 * m->chunk_hashes points into `buf`. */
KEEL_NODISCARD keel_image_err keel_release_parse(const uint8_t *buf, size_t len, keel_release *m,
                                                  keel_image_error *err);
/* Parses and verifies the signature against `keys`. Expiry and targets are the agent's policy. */
KEEL_NODISCARD keel_image_err keel_release_verify(const uint8_t *buf, size_t len,
                                                   const keel_image_keys *keys, keel_release *m,
                                                   keel_image_error *err);

/* Small helpers shared with the update agent and tools. */
KEEL_NODISCARD keel_image_err keel_image_read_file(const char *path, size_t max, uint8_t **out,
                                                   size_t *out_len, keel_image_error *err);
KEEL_NODISCARD keel_image_err keel_image_write_file(const char *path, const uint8_t *buf,
                                                    size_t len, keel_image_error *err);

#endif

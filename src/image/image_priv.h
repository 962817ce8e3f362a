/* Little-endian field access shared by the image and manifest codecs. Every multi-byte field in
 * Keel's update formats is little-endian, whatever the host, so the codecs never cast structs
 * over bytes. */
#ifndef KEEL_IMAGE_PRIV_H
#define KEEL_IMAGE_PRIV_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "keel/image.h"

static inline uint16_t ki_get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t ki_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t ki_get64(const uint8_t *p)
{
    return (uint64_t)ki_get32(p) | ((uint64_t)ki_get32(p + 4) << 32);
}
static inline void ki_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void ki_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}
static inline void ki_put64(uint8_t *p, uint64_t v)
{
    ki_put32(p, (uint32_t)v);
    ki_put32(p + 4, (uint32_t)(v >> 32));
}

/* Fills err (if any) and returns e. */
keel_image_err ki_fail(keel_image_error *err, keel_image_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* sodium_init() once; false if it failed. */
bool ki_crypto_ready(void);
/* The trusted key with this id, or NULL. */
const keel_image_pubkey *ki_find_key(const keel_image_keys *keys, const uint8_t *id);

#endif

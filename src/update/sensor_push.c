/* The gateway side of the sensor update profile: push a signed image to a MODBUS sensor.
 *
 * The gateway checks the signature first (a sensor should never spend flash wear on an image
 * the gateway could have refused), announces length and SHA-256, and writes file records in
 * order, at most 120 registers per FC 21 request and never across a file boundary. When the
 * sensor stops answering (power cycle, bus noise) the gateway keeps asking for the sensor's
 * NEXT register and resumes from it: the sensor reports only what it holds durably, so the
 * resend is at most one erase block plus one request. The sensor verifies everything again
 * before it boots the image; the gateway's check only saves the bus and the flash.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "update_priv.h"

#define DEFAULT_REGS 120u
#define DEFAULT_SILENT 50u

struct pusher {
    const keel_update_sensor_link *l;
    uint16_t base;
    unsigned silent, max_silent;
    uint32_t backoff_ms;
    keel_update_sensor_stats *st;
};

/* After an unanswered request: a sensor that restarts needs time, not a burst of requests. */
static void back_off(const struct pusher *p)
{
    uint32_t ms = keel_update_backoff_ms(p->silent, p->backoff_ms, 1000, randombytes_random());
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Runs one request until it is answered; -1 after too many silences, else its result. */
static int call_regs(struct pusher *p, bool write, uint16_t reg, uint16_t n, uint16_t *regs)
{
    for (;;) {
        p->st->requests++;
        int r = write ? p->l->write_regs(p->l->ctx, (uint16_t)(p->base + reg), n, regs)
                      : p->l->read_regs(p->l->ctx, (uint16_t)(p->base + reg), n, regs);
        if (r >= 0) {
            p->silent = 0;
            return r;
        }
        p->st->unanswered++;
        if (++p->silent >= p->max_silent) {
            return -1;
        }
        back_off(p);
    }
}

static uint32_t get32(const uint16_t *r) { return ((uint32_t)r[0] << 16) | r[1]; }

keel_update_err keel_update_sensor_push(const keel_update_sensor_link *link, const uint8_t *image,
                                        size_t len, const keel_image_keys *keys,
                                        const keel_update_sensor_opts *opts,
                                        keel_update_sensor_stats *stats, keel_update_error *err)
{
    if (!link || !link->read_regs || !link->write_regs || !link->write_file || !image || !keys) {
        return ku_fail(err, KEEL_UPDATE_ERR_ARG, "need a link, an image and trusted keys");
    }
    keel_update_sensor_opts o = opts ? *opts : (keel_update_sensor_opts){0};
    keel_update_sensor_stats local;
    struct pusher p = {link, o.base ? o.base : KEEL_UPDATE_SENSOR_BASE, 0,
                       o.max_silent ? o.max_silent : DEFAULT_SILENT,
                       o.backoff_ms ? o.backoff_ms : 20, stats ? stats : &local};
    memset(p.st, 0, sizeof *p.st);
    uint16_t per = o.regs_per_write && o.regs_per_write <= DEFAULT_REGS ? o.regs_per_write
                                                                        : DEFAULT_REGS;
    keel_image_error ie;
    keel_image_err ve = keel_image_verify(image, len, keys, NULL, &ie);
    if (ve != KEEL_IMAGE_OK) {
        return ku_fail(err,
                       ve == KEEL_IMAGE_ERR_UNKNOWN_KEY ? KEEL_UPDATE_ERR_UNKNOWN_KEY
                       : ve == KEEL_IMAGE_ERR_SIGNATURE ? KEEL_UPDATE_ERR_SIGNATURE
                                                        : KEEL_UPDATE_ERR_IMAGE,
                       "%s", ie.msg);
    }
    uint32_t records_total = (uint32_t)((len + 1) / 2);
    if (records_total > 0xffffu * KEEL_UPDATE_SENSOR_RECORDS) {
        return ku_fail(err, KEEL_UPDATE_ERR_TOO_BIG, "image of %zu bytes", len);
    }
    uint8_t h[KEEL_IMAGE_HASH_SIZE];
    crypto_hash_sha256(h, image, len);
    uint16_t want[KEEL_UPDATE_SENSOR_REGS];
    want[KEEL_UPDATE_SENSOR_LENGTH] = (uint16_t)(len >> 16);
    want[KEEL_UPDATE_SENSOR_LENGTH + 1] = (uint16_t)len;
    for (int i = 0; i < 16; i++) {
        want[KEEL_UPDATE_SENSOR_SHA256 + i] = (uint16_t)((h[2 * i] << 8) | h[2 * i + 1]);
    }

    uint16_t regs[KEEL_UPDATE_SENSOR_REGS];
    uint32_t next = 0;
    unsigned begin_tries = 0;
    bool started = false;
    for (;;) {
        /* Where does the sensor stand? (Asked at the start and after every silence.) */
        int r = call_regs(&p, false, 0, KEEL_UPDATE_SENSOR_REGS, regs);
        if (r != 0) {
            return ku_fail(err, KEEL_UPDATE_ERR_FETCH, "sensor %s reading its update registers",
                           r < 0 ? "silent" : "answered an exception");
        }
        bool same = regs[KEEL_UPDATE_SENSOR_STATE] == KEEL_UPDATE_SENSOR_RECEIVING &&
                    memcmp(regs + KEEL_UPDATE_SENSOR_LENGTH, want + KEEL_UPDATE_SENSOR_LENGTH,
                           2 * sizeof(uint16_t)) == 0 &&
                    memcmp(regs + KEEL_UPDATE_SENSOR_SHA256, want + KEEL_UPDATE_SENSOR_SHA256,
                           16 * sizeof(uint16_t)) == 0;
        if (!same) {
            if (regs[KEEL_UPDATE_SENSOR_STATE] == KEEL_UPDATE_SENSOR_TRIAL) {
                return ku_fail(err, KEEL_UPDATE_ERR_STATE,
                               "the sensor runs an image on trial; it must confirm first");
            }
            if (started) {
                p.st->resumes++; /* the sensor lost the transfer entirely: start over */
            }
            uint16_t begin[KEEL_UPDATE_SENSOR_REGS];
            memcpy(begin, want, sizeof want);
            begin[KEEL_UPDATE_SENSOR_STATE] = KEEL_UPDATE_SENSOR_RECEIVING;
            r = call_regs(&p, true, 0, KEEL_UPDATE_SENSOR_SHA256 + 16, begin);
            if (r < 0) {
                return ku_fail(err, KEEL_UPDATE_ERR_FETCH, "the sensor fell silent");
            }
            if (r > 0) {
                uint16_t e = 0;
                if (call_regs(&p, false, KEEL_UPDATE_SENSOR_ERROR, 1, &e) < 0) {
                    return ku_fail(err, KEEL_UPDATE_ERR_FETCH, "the sensor fell silent");
                }
                /* A flash failure (or a restart that cleared the reason) may pass: retry. */
                if ((e == 0 || e == KEEL_UPDATE_ERR_STORAGE) && ++begin_tries < 5) {
                    continue;
                }
                return ku_fail(err, e && e < KEEL_UPDATE_ERR_COUNT ? (keel_update_err)e
                                                                    : KEEL_UPDATE_ERR_FETCH,
                               "the sensor refused the update (%s)",
                               keel_update_err_name((keel_update_err)e));
            }
            started = true;
            continue;
        }
        uint32_t rec = get32(regs + KEEL_UPDATE_SENSOR_NEXT);
        if (started && rec * 2u < next) {
            p.st->resumes++;
        }
        started = true;
        next = rec * 2u;
        /* Send from `next` until done or the sensor falls silent. */
        bool silent = false;
        while (next < len) {
            uint32_t g = next / 2; /* global record */
            uint16_t file = (uint16_t)(1 + g / KEEL_UPDATE_SENSOR_RECORDS);
            uint16_t record = (uint16_t)(g % KEEL_UPDATE_SENSOR_RECORDS);
            uint32_t n = records_total - g;
            if (n > per) {
                n = per;
            }
            if (n > KEEL_UPDATE_SENSOR_RECORDS - record) {
                n = KEEL_UPDATE_SENSOR_RECORDS - record;
            }
            uint16_t data[DEFAULT_REGS];
            for (uint32_t i = 0; i < n; i++) {
                size_t b = (size_t)(g + i) * 2;
                data[i] = (uint16_t)((image[b] << 8) | (b + 1 < len ? image[b + 1] : 0xff));
            }
            p.st->requests++;
            p.st->bytes_sent += 2u * n; /* on the wire, answered or not */
            r = link->write_file(link->ctx, file, record, (uint16_t)n, data);
            if (r < 0) {
                p.st->unanswered++;
                if (++p.silent >= p.max_silent) {
                    return ku_fail(err, KEEL_UPDATE_ERR_FETCH, "the sensor fell silent at byte %u",
                                   next);
                }
                back_off(&p);
                silent = true;
                break;
            }
            p.silent = 0;
            if (r > 0) {
                /* Out of order (the sensor restarted and lost its block buffer): ask where. */
                silent = true;
                break;
            }
            next += 2u * n;
            if (o.progress) {
                o.progress(o.progress_ctx, next < len ? next : (uint32_t)len, (uint32_t)len);
            }
        }
        if (silent) {
            continue;
        }
        uint16_t magic = KEEL_UPDATE_SENSOR_MAGIC;
        r = call_regs(&p, true, KEEL_UPDATE_SENSOR_COMMIT, 1, &magic);
        if (r < 0) {
            return ku_fail(err, KEEL_UPDATE_ERR_FETCH, "the sensor did not answer the commit");
        }
        if (r == 0) {
            return KEEL_UPDATE_OK; /* verified and armed; the sensor restarts into it */
        }
        /* Refused. It may have restarted before the commit (resume), or already be running
         * this image (our first commit's reply was lost), or have found the image bad. */
        uint16_t st[KEEL_UPDATE_SENSOR_REGS];
        if (call_regs(&p, false, 0, KEEL_UPDATE_SENSOR_REGS, st) != 0) {
            return ku_fail(err, KEEL_UPDATE_ERR_FETCH, "the sensor did not answer after the commit");
        }
        if (st[KEEL_UPDATE_SENSOR_STATE] == KEEL_UPDATE_SENSOR_RECEIVING) {
            continue;
        }
        char running[32], mine[32];
        keel_image_header hdr;
        if (link->read_version && link->read_version(link->ctx, running, sizeof running) == 0 &&
            keel_image_parse_header(image, len, &hdr, NULL) == KEEL_IMAGE_OK) {
            snprintf(mine, sizeof mine, "%u.%u.%u", hdr.version.major, hdr.version.minor,
                     hdr.version.patch);
            if (strcmp(running, mine) == 0) {
                return KEEL_UPDATE_OK;
            }
        }
        uint16_t e = st[KEEL_UPDATE_SENSOR_ERROR];
        return ku_fail(err, e && e < KEEL_UPDATE_ERR_COUNT ? (keel_update_err)e : KEEL_UPDATE_ERR_IMAGE,
                       "the sensor refused the image (%s)",
                       keel_update_err_name((keel_update_err)e));
    }
}

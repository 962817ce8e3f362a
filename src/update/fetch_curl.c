/* The HTTP(S) fetcher: drives the agent core with libcurl range requests.
 *
 * The core says which chunk is missing; this file asks the server for exactly the bytes of
 * that chunk still missing (Range: bytes=a-b), so a connection dropped mid-chunk resumes where
 * it stopped and nothing is fetched twice within a run; across a reboot at most the chunk that
 * was landing is fetched again (the core persists only whole, verified chunks). A response
 * body is never allowed past the bytes asked for: a server streaming endless data is cut off
 * at the first byte too many. Failures back off exponentially with jitter.
 */
#include <curl/curl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "update_priv.h"

#define DEFAULT_ATTEMPTS 8u
#define DEFAULT_BACKOFF_MS 200u
#define DEFAULT_BACKOFF_MAX_MS 30000u
#define DEFAULT_TIMEOUT_S 60L

struct sink {
    uint8_t *buf;
    size_t have, cap;
    bool overflow;
    uint64_t *counter;
};

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    struct sink *s = ctx;
    size_t len = size * n;
    if (len > s->cap - s->have) {
        s->overflow = true;
        return 0; /* aborts the transfer */
    }
    memcpy(s->buf + s->have, data, len);
    s->have += len;
    if (s->counter) {
        *s->counter += len;
    }
    return len;
}

/* libcurl calls this often during a transfer; non-zero aborts it. */
static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    volatile const int *cancel = ctx;
    return cancel && *cancel;
}

static bool cancelled(const keel_update_fetch_opts *o) { return o->cancel && *o->cancel; }

/* A backoff pause, in slices so that a cancel is seen within SLICE_MS. */
#define SLICE_MS 50u
static void pause_ms(uint32_t ms, const keel_update_fetch_opts *o)
{
    while (ms > 0 && !cancelled(o)) {
        uint32_t step = ms < SLICE_MS ? ms : SLICE_MS;
        struct timespec ts = {0, (long)step * 1000000L};
        while (nanosleep(&ts, &ts) != 0) {
        }
        ms -= step;
    }
}

/* One GET. Returns the HTTP status (0 when the transfer failed) and leaves the body in sink. */
static long get(CURL *c, const char *url, const char *range, struct sink *s,
                const keel_update_fetch_opts *o)
{
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_RANGE, range);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, o->timeout_s);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)o->cancel);
    if (o->ca_file) {
        curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
    }
    if (curl_easy_perform(c) != CURLE_OK) {
        return 0;
    }
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    return code;
}

static keel_update_err fetch_manifest(CURL *c, const char *url, const keel_update_fetch_opts *o,
                                      keel_update_fetch_stats *st, uint8_t **out, size_t *len,
                                      keel_update_error *err)
{
    size_t cap = keel_release_size(KEEL_RELEASE_MAX_CHUNKS);
    struct sink s = {malloc(cap), 0, cap, false, NULL};
    if (!s.buf) {
        return ku_fail(err, KEEL_UPDATE_ERR_FETCH, "out of memory");
    }
    for (unsigned attempt = 0;; attempt++) {
        s.have = 0;
        s.overflow = false;
        st->requests++;
        long code = get(c, url, NULL, &s, o);
        if (cancelled(o)) {
            free(s.buf);
            return ku_fail(err, KEEL_UPDATE_ERR_CANCELLED, "cancelled");
        }
        if (s.overflow) {
            free(s.buf);
            return ku_fail(err, KEEL_UPDATE_ERR_TOO_BIG, "%s: more than %zu bytes", url, cap);
        }
        if (code == 200) {
            *out = s.buf;
            *len = s.have;
            return KEEL_UPDATE_OK;
        }
        if (attempt + 1 >= o->max_attempts || (code >= 400 && code < 500)) {
            free(s.buf);
            return ku_fail(err, KEEL_UPDATE_ERR_FETCH, "%s: %s", url,
                           code ? "HTTP error" : "no answer");
        }
        st->retries++;
        pause_ms(keel_update_backoff_ms(attempt, o->backoff_base_ms, o->backoff_max_ms,
                                        randombytes_random()), o);
    }
}

keel_update_err keel_update_fetch(keel_update_agent *a, const char *manifest_url,
                                  const keel_update_fetch_opts *opts,
                                  keel_update_fetch_stats *stats, keel_update_error *err)
{
    if (!a || !manifest_url) {
        return ku_fail(err, KEEL_UPDATE_ERR_ARG, "no agent or no URL");
    }
    keel_update_fetch_opts o = opts ? *opts : (keel_update_fetch_opts){0};
    o.max_attempts = o.max_attempts ? o.max_attempts : DEFAULT_ATTEMPTS;
    o.backoff_base_ms = o.backoff_base_ms ? o.backoff_base_ms : DEFAULT_BACKOFF_MS;
    o.backoff_max_ms = o.backoff_max_ms ? o.backoff_max_ms : DEFAULT_BACKOFF_MAX_MS;
    o.timeout_s = o.timeout_s ? o.timeout_s : DEFAULT_TIMEOUT_S;
    keel_update_fetch_stats local = {0};
    keel_update_fetch_stats *st = stats ? stats : &local;
    memset(st, 0, sizeof *st);

    CURL *c = curl_easy_init();
    if (!c) {
        return ku_fail(err, KEEL_UPDATE_ERR_FETCH, "libcurl failed to initialise");
    }
    uint8_t *man = NULL, *chunk = NULL;
    size_t man_len = 0;
    char *image_url = NULL;
    keel_update_err e = fetch_manifest(c, manifest_url, &o, st, &man, &man_len, err);
    if (e == KEEL_UPDATE_OK) {
        e = keel_update_begin(a, man, man_len, (uint64_t)time(NULL), err);
    }
    free(man);
    if (e != KEEL_UPDATE_OK) {
        goto out;
    }
    const char *slash = strrchr(manifest_url, '/');
    size_t base = slash ? (size_t)(slash - manifest_url) + 1 : 0;
    const char *name = keel_update_image_name(a);
    image_url = malloc(base + strlen(name) + 1);
    chunk = malloc(a->man.chunk_size);
    if (!image_url || !chunk) {
        e = ku_fail(err, KEEL_UPDATE_ERR_FETCH, "out of memory");
        goto out;
    }
    memcpy(image_url, manifest_url, base);
    strcpy(image_url + base, name);

    keel_update_chunk_req req;
    uint32_t total = a->man.chunk_count;
    while (keel_update_next_chunk(a, &req)) {
        struct sink s = {chunk, 0, req.length, false, &st->bytes_received};
        unsigned attempt = 0;
        while (s.have < req.length) {
            char range[64];
            snprintf(range, sizeof range, "%lu-%lu", (unsigned long)(req.offset + s.have),
                     (unsigned long)(req.offset + req.length - 1));
            size_t before = s.have;
            st->requests++;
            long code = get(c, image_url, range, &s, &o);
            if (cancelled(&o)) {
                e = ku_fail(err, KEEL_UPDATE_ERR_CANCELLED, "cancelled at chunk %u", req.index);
                goto out;
            }
            if (s.overflow) {
                e = ku_fail(err, KEEL_UPDATE_ERR_TOO_BIG,
                            "%s: chunk %u: the server sent more than the %u bytes asked for",
                            image_url, req.index, req.length - (uint32_t)before);
                goto out;
            }
            if (code == 206 && s.have == req.length) {
                break;
            }
            if (code == 200 || (code >= 400 && code < 500 && code != 408 && code != 429)) {
                e = ku_fail(err, KEEL_UPDATE_ERR_FETCH, "%s: HTTP %ld for range %s", image_url,
                            code, range);
                goto out;
            }
            /* Dropped or failed: progress resets the attempt count, silence uses it up. */
            attempt = s.have > before ? 0 : attempt + 1;
            if (attempt >= o.max_attempts) {
                e = ku_fail(err, KEEL_UPDATE_ERR_FETCH, "%s: chunk %u: no progress after %u attempts",
                            image_url, req.index, attempt);
                goto out;
            }
            st->retries++;
            pause_ms(keel_update_backoff_ms(attempt, o.backoff_base_ms, o.backoff_max_ms,
                                            randombytes_random()), &o);
        }
        e = keel_update_chunk(a, req.index, chunk, req.length, err);
        if (e != KEEL_UPDATE_OK) {
            goto out;
        }
        st->bytes_stored += req.length;
        if (o.progress) {
            keel_update_status status;
            keel_update_get_status(a, &status);
            o.progress(o.progress_ctx, status.chunks_done, total);
        }
    }
out:
    free(chunk);
    free(image_url);
    curl_easy_cleanup(c);
    return e;
}

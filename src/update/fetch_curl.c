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

/* ---- a stretch of chunks streamed by one range request ----
 * The body lands in a buffer of whole chunks; each time it fills (or the stretch is complete)
 * its chunks are handed to the agent as one run (keel_update_chunks: every hash checked, one
 * write + sync, one record commit). A partial chunk at a drop stays in the buffer and the
 * next request asks for the bytes after it. */
struct stream {
    keel_update_agent *a;
    const keel_update_fetch_opts *o;
    keel_update_fetch_stats *st;
    keel_update_error *err;
    uint8_t *buf;
    size_t cap, have;   /* cap: whole chunks */
    uint32_t next, end; /* the chunk at buf[0]; one past the stretch's last */
    bool overflow;
    keel_update_err e;
    CURL *curl;
    long status; /* set when the answer was not 206 Partial Content */
};

static uint32_t chunk_len_of(const keel_update_agent *a, uint32_t i)
{
    uint64_t off = (uint64_t)i * a->man.chunk_size;
    uint64_t left = a->man.image_size - off;
    return left < a->man.chunk_size ? (uint32_t)left : a->man.chunk_size;
}

/* Stores the whole chunks in the buffer (all of them when `full_only` is false, else only
 * when the buffer is full or the stretch complete). false when the agent refused them. */
static bool flush(struct stream *sm, bool full_only)
{
    uint32_t n = 0;
    size_t bytes = 0;
    while (sm->next + n < sm->end && bytes + chunk_len_of(sm->a, sm->next + n) <= sm->have) {
        bytes += chunk_len_of(sm->a, sm->next + n);
        n++;
    }
    bool complete = sm->next + n == sm->end;
    if (n == 0 || sm->e != KEEL_UPDATE_OK || (full_only && sm->have < sm->cap && !complete)) {
        return sm->e == KEEL_UPDATE_OK;
    }
    sm->e = keel_update_chunks(sm->a, sm->next, n, sm->buf, bytes, sm->err);
    if (sm->e != KEEL_UPDATE_OK) {
        return false;
    }
    memmove(sm->buf, sm->buf + bytes, sm->have - bytes);
    sm->have -= bytes;
    sm->next += n;
    sm->st->bytes_stored += bytes;
    if (sm->o->progress) {
        keel_update_status status;
        keel_update_get_status(sm->a, &status);
        sm->o->progress(sm->o->progress_ctx, status.chunks_done, sm->a->man.chunk_count);
    }
    return true;
}

static size_t on_stream(char *data, size_t size, size_t n, void *ctx)
{
    struct stream *sm = ctx;
    size_t len = size * n, used = 0;
    long code = 0;
    curl_easy_getinfo(sm->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code != 206) {
        /* an error page, or the whole file (a server ignoring ranges): never image bytes */
        sm->status = code ? code : -1;
        return 0;
    }
    while (used < len) {
        if (sm->next >= sm->end) {
            sm->overflow = true; /* more than the stretch asked for */
            return 0;
        }
        size_t room = sm->cap - sm->have, take = len - used < room ? len - used : room;
        memcpy(sm->buf + sm->have, data + used, take);
        sm->have += take;
        used += take;
        sm->st->bytes_received += take;
        if (!flush(sm, true) || cancelled(sm->o)) {
            return 0; /* a chunk failed its hash (or storage), or a cancel: abort */
        }
        if (sm->have == sm->cap && sm->next < sm->end) {
            return 0; /* cannot happen: a full buffer of whole chunks was just stored */
        }
    }
    return len;
}

static long get_stream(CURL *c, const char *url, const char *range, struct stream *sm,
                       const keel_update_fetch_opts *o)
{
    sm->curl = c;
    sm->status = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_RANGE, range);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_stream);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sm);
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
    CURLcode rc = curl_easy_perform(c);
    if (sm->status) {
        return sm->status; /* not a partial content answer: refused before any byte was kept */
    }
    if (rc != CURLE_OK) {
        return 0;
    }
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    return code;
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
    /* whole chunks per run: at least one, and at least 16 runs per image, so that progress
     * and what a killed process loses stay fine-grained for small images */
    uint32_t cap = a->man.image_size / 16;
    uint32_t per = (o.batch_bytes < cap ? o.batch_bytes : cap) / a->man.chunk_size;
    size_t batch = (size_t)(per ? per : 1) * a->man.chunk_size;
    chunk = malloc(batch);
    if (!image_url || !chunk) {
        e = ku_fail(err, KEEL_UPDATE_ERR_FETCH, "out of memory");
        goto out;
    }
    memcpy(image_url, manifest_url, base);
    strcpy(image_url + base, name);

    keel_update_chunk_req req;
    uint32_t total = a->man.chunk_count, csz = a->man.chunk_size;
    while (keel_update_next_chunk(a, &req)) {
        /* the stretch of missing chunks from req.index: one range request for all of it */
        struct stream sm = {.a = a, .o = &o, .st = st, .err = err, .buf = chunk,
                            .cap = batch, .next = req.index, .end = req.index};
        while (sm.end < total && !ku_bit(&a->rec, sm.end)) {
            sm.end++;
        }
        uint64_t stop = (uint64_t)(sm.end - 1) * csz + chunk_len_of(a, sm.end - 1);
        unsigned attempt = 0;
        while (sm.next < sm.end) {
            uint64_t from = (uint64_t)sm.next * csz + sm.have;
            char range[64];
            snprintf(range, sizeof range, "%llu-%llu", (unsigned long long)from,
                     (unsigned long long)(stop - 1));
            uint64_t before = st->bytes_received;
            st->requests++;
            long code = get_stream(c, image_url, range, &sm, &o);
            if (!cancelled(&o)) {
                (void)flush(&sm, false); /* whole chunks received before a drop are kept */
            }
            if (sm.e != KEEL_UPDATE_OK) {
                e = sm.e; /* a chunk refused by its hash, or storage */
                goto out;
            }
            if (cancelled(&o)) {
                e = ku_fail(err, KEEL_UPDATE_ERR_CANCELLED, "cancelled at chunk %u", sm.next);
                goto out;
            }
            if (sm.overflow) {
                e = ku_fail(err, KEEL_UPDATE_ERR_TOO_BIG,
                            "%s: the server sent more than the %s bytes asked for", image_url,
                            range);
                goto out;
            }
            if (sm.next >= sm.end) {
                break;
            }
            if (code == 200 || (code >= 400 && code < 500 && code != 408 && code != 429)) {
                e = ku_fail(err, KEEL_UPDATE_ERR_FETCH, "%s: HTTP %ld for range %s", image_url,
                            code, range);
                goto out;
            }
            /* Dropped or failed: progress resets the attempt count, silence uses it up. */
            attempt = st->bytes_received > before ? 0 : attempt + 1;
            if (attempt >= o.max_attempts) {
                e = ku_fail(err, KEEL_UPDATE_ERR_FETCH, "%s: chunk %u: no progress after %u attempts",
                            image_url, sm.next, attempt);
                goto out;
            }
            st->retries++;
            pause_ms(keel_update_backoff_ms(attempt, o.backoff_base_ms, o.backoff_max_ms,
                                            randombytes_random()), &o);
        }
    }
out:
    free(chunk);
    free(image_url);
    curl_easy_cleanup(c);
    return e;
}

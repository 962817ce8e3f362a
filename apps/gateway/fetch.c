/* The URL fetch; see fetch.h. Directly: libcurl. Over keeld's tunnel: plain HTTP/1.1 written
 * here (http_head.h says why not libcurl), https refused until libcurl can use a handed-over
 * socket without calling connect(). */
#include "fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_head.h"

int gateway_url_target(const char *url, char *out, size_t cap)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = -1;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        rc = snprintf(out, cap, "%s:%s", host, port) < (int)cap ? 0 : -1;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

typedef struct sink {
    uint8_t *buf;
    size_t len, max;
    bool too_big;
} sink;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    sink *s = arg;
    size_t add = size * n;
    if (add > s->max - s->len) {
        s->too_big = true;
        return 0; /* stops the transfer */
    }
    memcpy(s->buf + s->len, p, add);
    s->len += add;
    return add;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for `events`, at most until deadline; false on timeout or error. */
static bool wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            return false;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)(left > 10000 ? 10000 : left));
        if (n > 0) {
            return true;
        }
        if (n < 0 && errno != EINTR) {
            return false;
        }
    }
}

/* GET over an already connected stream (keeld's tunnel), http only. */
static uint8_t *tunnel_get(const char *url, int fd, size_t max, size_t *len, int *status, char *msg,
                           size_t cap)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL;
    uint8_t *body = NULL;
    char *in = NULL;
    *status = 400;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
        snprintf(msg, cap, "not an http(s) URL");
        goto out;
    }
    (void)curl_url_get(u, CURLUPART_PORT, &port, 0); /* only when the URL names one */
    (void)curl_url_get(u, CURLUPART_QUERY, &query, 0);
    if (strcmp(scheme, "http") != 0) {
        *status = 501;
        snprintf(msg, cap,
                 "https through keeld's tunnel is not supported yet (libcurl 7.88 "
                 "calls connect() on a handed-over socket; keeld's seccomp traps it)");
        goto out;
    }
    char hostport[300], target[2048], req[2600];
    snprintf(hostport, sizeof hostport, "%s%s%s", host, port ? ":" : "", port ? port : "");
    snprintf(target, sizeof target, "%s%s%s", path, query ? "?" : "", query ? query : "");
    size_t n = http_get_request(hostport, target, req, sizeof req);
    if (n == 0) {
        snprintf(msg, cap, "the URL cannot be sent as a request line");
        goto out;
    }
    *status = 502;
    int64_t deadline = now_ms() + 120000;
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, req + off, n - off);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!wait_fd(fd, POLLOUT, deadline)) {
                snprintf(msg, cap, "the tunnel did not take the request");
                goto out;
            }
            continue;
        }
        if (w <= 0) {
            snprintf(msg, cap, "the tunnel closed: %s", w < 0 ? strerror(errno) : "end of stream");
            goto out;
        }
        off += (size_t)w;
    }
    /* the head, then the body, in one buffer of the head's limit plus the image's */
    size_t in_cap = HTTP_HEAD_MAX + max, got = 0;
    in = malloc(in_cap + 1);
    if (!in) {
        snprintf(msg, cap, "out of memory");
        goto out;
    }
    http_head h = {0};
    bool have_head = false, eof = false;
    while (!eof) {
        if (have_head && h.has_length && got - h.head_len >= h.content_length) {
            break;
        }
        if (got == in_cap) {
            *status = 413;
            snprintf(msg, cap, "the image is over %zu bytes", max);
            goto out;
        }
        if (!wait_fd(fd, POLLIN, deadline)) {
            snprintf(msg, cap, "the server did not answer in time");
            goto out;
        }
        ssize_t r = read(fd, in + got, in_cap - got);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            continue;
        }
        if (r < 0) {
            snprintf(msg, cap, "reading the tunnel: %s", strerror(errno));
            goto out;
        }
        eof = r == 0;
        got += (size_t)r;
        if (!have_head) {
            http_head_err he = http_head_parse(in, got, &h);
            if (he == HTTP_HEAD_AGAIN && !eof) {
                continue;
            }
            if (he != HTTP_HEAD_OK) {
                snprintf(msg, cap, "bad response: %s",
                         he == HTTP_HEAD_AGAIN ? "the stream ended in its head"
                                               : http_head_err_name(he));
                goto out;
            }
            have_head = true;
            if (h.status != 200) {
                snprintf(msg, cap, "HTTP %d", h.status);
                goto out;
            }
            if (h.has_length && h.content_length > max) {
                *status = 413;
                snprintf(msg, cap, "the image is over %zu bytes", max);
                goto out;
            }
        }
    }
    size_t blen = got - h.head_len;
    if (h.has_length && blen < h.content_length) {
        snprintf(msg, cap, "the stream ended after %zu of %llu bytes", blen,
                 (unsigned long long)h.content_length);
        goto out;
    }
    if (h.has_length) {
        blen = (size_t)h.content_length;
    }
    if (blen == 0) {
        snprintf(msg, cap, "empty body");
        goto out;
    }
    body = malloc(blen);
    if (!body) {
        snprintf(msg, cap, "out of memory");
        goto out;
    }
    memcpy(body, in + h.head_len, blen);
    *len = blen;
out:
    free(in);
    close(fd);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(u);
    return body;
}

uint8_t *gateway_fetch(const char *url, int tunnel_fd, const char *ca_file, size_t max, size_t *len,
                       int *status, char *msg, size_t cap)
{
    char target[300];
    if (gateway_url_target(url, target, sizeof target) != 0) {
        if (tunnel_fd >= 0) {
            close(tunnel_fd);
        }
        *status = 400;
        snprintf(msg, cap, "not an http(s) URL");
        return NULL;
    }
    if (tunnel_fd >= 0) {
        return tunnel_get(url, tunnel_fd, max, len, status, msg, cap);
    }
    sink s = {.buf = malloc(max), .max = max};
    CURL *c = curl_easy_init();
    if (!s.buf || !c) {
        free(s.buf);
        curl_easy_cleanup(c);
        *status = 502;
        snprintf(msg, cap, "out of memory");
        return NULL;
    }
    char err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect would need another tunnel */
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (ca_file) {
        curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);
    }
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK || s.len == 0) {
        *status = s.too_big ? 413 : 502;
        if (s.too_big) {
            snprintf(msg, cap, "the image is over %zu bytes", max);
        } else if (code >= 400) {
            snprintf(msg, cap, "HTTP %ld", code);
        } else {
            snprintf(msg, cap, "%s",
                     rc != CURLE_OK ? (err[0] ? err : curl_easy_strerror(rc)) : "empty body");
        }
        free(s.buf);
        return NULL;
    }
    *len = s.len;
    return s.buf;
}

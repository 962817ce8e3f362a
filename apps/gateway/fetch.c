/* The URL fetch; see fetch.h. Always libcurl: directly, or over keeld's tunnel, a socket
 * keeld connected and handed over, lent to curl by keel_app_curl_attach (libkeel's libcurl
 * helper). TLS runs in the gateway, end to end: keeld sees only ciphertext. */
#include "fetch.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keel/app_curl.h"

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

uint8_t *gateway_fetch(const char *url, int tunnel_fd, const char *ca_file, size_t max, size_t *len,
                       int *status, char *msg, size_t cap)
{
    char target[300];
    if (keel_app_curl_target(url, target, sizeof target) != KEEL_APP_OK) {
        if (tunnel_fd >= 0) {
            close(tunnel_fd);
        }
        *status = 400;
        snprintf(msg, cap, "not an http(s) URL");
        return NULL;
    }
    keel_app_curl t = {.fd = -1};
    sink s = {.buf = malloc(max), .max = max};
    CURL *c = curl_easy_init();
    if (!s.buf || !c) {
        free(s.buf);
        curl_easy_cleanup(c);
        if (tunnel_fd >= 0) {
            close(tunnel_fd);
        }
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
        curl_easy_setopt(c, CURLOPT_CAPATH, NULL); /* that CA only, not the system's as well */
    }
    /* verification is curl's default; said here because an image URL must never skip it */
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (tunnel_fd >= 0 && keel_app_curl_attach(&t, c, url, tunnel_fd) != KEEL_APP_OK) {
        curl_easy_cleanup(c);
        free(s.buf);
        *status = 502;
        snprintf(msg, cap, "cannot give the tunnel to libcurl");
        return NULL;
    }
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    keel_app_curl_release(&t); /* the tunnel, if curl never took it */
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

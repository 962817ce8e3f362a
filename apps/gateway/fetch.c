/* The URL fetch; see fetch.h. */
#include "fetch.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static curl_socket_t use_tunnel(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
    (void)purpose, (void)addr;
    int *fd = arg;
    int s = *fd;
    *fd = -1; /* curl owns it now (and closes it) */
    return s >= 0 ? s : CURL_SOCKET_BAD;
}

static int already_connected(void *arg, curl_socket_t fd, curlsocktype purpose)
{
    (void)arg, (void)fd, (void)purpose;
    return CURL_SOCKOPT_ALREADY_CONNECTED;
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
    }
    if (tunnel_fd >= 0) {
        curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, use_tunnel);
        curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &tunnel_fd);
        curl_easy_setopt(c, CURLOPT_SOCKOPTFUNCTION, already_connected);
        curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    }
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    if (tunnel_fd >= 0) {
        close(tunnel_fd); /* curl never took it */
    }
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

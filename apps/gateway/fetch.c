/* The URL fetch; see fetch.h. Always libcurl: directly, or over keeld's tunnel, a socket
 * keeld connected and handed over, given to curl through the open/sockopt/close socket
 * callbacks. TLS runs in the gateway, end to end: keeld sees only ciphertext. */
#include "fetch.h"

#include <arpa/inet.h>
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

/* The tunnel, handed to curl once: the first socket curl asks for is keeld's connected one
 * (a second, e.g. another address of the name, gets CURL_SOCKET_BAD: there is one tunnel). */
typedef struct tunnel {
    int fd;
    bool given;
} tunnel;

static curl_socket_t tunnel_open(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
    (void)addr; /* the address curl resolved is not used: keeld chose the peer */
    tunnel *t = arg;
    if (purpose != CURLSOCKTYPE_IPCXN || t->given || t->fd < 0) {
        return CURL_SOCKET_BAD;
    }
    t->given = true;
    return t->fd;
}

/* Already connected; curl 7.88 calls connect() all the same (curl #10626), which keeld's
 * seccomp filter answers with 0 (src/supervisor/seccomp.c). */
static int tunnel_sockopt(void *arg, curl_socket_t fd, curlsocktype purpose)
{
    (void)arg, (void)fd, (void)purpose;
    return CURL_SOCKOPT_ALREADY_CONNECTED;
}

static int tunnel_close(void *arg, curl_socket_t fd)
{
    tunnel *t = arg;
    if (fd == t->fd) {
        t->fd = -1;
    }
    return close(fd);
}

/* A name in the URL would make curl ask DNS, which the sandbox does not have: pin it to any
 * address (never used, the tunnel is the connection); the name still goes in SNI, the Host
 * header and the certificate check. */
static struct curl_slist *pin_name(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL;
    struct curl_slist *list = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        struct in_addr a4;
        if (host[0] != '[' && inet_pton(AF_INET, host, &a4) != 1) {
            char entry[400];
            if (snprintf(entry, sizeof entry, "%s:%s:127.0.0.1", host, port) < (int)sizeof entry) {
                list = curl_slist_append(NULL, entry);
            }
        }
    }
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return list;
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
    tunnel t = {.fd = tunnel_fd};
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
    struct curl_slist *pinned = NULL;
    if (tunnel_fd >= 0) {
        pinned = pin_name(url);
        curl_easy_setopt(c, CURLOPT_RESOLVE, pinned);
        curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, tunnel_open);
        curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &t);
        curl_easy_setopt(c, CURLOPT_SOCKOPTFUNCTION, tunnel_sockopt);
        curl_easy_setopt(c, CURLOPT_CLOSESOCKETFUNCTION, tunnel_close);
        curl_easy_setopt(c, CURLOPT_CLOSESOCKETDATA, &t);
        curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    }
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    curl_slist_free_all(pinned);
    if (t.fd >= 0) {
        close(t.fd); /* curl never took it (it failed before connecting) */
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

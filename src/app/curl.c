/* libcurl over a keeld tunnel; see include/keel/app_curl.h. A library of its own
 * (keel_app_curl) so that libkeel never links libcurl.
 *
 * curl asks for a socket through CURLOPT_OPENSOCKETFUNCTION; the first one it asks for a
 * connection gets the tunnel, any other CURL_SOCKET_BAD (one tunnel, one connection: a second
 * would be another address of the name, which keeld did not connect). The sockopt callback
 * says the socket is connected; libcurl 7.88 then calls connect() all the same (curl#10626),
 * which keeld's seccomp filter answers with 0. curl closes the socket through
 * CURLOPT_CLOSESOCKETFUNCTION, which marks it closed here, so release() closes it only when
 * curl never took it (a failure before connecting) and never twice. */
#include "keel/app_curl.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static curl_socket_t on_open(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
    (void)addr; /* where curl would have connected: keeld chose the peer */
    keel_app_curl *t = arg;
    if (purpose != CURLSOCKTYPE_IPCXN || t->given || t->fd < 0) {
        return CURL_SOCKET_BAD;
    }
    t->given = true;
    return t->fd;
}

static int on_sockopt(void *arg, curl_socket_t fd, curlsocktype purpose)
{
    (void)arg, (void)fd, (void)purpose;
    return CURL_SOCKOPT_ALREADY_CONNECTED;
}

static int on_close(void *arg, curl_socket_t fd)
{
    keel_app_curl *t = arg;
    if (fd == t->fd) {
        t->fd = -1;
    }
    return close(fd);
}

/* The URL's scheme, host and port (the scheme's default when none is given); false unless
 * http(s). The caller curl_free()s the three. */
static bool url_parts(const char *url, char **scheme, char **host, char **port)
{
    *scheme = *host = *port = NULL;
    CURLU *u = curl_url();
    bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, scheme, 0) == CURLUE_OK &&
              (strcmp(*scheme, "http") == 0 || strcmp(*scheme, "https") == 0) &&
              curl_url_get(u, CURLUPART_HOST, host, 0) == CURLUE_OK && (*host)[0] != '\0' &&
              curl_url_get(u, CURLUPART_PORT, port, CURLU_DEFAULT_PORT) == CURLUE_OK;
    curl_url_cleanup(u);
    return ok;
}

keel_app_status keel_app_curl_target(const char *url, char *out, size_t cap)
{
    if (!url || !out || cap == 0) {
        return KEEL_APP_ERR_INVALID_ARG;
    }
    char *scheme, *host, *port;
    keel_app_status st = KEEL_APP_ERR_INVALID_ARG;
    if (url_parts(url, &scheme, &host, &port)) {
        int n = snprintf(out, cap, "%s:%s", host, port);
        st = n >= 0 && (size_t)n < cap ? KEEL_APP_OK : KEEL_APP_ERR_NO_SPACE;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    return st;
}

/* A host name needs a CURLOPT_RESOLVE entry (no DNS in the sandbox; the address is never used,
 * the tunnel is the connection); an address needs none. NULL entry and true for an address. */
static bool pin_name(const char *url, struct curl_slist **pin)
{
    char *scheme, *host, *port;
    bool ok = url_parts(url, &scheme, &host, &port);
    *pin = NULL;
    struct in_addr a4;
    if (ok && host[0] != '[' && inet_pton(AF_INET, host, &a4) != 1) {
        char entry[512];
        int n = snprintf(entry, sizeof entry, "%s:%s:127.0.0.1", host, port);
        ok = n > 0 && (size_t)n < sizeof entry && (*pin = curl_slist_append(NULL, entry)) != NULL;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    return ok;
}

keel_app_status keel_app_curl_attach(keel_app_curl *t, CURL *c, const char *url, int fd)
{
    if (!t) {
        if (fd >= 0) {
            close(fd);
        }
        return KEEL_APP_ERR_INVALID_ARG;
    }
    *t = (keel_app_curl){.fd = fd};
    if (!c || !url || fd < 0 || !pin_name(url, &t->pin)) {
        keel_app_curl_release(t);
        return KEEL_APP_ERR_INVALID_ARG;
    }
    CURLcode rc = curl_easy_setopt(c, CURLOPT_URL, url);
    if (rc == CURLE_OK) {
        rc = curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    }
    if (rc == CURLE_OK && t->pin) {
        rc = curl_easy_setopt(c, CURLOPT_RESOLVE, t->pin);
    }
    /* the tunnel serves this transfer and no other, to this host only */
    if (rc == CURLE_OK) {
        rc = curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    }
    if (rc == CURLE_OK) {
        rc = curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    }
    if (rc == CURLE_OK) {
        rc = curl_easy_setopt(c, CURLOPT_PROXY, ""); /* not $https_proxy: the tunnel is the way */
    }
    /* curl's defaults, said again: a tunnelled https transfer is checked in the app */
    if (rc == CURLE_OK) {
        rc = curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    }
    if (rc == CURLE_OK) {
        rc = curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    if (rc == CURLE_OK) {
        rc = curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_open);
    }
    if (rc == CURLE_OK) {
        rc = curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, t);
    }
    if (rc == CURLE_OK) {
        rc = curl_easy_setopt(c, CURLOPT_SOCKOPTFUNCTION, on_sockopt);
    }
    if (rc == CURLE_OK) {
        rc = curl_easy_setopt(c, CURLOPT_CLOSESOCKETFUNCTION, on_close);
    }
    if (rc == CURLE_OK) {
        rc = curl_easy_setopt(c, CURLOPT_CLOSESOCKETDATA, t);
    }
    if (rc != CURLE_OK) {
        /* leave no callback pointing at t */
        (void)curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, NULL);
        (void)curl_easy_setopt(c, CURLOPT_SOCKOPTFUNCTION, NULL);
        (void)curl_easy_setopt(c, CURLOPT_CLOSESOCKETFUNCTION, NULL);
        (void)curl_easy_setopt(c, CURLOPT_RESOLVE, NULL);
        keel_app_curl_release(t);
        return KEEL_APP_ERR_UNSUPPORTED; /* this libcurl lacks an option */
    }
    return KEEL_APP_OK;
}

keel_app_status keel_app_curl_open(keel_app *app, CURL *c, const char *url, keel_app_curl *t)
{
    if (!t) {
        return KEEL_APP_ERR_INVALID_ARG;
    }
    *t = (keel_app_curl){.fd = -1};
    char target[300];
    keel_app_status st = keel_app_curl_target(url, target, sizeof target);
    if (st != KEEL_APP_OK) {
        return st;
    }
    if (!c) {
        return KEEL_APP_ERR_INVALID_ARG;
    }
    int fd = -1;
    st = keel_app_cloud_open(app, "http", target, &fd);
    if (st != KEEL_APP_OK) {
        return st;
    }
    return keel_app_curl_attach(t, c, url, fd);
}

void keel_app_curl_release(keel_app_curl *t)
{
    if (!t) {
        return;
    }
    if (t->fd >= 0) {
        close(t->fd);
        t->fd = -1;
    }
    curl_slist_free_all(t->pin);
    t->pin = NULL;
}

/* libcurl over a keeld tunnel: the part of the app SDK that needs libcurl, in a library of its
 * own (keel_app_curl) so that libkeel itself never depends on libcurl.
 *
 * Under keeld an app has no network and cannot create sockets. keeld connects to a host the
 * manifest lists and hands the socket over (keel_app_cloud_open(app, "http", "host:port")).
 * These calls give that socket to a CURL handle, so the app keeps all of libcurl: https with
 * the certificate verified and the name checked in the app (keeld sees only ciphertext),
 * redirects refused, timeouts, its own write callback.
 *
 *   keel_app_curl t;
 *   keel_app_status st = keel_app_curl_open(app, curl, url, &t); // tunnel + curl options
 *   ... curl_easy_setopt(curl, CURLOPT_CAINFO, "/app/ca.pem") and the app's own options ...
 *   CURLcode rc = curl_easy_perform(curl);
 *   curl_easy_cleanup(curl);
 *   keel_app_curl_release(&t);                                   // always, after cleanup
 *
 * One tunnel serves one transfer (connection reuse is turned off): open anew for each.
 * The URL's host name is pinned to a placeholder address (CURLOPT_RESOLVE), since the sandbox
 * has no DNS; the name still goes into SNI, the Host header and the certificate check.
 * libcurl 7.88 (Debian 12) calls connect() on the handed-over socket although the socket
 * callback says it is connected (curl#10626); keeld's seccomp filter answers that connect()
 * with 0 (docs/security.md), so these calls work inside keeld's sandbox (and with libcurl >= 8
 * anywhere), not in a plain process with an older libcurl.
 */
#ifndef KEEL_APP_CURL_H
#define KEEL_APP_CURL_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#include "keel/app.h"

/* One tunnel lent to one CURL handle. Owned by the caller; the fields are private. */
typedef struct keel_app_curl {
    int fd;                 /* the tunnel until curl closes it; -1 once closed */
    bool given;             /* curl has taken it */
    struct curl_slist *pin; /* the CURLOPT_RESOLVE entry, NULL for an address URL */
} keel_app_curl;

/* "host:port" for keel_app_cloud_open from an http(s) URL (the scheme's port when the URL
 * names none; an IPv6 host keeps its brackets). KEEL_APP_ERR_INVALID_ARG for another scheme
 * or a URL that does not parse, KEEL_APP_ERR_NO_SPACE when out is too small. */
KEEL_NODISCARD keel_app_status keel_app_curl_target(const char *url, char *out, size_t cap);

/* Lends the connected socket fd (a tunnel to the URL's host) to c for url: sets CURLOPT_URL,
 * the open/sockopt/close socket callbacks, CURLOPT_RESOLVE, http(s) only, no redirects, no
 * connection reuse, and certificate and host verification on. The fd is t's from here on
 * (keel_app_curl_release closes it if curl did not). KEEL_APP_ERR_INVALID_ARG for a NULL
 * argument, a negative fd or a URL keel_app_curl_target refuses (fd closed all the same). */
KEEL_NODISCARD keel_app_status keel_app_curl_attach(keel_app_curl *t, CURL *c, const char *url,
                                                    int fd);

/* keel_app_cloud_open(app, "http", <the URL's host:port>) then keel_app_curl_attach: one call
 * from a URL to a handle ready to perform. keeld's refusal comes back as it is
 * (KEEL_APP_ERR_DENIED: the manifest does not list the host). t is ready for
 * keel_app_curl_release whatever the result. */
KEEL_NODISCARD keel_app_status keel_app_curl_open(keel_app *app, CURL *c, const char *url,
                                                  keel_app_curl *t);

/* After curl_easy_cleanup (or when the handle was never performed): closes the tunnel if curl
 * did not, frees the pin. Safe to call twice. */
void keel_app_curl_release(keel_app_curl *t);

#endif

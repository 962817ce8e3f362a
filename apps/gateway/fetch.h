/* updateSensorFirmware's image from a URL: an HTTP(S) GET with libcurl into memory, bounded
 * in size and time. Under keeld the gateway has no network: keeld opens a tunnel to the host
 * (keel_app_cloud_open(app, "http", "host:port", &fd), allowed by the manifest's
 * "cloud": {"http": [...]}) and libcurl runs over that socket (keel_app_curl_attach,
 * include/keel/app_curl.h), TLS included: the server's certificate is verified against --ca
 * (or the system's CAs) and its name checked against the URL's host, in the gateway. */
#ifndef KEEL_GATEWAY_FETCH_H
#define KEEL_GATEWAY_FETCH_H

#include <stddef.h>
#include <stdint.h>

/* GET url into a malloc'd buffer of at most max bytes (*len bytes used). tunnel_fd >= 0: a
 * connected stream to the URL's host to use instead of connecting (taken: always closed).
 * ca_file: the only CA trusted for https, NULL for the system's. NULL on failure with "why" in
 * msg and an HTTP-like status in *status (400 bad URL, 413 too big, 502 the fetch failed,
 * certificate not verified included). */
uint8_t *gateway_fetch(const char *url, int tunnel_fd, const char *ca_file, size_t max, size_t *len,
                       int *status, char *msg, size_t cap);

#endif

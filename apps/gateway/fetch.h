/* updateSensorFirmware's image from a URL: an HTTP(S) GET with libcurl into memory, bounded
 * in size and time. Under keeld the gateway has no network: keeld opens a tunnel to the host
 * (keel_app_cloud_open(app, "http", "host:port", &fd), allowed by the manifest's
 * "cloud": {"http": [...]}) and libcurl runs over that socket (docs/apps.md, "libcurl over a
 * tunnel"), TLS included: the server's certificate is verified against --ca (or the system's
 * CAs) and its name checked against the URL's host, in the gateway, not in keeld. */
#ifndef KEEL_GATEWAY_FETCH_H
#define KEEL_GATEWAY_FETCH_H

#include <stddef.h>
#include <stdint.h>

/* The host and port a URL names ("host:port", the scheme's default port when none is given),
 * for keeld's tunnel. 0, or -1 if the URL is not http(s) or cannot be parsed. */
int gateway_url_target(const char *url, char *out, size_t cap);

/* GET url into a malloc'd buffer of at most max bytes (*len bytes used). tunnel_fd >= 0: a
 * connected stream to the URL's host to use instead of connecting (taken: always closed).
 * ca_file: the only CA trusted for https, NULL for the system's. NULL on failure with "why" in
 * msg and an HTTP-like status in *status (400 bad URL, 413 too big, 502 the fetch failed,
 * certificate not verified included). */
uint8_t *gateway_fetch(const char *url, int tunnel_fd, const char *ca_file, size_t max, size_t *len,
                       int *status, char *msg, size_t cap);

#endif

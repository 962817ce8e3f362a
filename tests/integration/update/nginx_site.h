/* Serves a directory with a real nginx on an ephemeral loopback port, started with the test
 * fixture (so it dies with the test). Shared by the update tests and bench/update. */
#ifndef KEEL_TEST_NGINX_SITE_H
#define KEEL_TEST_NGINX_SITE_H

#include <stdint.h>

#include "fixture.h"

/* Writes WORK/nginx.conf serving ROOT and starts nginx; returns 0 with *port set. */
int nginx_site_start(kf_proc *p, const char *work, const char *root, uint16_t *port);
/* The same over HTTPS with a certificate and key in PEM files. */
int nginx_site_start_tls(kf_proc *p, const char *work, const char *root, const char *cert,
                         const char *key, uint16_t *port);

#endif

/* keeld's control socket, spoken by `keel app` and by tests: a Unix stream socket (mode 0600,
 * so only root or keeld's user operate the device). One request per connection:
 *
 *   request:  VERB [ARG ...]\n            (fields separated by single spaces)
 *   answer:   OK\n<body>                  or   ERR <code> <message>\n
 *
 * codes: usage, notfound, state, io, verify, fail. Verbs: list, status, start NAME,
 * stop NAME, restart NAME, crashes NAME [N], logs NAME [N], install DIR,
 * notify NAME TYPE ARG (ARG "now": keeld's CLOCK_MONOTONIC ns, for latency).
 * list prints: name version state pid restarts crashes uptime_ms ready(0/1). */
#ifndef KEEL_SUPERVISOR_CTL_H
#define KEEL_SUPERVISOR_CTL_H

#include <stddef.h>

/* Client side: sends `request` (no newline needed) to the socket at path, reads the whole
 * answer into out (NUL-terminated, truncated to cap). Returns 0 when keeld answered OK, 1 when
 * it answered ERR (out holds the line), -1 when keeld could not be reached (errno set). */
int keel_supervisor_ctl(const char *path, const char *request, char *out, size_t cap,
                        int timeout_ms);
/* The socket keel app uses: $KEEL_SOCKET, else /run/keel/keeld.sock. */
const char *keel_supervisor_ctl_default_path(void);

#endif

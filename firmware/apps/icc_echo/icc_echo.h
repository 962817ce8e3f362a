/* The echo service of the intercore test firmware, shared by its QEMU and sim mains. */
#ifndef KEEL_FW_ICC_ECHO_H
#define KEEL_FW_ICC_ECHO_H

#include "icc_rt.h"

enum { ICC_ECHO_DATA = 1, ICC_ECHO_QUIT = 2, ICC_ECHO_REPLY = 3 };

/* Echoes every message (requests get a reply) until a QUIT; prints the count. Returns the
 * exit code: 0 after QUIT, 4 on a channel error. */
int icc_echo_serve(keel_icc_rt *c);

#endif

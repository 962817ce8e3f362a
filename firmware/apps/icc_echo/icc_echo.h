/* The echo service of the intercore test firmware, shared by its QEMU and sim mains. */
#ifndef KEEL_FW_ICC_ECHO_H
#define KEEL_FW_ICC_ECHO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "icc_rt.h"

/* DATA is echoed as REPLY; QUIT ends the service; STALL blocks the serving thread for ever (the
 * process or core lives on: a watchdog must notice); FAULT executes an undefined instruction
 * (HardFault on the Cortex-M, SIGILL on the sim port); CORRUPT publishes an impossible index
 * on the reply ring, as a buggy or hostile core would. STALL, FAULT and CORRUPT exist for the
 * tests of the RT core's heartbeat, crash handling and of what trusts the core's memory. */
enum {
    ICC_ECHO_DATA = 1,
    ICC_ECHO_QUIT = 2,
    ICC_ECHO_REPLY = 3,
    ICC_ECHO_STALL = 4,
    ICC_ECHO_FAULT = 5,
    ICC_ECHO_CORRUPT = 6
};

/* What a watchdog thread looks at: the serving thread is alive if it is waiting for a message
 * or has handled one since the watchdog's last look. */
typedef struct icc_echo_watch {
    volatile uint32_t progress; /* +1 per message handled */
    volatile uint32_t busy;     /* 1 between taking a message and finishing with it */
    void (*block)(void);        /* STALL: blocks the calling thread for ever (RTOS suspend) */
} icc_echo_watch;

/* Echoes every message (requests get a reply) until a QUIT; prints the count. Returns the
 * exit code: 0 after QUIT, 4 on a channel error. w may be NULL (no watchdog). buf (cap bytes)
 * holds one message: one per serving thread. */
int icc_echo_serve(keel_icc_rt *c, icc_echo_watch *w, uint8_t *buf, size_t cap);

/* For the watchdog: true if the serving thread made progress since *last or is idle. */
bool icc_echo_alive(icc_echo_watch *w, uint32_t *last);

#endif

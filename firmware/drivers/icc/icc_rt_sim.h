/* The intercore doorbell on the RTOS sim port (host tree): an eventfd from the connected core,
 * watched by the sim, raises virtual interrupt `irq`; its handler wakes the waiting thread.
 * The channel's link socket, if given, raises `irq + 1` when the connected core dies and the
 * doorbell then reports the peer gone. Call after keel_sim_create(), before the run. */
#ifndef KEEL_FW_ICC_RT_SIM_H
#define KEEL_FW_ICC_RT_SIM_H

#include <stdbool.h>

#include "icc_rt.h"
#include "keel/rtos.h"

typedef struct keel_icc_rt_sim_bell {
    keel_rtos_sem sem;
    int bell_in, bell_out, link;
    volatile bool peer_gone;
} keel_icc_rt_sim_bell;

KEEL_NODISCARD keel_icc_err keel_icc_rt_sim_bell_init(keel_icc_rt_sim_bell *b,
                                                      keel_icc_rt_bell *bell, int bell_in,
                                                      int bell_out, int link, unsigned irq);

#endif

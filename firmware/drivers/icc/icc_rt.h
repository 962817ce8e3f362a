/* The real-time core's end of an intercore channel: the portable ring core (keel/icc.h) plus
 * a doorbell the board or the RTOS provides. Blocking send and receive sleep in the doorbell's
 * wait function after announcing the wait in the region, so the connected core rings only when
 * this side is actually asleep.
 *
 * Doorbells: the mps2-an386 board under QEMU uses a UART (icc_bell_cmsdk_uart.c); the RTOS sim
 * port raises a virtual interrupt; a real SoC uses its mailbox peripheral. */
#ifndef KEEL_FW_ICC_RT_H
#define KEEL_FW_ICC_RT_H

#include <stddef.h>
#include <stdint.h>

#include "keel/icc.h"

typedef struct keel_icc_rt_bell {
    void (*ring)(void *ctx); /* tell the other core there is news */
    void (*wait)(void *ctx); /* sleep until the other core rings; spurious returns are fine */
    bool (*gone)(void *ctx); /* optional: true once the other side is known to be dead */
    void *ctx;
} keel_icc_rt_bell;

typedef struct keel_icc_rt {
    keel_icc_ring ring;
    keel_icc_rt_bell bell;
} keel_icc_rt;

/* Attaches to a region the connected core created (validated; see keel_icc_ring_attach). */
KEEL_NODISCARD keel_icc_err keel_icc_rt_attach(keel_icc_rt *c, void *mem, size_t size,
                                               keel_icc_side side, const keel_icc_rt_bell *bell);

/* Blocking: waits for space / for a message. Errors as keel_icc_ring_send / _recv, never
 * ERR_WOULD_BLOCK; ERR_PEER_GONE if the doorbell reports the other side dead and nothing is
 * left to receive (or no space will ever come). */
KEEL_NODISCARD keel_icc_err keel_icc_rt_send(keel_icc_rt *c, uint16_t type, uint16_t flags,
                                             uint32_t corr, const void *data, size_t len);
KEEL_NODISCARD keel_icc_err keel_icc_rt_recv(keel_icc_rt *c, keel_icc_msg *msg, void *buf,
                                             size_t cap);
/* Non-blocking receive (ERR_WOULD_BLOCK when empty), for a loop that polls. */
KEEL_NODISCARD keel_icc_err keel_icc_rt_try_recv(keel_icc_rt *c, keel_icc_msg *msg, void *buf,
                                                 size_t cap);

/* The doorbell on a CMSDK APB UART (mps2-an386 under QEMU, which has no mailbox): the
 * connected core writes a byte to the UART's character device to ring us (RX interrupt); we
 * write a byte to ring it. Bare metal: the wait sleeps in WFI. With the RTOS, see
 * icc_rt_rtos.h (the interrupt gives a semaphore a thread waits on). */
typedef struct keel_icc_rt_uart {
    uintptr_t base;
    volatile uint32_t rung;
    void (*wake)(void *arg); /* called from the RX interrupt, after rung is set */
    void *wake_arg;
} keel_icc_rt_uart;

void keel_icc_rt_uart_bell_init(keel_icc_rt_uart *u, keel_icc_rt_bell *bell, uintptr_t uart_base,
                                unsigned rx_irq);

#endif

/* The UART doorbell with Keel's RTOS on the Cortex-M (mps2-an386 under QEMU): the RX
 * interrupt gives a semaphore; a thread waiting for the channel takes it, so other threads run
 * meanwhile instead of the core sleeping in WFI. */
#ifndef KEEL_FW_ICC_RT_RTOS_H
#define KEEL_FW_ICC_RT_RTOS_H

#include "icc_rt.h"
#include "keel/rtos.h"

typedef struct keel_icc_rt_uart_rtos {
    keel_icc_rt_uart uart;
    keel_rtos_sem sem;
} keel_icc_rt_uart_rtos;

/* Call after keel_rtos_init(). */
KEEL_NODISCARD keel_icc_err keel_icc_rt_uart_rtos_bell_init(keel_icc_rt_uart_rtos *u,
                                                            keel_icc_rt_bell *bell,
                                                            uintptr_t uart_base, unsigned rx_irq);

/* Several channels rung through one UART (under keel-qemu every channel in the table shares
 * UART1): the RX interrupt gives every member's semaphore, and each channel's thread waits on
 * its own, so a ring meant for one channel costs the others one spurious look at their ring.
 * Ringing out is one byte whichever channel rings: the connected core looks at every ring. */
#define KEEL_ICC_RT_UART_GROUP_MAX 8u

typedef struct keel_icc_rt_uart_member {
    keel_rtos_sem sem;
    struct keel_icc_rt_uart_group *group;
} keel_icc_rt_uart_member;

typedef struct keel_icc_rt_uart_group {
    keel_icc_rt_uart uart;
    keel_icc_rt_bell out; /* the UART's own ring */
    keel_icc_rt_uart_member member[KEEL_ICC_RT_UART_GROUP_MAX];
    unsigned count;
} keel_icc_rt_uart_group;

/* Fills bells[0..count-1], one per channel. Call after keel_rtos_init(). */
KEEL_NODISCARD keel_icc_err keel_icc_rt_uart_group_init(keel_icc_rt_uart_group *g,
                                                        keel_icc_rt_bell *bells, unsigned count,
                                                        uintptr_t uart_base, unsigned rx_irq);

#endif

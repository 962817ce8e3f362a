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

#endif

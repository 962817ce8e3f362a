/* Keel's Thread-Metric suite: the eight tests of the published Thread-Metric description,
 * written against Keel's kernel API, with the harness of ../shared anchors (mps2-an386 under
 * QEMU -icount shift=0, 10 ms SysTick, a 3 s window, scores x10 = counts per 30 s, software
 * interrupt = IRQ 30 at priority 0x80 pended in the NVIC followed by DSB/ISB).
 *
 * Each test is its own firmware image: tm_harness.c (main, the reporting thread, the IRQ 30
 * handler) plus one tm_<test>.c that defines tm_test_name, tm_test_init() and
 * tm_test_count(). */
#ifndef KEEL_TM_H
#define KEEL_TM_H

#include <stdint.h>

#include "keel/rtos.h"

#define TM_STACK 1024u
/* 3 s at 100 Hz. A shorter window (-DTM_WINDOW_TICKS=30) gives quick, nearly equal figures
 * while tuning; scores are always scaled to counts per 30 s. */
#ifndef TM_WINDOW_TICKS
#define TM_WINDOW_TICKS 300u
#endif
#define TM_SWI_IRQ 30u

extern const char tm_test_name[];
/* Creates the test's threads and objects; called before the kernel starts. */
void tm_test_init(void);
/* The test's total of counter increments so far. */
uint32_t tm_test_count(void);
/* The test's interrupt handler (interrupt tests only; a weak default otherwise). */
void tm_test_isr(void);

/* Creates thread i (0..7) of the test with its own stack. */
void tm_thread_create(int i, keel_rtos_thread *t, void (*fn)(void *), void *arg, uint8_t prio,
                      bool suspended);
/* Pends IRQ 30 (priority 0x80) and waits for the write to take effect. */
static inline void tm_cause_interrupt(void)
{
    *(volatile uint32_t *)0xE000E200u = 1u << TM_SWI_IRQ; /* NVIC_ISPR0 */
    __asm volatile("dsb\n\tisb" ::: "memory");
}

#endif

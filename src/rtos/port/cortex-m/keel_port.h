/* Cortex-M4F port contract (see src/rtos/rtos_private.h).
 *
 * Critical sections raise BASEPRI to KEEL_PORT_SYSCALL_PRIO instead of disabling interrupts,
 * so interrupts more urgent than that (numerically lower priority values: 0x00..0x1f with the
 * default) are never delayed by the kernel; they must not call the kernel. Interrupts that
 * call the kernel are given priorities KEEL_PORT_SYSCALL_PRIO..0xff. PendSV (the context
 * switch) runs at 0xff, the least urgent, so a switch asked for inside a critical section or
 * an interrupt happens when both are over. */
#ifndef KEEL_PORT_CM_H
#define KEEL_PORT_CM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef KEEL_PORT_SYSCALL_PRIO
#define KEEL_PORT_SYSCALL_PRIO 0x20u
#endif
/* Per-thread run time in CPU cycles, accounted in PendSV (keel_rtos_thread_stats_get). Off by
 * default: it adds about 25 instructions to every switch. The keel_rtos_stats library is
 * the kernel built with it on. */
#ifndef KEEL_RTOS_RUNTIME_STATS
#define KEEL_RTOS_RUNTIME_STATS 0
#endif
#ifndef KEEL_RTOS_TICK_HZ
#define KEEL_RTOS_TICK_HZ 100u
#endif

typedef uint32_t keel_port_irq_t;

#define KEEL_PORT_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define KEEL_PORT_ICSR_PENDSVSET (1u << 28)

static inline __attribute__((always_inline)) keel_port_irq_t keel_port_lock(void)
{
    uint32_t prev, level = KEEL_PORT_SYSCALL_PRIO;
    __asm volatile("mrs %0, basepri\n\tmsr basepri_max, %1" : "=&r"(prev) : "r"(level) : "memory");
    return prev;
}

static inline __attribute__((always_inline)) void keel_port_unlock(keel_port_irq_t prev)
{
    __asm volatile("msr basepri, %0" : : "r"(prev) : "memory");
}

/* Leaves the critical section where the caller must not run on until a pending switch has
 * happened (it just blocked, suspended or ended itself): the ISB makes the processor take the
 * now-unmasked PendSV before the next instruction, as the architecture requires for an MSR
 * that lowers BASEPRI. */
static inline __attribute__((always_inline)) void keel_port_unlock_switch(keel_port_irq_t prev)
{
    __asm volatile("msr basepri, %0\n\tisb" : : "r"(prev) : "memory");
}

static inline __attribute__((always_inline)) bool keel_port_in_isr(void)
{
    uint32_t ipsr;
    __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
    return ipsr != 0;
}

static inline __attribute__((always_inline)) void keel_port_pend_switch(void)
{
    KEEL_PORT_ICSR = KEEL_PORT_ICSR_PENDSVSET;
}

static inline __attribute__((always_inline)) void keel_port_service_cost(void)
{
}

static inline void keel_port_stack_prepare(void *stack, size_t size)
{
    (void)stack;
    (void)size;
}

struct keel_rtos_thread;
void keel_port_init(void);
void keel_port_start(void);
uint64_t keel_port_timestamp(void);
void keel_port_thread_init(struct keel_rtos_thread *t);
_Noreturn void keel_port_fatal(const char *what, const char *thread);

#endif

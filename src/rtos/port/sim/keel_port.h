/* Sim port contract (see src/rtos/rtos_private.h). A critical section is a nesting count:
 * on the host nothing can interrupt the kernel except at the simulator's own interrupt
 * points, which are never inside one. A requested switch is performed when the outermost
 * section ends, outside interrupt context and only while a run is in progress. */
#ifndef KEEL_PORT_SIM_H
#define KEEL_PORT_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint32_t keel_port_irq_t;

struct keel_sim_cpu {
    uint32_t nesting;
    uint32_t isr_depth;
    uint32_t switch_pending;
    uint32_t in_run;
    uint32_t service_cost_ns;
};
extern struct keel_sim_cpu keel_sim_cpu;

void keel_sim_port_switch(void);
void keel_sim_port_charge(uint64_t ns);

static inline keel_port_irq_t keel_port_lock(void)
{
    return keel_sim_cpu.nesting++;
}

static inline void keel_port_unlock(keel_port_irq_t prev)
{
    keel_sim_cpu.nesting = prev;
    if (prev == 0 && keel_sim_cpu.switch_pending && keel_sim_cpu.isr_depth == 0 &&
        keel_sim_cpu.in_run) {
        keel_sim_port_switch();
    }
}

/* The sim switches inside keel_port_unlock already. */
static inline void keel_port_unlock_switch(keel_port_irq_t prev)
{
    keel_port_unlock(prev);
}

static inline bool keel_port_in_isr(void)
{
    return keel_sim_cpu.isr_depth != 0;
}

static inline void keel_port_pend_switch(void)
{
    keel_sim_cpu.switch_pending = 1;
}

static inline void keel_port_service_cost(void)
{
    if (keel_sim_cpu.service_cost_ns != 0) {
        keel_sim_port_charge(keel_sim_cpu.service_cost_ns);
    }
}

struct keel_rtos_thread;
void keel_port_init(void);
void keel_port_start(void);
uint64_t keel_port_timestamp(void);
void keel_port_thread_init(struct keel_rtos_thread *t);
void keel_port_stack_prepare(void *stack, size_t size);
_Noreturn void keel_port_fatal(const char *what, const char *thread);

#endif

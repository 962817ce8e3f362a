/* Internals shared by the sim port's two files: port_sim.c (fibers, virtual time, running)
 * and sim_devices.c (the event heap, interrupt lines, host fds). One simulation at a time:
 * its whole state is keel_sim_state. */
#ifndef KEEL_SIM_PRIVATE_H
#define KEEL_SIM_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <ucontext.h>

#include "keel/rtos_sim.h"

struct sim_ctx {
    ucontext_t uc;
    void *fake_stack; /* ASan's fake stack of this fiber while it is switched out */
    const void *stack_bottom;
    size_t stack_size;
    void *tsan_fiber;
};

#define SIM_MAX_EVENTS 4096u
#define SIM_MAX_THREADS 512u

struct sim {
    bool exists;
    keel_sim_config cfg;
    uint64_t now, rng, seq;
    uint64_t tick_count;   /* tick boundaries passed */
    uint64_t tick_pending; /* boundaries not yet announced to the kernel */
    struct sim_ctx host;
    struct sim_ctx *switching_from;
    keel_rtos_thread *parked;
    bool have_stop;
    keel_sim_stop stop;
    uint64_t run_limit;
    bool (*cond)(void *);
    void *cond_arg;
    bool stop_req;
    keel_sim_event *heap[SIM_MAX_EVENTS];
    size_t nheap;
    struct {
        void (*fn)(void *);
        void *arg;
    } irq[KEEL_SIM_IRQ_COUNT];
    uint64_t irq_pending, irq_enabled;
    struct {
        int fd;
        unsigned irq;
    } fds[KEEL_SIM_MAX_FDS];
    size_t nfds;
    uint64_t wall_base, vt_base;
    keel_sim_stats stats;
    struct {
        void *stack;
        size_t size;
        void *tsan_fiber;
    } stacks[SIM_MAX_THREADS];
    size_t nstacks;
};

extern struct sim keel_sim_state;
#define S keel_sim_state

/* sim_devices.c */
void sim_heap_remove(size_t i);
/* Polls the attached fds (timeout_ns: 0 = just look, KEEL_SIM_FOREVER = wait) and pends the
 * lines of readable ones. True if any was readable. */
bool sim_poll_fds(uint64_t timeout_ns);
/* port_sim.c: an interrupt point in a thread (handlers, a due switch, a stop). */
void sim_thread_point(void);

#endif

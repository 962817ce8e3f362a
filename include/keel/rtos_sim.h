/* The RTOS sim port: Keel's kernel as a host program in virtual time (like Zephyr's native_sim).
 *
 * Threads are host contexts switched by the kernel on one host thread. Virtual time (kept in
 * nanoseconds, shown in microseconds) advances only when every thread is blocked, or when
 * running code consumes time: kernel services and interrupt entry charge configurable costs,
 * and code charges its own with keel_sim_busy_ns(). Ticks, time-slice expiry and interrupts
 * land at those points, so a run is a pure function of its inputs: the same seed and the same
 * program give the same run, to the nanosecond.
 *
 * Device models live in the simulation's "hardware": an event callback runs at an exact
 * virtual instant (keel_sim_event_schedule) and may raise an interrupt line
 * (keel_sim_irq_raise); an interrupt handler attached to the line runs in interrupt context
 * after the configured entry cost and may call the kernel's services with KEEL_RTOS_NO_WAIT.
 * A host file descriptor (an eventfd doorbell from a Linux process) can raise a line when it
 * becomes readable; when paced to the wall clock and idle, the sim sleeps in poll() on those
 * descriptors instead of spinning.
 *
 * One simulation exists at a time; create, run and destroy it as often as needed per process.
 * Every function here is called from the host (outside a run) or from inside the simulation
 * (threads, handlers, event callbacks) as noted. */
#ifndef KEEL_RTOS_SIM_H
#define KEEL_RTOS_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "keel/rtos.h"
#include "keel/status.h"

#define KEEL_SIM_IRQ_COUNT 64u
#define KEEL_SIM_FOREVER UINT64_MAX
#define KEEL_SIM_US 1000ull /* nanoseconds per microsecond */

typedef enum keel_sim_err {
    KEEL_SIM_OK = 0,
    KEEL_SIM_ERR_INVALID, /* bad argument (irq out of range, zero tick, NULL) */
    KEEL_SIM_ERR_BUSY,    /* a simulation already exists, or the call needs none running */
    KEEL_SIM_ERR_NO_SIM,  /* no simulation was created */
    KEEL_SIM_ERR_FULL,    /* too many file descriptors attached */
    KEEL_SIM_ERR_COUNT
} keel_sim_err;

const char *keel_sim_err_name(keel_sim_err e);

typedef struct keel_sim_config {
    uint64_t seed;            /* for keel_sim_random() */
    uint32_t tick_ns;         /* kernel tick period; default 1 ms */
    uint32_t service_cost_ns; /* charged on entry to every kernel service; default 1 us */
    uint32_t irq_entry_ns;    /* charged before every interrupt handler; default 500 ns */
    bool paced;               /* never let virtual time run ahead of the wall clock */
} keel_sim_config;

/* Defaults as above, seed 1, not paced. */
keel_sim_config keel_sim_config_default(void);

/* Creates the simulation and resets the kernel (keel_rtos_init). Virtual time starts at 0. */
KEEL_NODISCARD keel_sim_err keel_sim_create(const keel_sim_config *cfg);
/* Abandons every thread (their stacks are the caller's again) and forgets the simulation. */
void keel_sim_destroy(void);
bool keel_sim_exists(void);

/* Virtual time. */
uint64_t keel_sim_now_ns(void);
uint64_t keel_sim_now_us(void);

/* Deterministic pseudo-random numbers from the seed (splitmix64). */
uint64_t keel_sim_random(void);

/* ---- running (host side) ---- */
typedef enum keel_sim_stop {
    KEEL_SIM_STOP_TIME = 0,  /* reached the requested time */
    KEEL_SIM_STOP_CONDITION, /* the condition became true */
    KEEL_SIM_STOP_REQUEST,   /* keel_sim_request_stop() */
    KEEL_SIM_STOP_IDLE,      /* nothing can ever happen again (no thread, event, timeout, fd) */
} keel_sim_stop;

/* Runs until virtual time t_ns (absolute; KEEL_SIM_FOREVER to run until idle or stopped). */
keel_sim_stop keel_sim_run_until(uint64_t t_ns);
keel_sim_stop keel_sim_run_for(uint64_t ns);
/* Runs until cond(arg) is true (checked after every event, interrupt and switch to idle) or
 * until deadline_ns. A thread stopped in the middle of busy time resumes at the next run. */
keel_sim_stop keel_sim_run_until_cond(bool (*cond)(void *arg), void *arg, uint64_t deadline_ns);
/* From inside the simulation: the current run returns at the next point it can. */
void keel_sim_request_stop(void);

/* ---- consuming time (inside the simulation) ---- */
/* The calling thread or handler is busy for ns of virtual time. A thread can be preempted
 * (interrupts, ticks, slicing) during it; preempted time does not count towards ns. */
void keel_sim_busy_ns(uint64_t ns);
void keel_sim_busy_us(uint64_t us);

/* ---- device models: events at exact instants ---- */
typedef struct keel_sim_event {
    uint64_t at_ns, seq; /* private */
    void (*fn)(void *arg);
    void *arg;
    int32_t slot; /* private: position in the event heap, -1 if not scheduled */
} keel_sim_event;

/* fn(arg) runs at virtual time at_ns (>= now) in interrupt context, at no cost: it is hardware.
 * Events at the same instant run in the order they were scheduled. The event struct is the
 * caller's and stays in use until it runs or is cancelled. Rescheduling moves it. */
keel_sim_err keel_sim_event_schedule(keel_sim_event *ev, uint64_t at_ns, void (*fn)(void *arg),
                                     void *arg);
void keel_sim_event_cancel(keel_sim_event *ev);
bool keel_sim_event_pending(const keel_sim_event *ev);

/* ---- interrupt lines ---- */
/* handler(arg) runs in interrupt context when the line is raised and enabled. Lines are taken
 * lowest number first; handlers do not nest. Attaching enables the line. */
keel_sim_err keel_sim_irq_attach(unsigned irq, void (*handler)(void *arg), void *arg);
keel_sim_err keel_sim_irq_enable(unsigned irq, bool enabled);
/* Pends the line (from anywhere: a thread, a handler, an event, the host). It is taken at the
 * next interrupt point: at once from a thread or event, after the current handler from one. */
keel_sim_err keel_sim_irq_raise(unsigned irq);
bool keel_sim_irq_pending(unsigned irq);

/* A host fd raises `irq` while it is readable (level-triggered: the handler must drain it, e.g.
 * read the eventfd). Polled at every idle step and tick; waited on when paced and idle, or
 * when nothing else can happen. */
#define KEEL_SIM_MAX_FDS 16u
keel_sim_err keel_sim_fd_attach(int fd, unsigned irq);
keel_sim_err keel_sim_fd_detach(int fd);

/* Kernel-side counters, for tests and reports. */
typedef struct keel_sim_stats {
    uint64_t context_switches;
    uint64_t interrupts;
    uint64_t events;
    uint64_t ticks;
    uint64_t idle_ns; /* virtual time with no thread running */
} keel_sim_stats;
void keel_sim_stats_get(keel_sim_stats *out);

#endif

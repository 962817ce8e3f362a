/* Keel's real-time kernel: a preemptive priority scheduler with the ThreadX/FreeRTOS set of
 * services (threads, counting semaphores, mutexes with priority inheritance, message queues,
 * event flags, software timers, block and byte pools).
 *
 * Rules that hold for every service:
 *  - Static allocation: every object lives in memory the caller provides (the structs below);
 *    the kernel never allocates. Their fields are private: use only the functions.
 *  - Every call that can block takes a timeout in ticks: KEEL_RTOS_NO_WAIT, a number of ticks,
 *    or KEEL_RTOS_WAIT_FOREVER, and returns a keel_rtos_err.
 *  - The same functions work from interrupt handlers as long as they do not block (timeout
 *    KEEL_RTOS_NO_WAIT); a blocking call from an interrupt returns KEEL_RTOS_ERR_ISR.
 *  - Priority 0 is the most urgent; KEEL_RTOS_PRIORITIES levels (at most 32).
 *
 * The CPU-specific part (context switch, tick, critical sections) is a port: src/rtos/port/sim
 * (host, virtual time, see keel/rtos_sim.h) or src/rtos/port/cortex-m (Cortex-M4F). */
#ifndef KEEL_RTOS_H
#define KEEL_RTOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/status.h"

#ifndef KEEL_RTOS_PRIORITIES
#define KEEL_RTOS_PRIORITIES 32u
#endif

/* Timeouts, in ticks. */
#define KEEL_RTOS_NO_WAIT 0u
#define KEEL_RTOS_WAIT_FOREVER UINT32_MAX

typedef enum keel_rtos_err {
    KEEL_RTOS_OK = 0,
    KEEL_RTOS_ERR_TIMEOUT,     /* the timeout passed before the wait was satisfied */
    KEEL_RTOS_ERR_UNAVAILABLE, /* KEEL_RTOS_NO_WAIT and the object was not available */
    KEEL_RTOS_ERR_DELETED,     /* the object was deleted while the caller waited on it */
    KEEL_RTOS_ERR_INVALID,     /* a bad argument (NULL, size 0, priority out of range, ...) */
    KEEL_RTOS_ERR_ISR,         /* a blocking call from interrupt context */
    KEEL_RTOS_ERR_NOT_OWNER,   /* unlocking a mutex the caller does not own */
    KEEL_RTOS_ERR_OVERFLOW,    /* a semaphore already at its maximum count */
    KEEL_RTOS_ERR_STATE,       /* the thread or timer is not in a state that allows the call */
    KEEL_RTOS_ERR_ABORTED,     /* the wait was aborted by keel_rtos_thread_wait_abort() */
    KEEL_RTOS_ERR_COUNT
} keel_rtos_err;

/* "KEEL_RTOS_OK", "KEEL_RTOS_ERR_TIMEOUT", ...; "KEEL_RTOS_ERR_UNKNOWN" if out of range. */
const char *keel_rtos_err_name(keel_rtos_err e);

/* ---- private building blocks of the objects (do not touch the fields) ---- */
struct keel_rtos_list {
    struct keel_rtos_list *next, *prev;
};

/* A deadline in the kernel's one sorted list of timeouts (thread waits and software timers). */
struct keel_rtos_timeout {
    struct keel_rtos_list node;
    uint64_t deadline; /* absolute tick */
    uint8_t kind;      /* thread wait or timer */
};

typedef enum keel_rtos_thread_state {
    KEEL_RTOS_THREAD_READY = 0, /* ready or running */
    KEEL_RTOS_THREAD_WAITING,   /* blocked on an object or sleeping */
    KEEL_RTOS_THREAD_SUSPENDED,
    KEEL_RTOS_THREAD_COMPLETED, /* its entry function returned */
    KEEL_RTOS_THREAD_TERMINATED,
} keel_rtos_thread_state;

struct keel_rtos_mutex;

typedef struct keel_rtos_thread {
    void *context; /* port-owned; first so a port's assembly finds it at offset 0 */
    struct keel_rtos_thread *rnext, *rprev; /* ring of ready threads of one priority */
    struct keel_rtos_list node;       /* a wait list */
    struct keel_rtos_timeout timeout; /* wait deadline */
    struct keel_rtos_list *wait_list; /* the list the thread waits on, or NULL */
    uint8_t priority;                 /* effective (inherited) priority */
    uint8_t base_priority;            /* assigned priority */
    uint8_t state;                    /* keel_rtos_thread_state */
    uint8_t suspend_pending;          /* suspend once the current wait ends */
    uint8_t wait_status;              /* keel_rtos_err delivered to a waiter */
    uint32_t time_slice;              /* ticks; 0 = no slicing */
    uint32_t slice_left;
    /* what the thread waits for (meaning depends on the object) */
    void *wait_object;
    void *wait_data;
    uint32_t wait_value;
    uint32_t wait_option;
    struct keel_rtos_list owned_mutexes; /* for priority inheritance */
    struct keel_rtos_mutex *blocked_on;  /* the mutex it waits for, if any */
    /* stack and identity */
    uint8_t *stack;
    size_t stack_size;
    const char *name;
    void (*entry)(void *arg);
    void *arg;
    struct keel_rtos_list all; /* every created thread */
    /* run-time statistics */
    uint32_t switches_in;
    uint64_t run_time; /* sim: virtual ns; cortex-m: cycles with KEEL_RTOS_RUNTIME_STATS */
    uint64_t run_start;
} keel_rtos_thread;

typedef struct keel_rtos_thread_config {
    const char *name;
    void (*entry)(void *arg);
    void *arg;
    void *stack;       /* caller's memory, 8-byte aligned */
    size_t stack_size; /* bytes; at least KEEL_RTOS_MIN_STACK */
    uint8_t priority;  /* 0 (most urgent) .. KEEL_RTOS_PRIORITIES-1 */
    uint32_t time_slice; /* ticks before yielding to an equal-priority thread; 0 = none */
    bool start_suspended; /* create suspended; keel_rtos_thread_resume() starts it */
} keel_rtos_thread_config;

/* Smallest stack a thread may have (the sim port keeps its host context on the stack too). */
#if defined(__arm__) && !defined(__linux__)
#define KEEL_RTOS_MIN_STACK 256u
#else
#define KEEL_RTOS_MIN_STACK 16384u
#endif

typedef struct keel_rtos_thread_stats {
    keel_rtos_thread_state state;
    uint8_t priority, base_priority;
    uint32_t switches_in; /* times it was switched to */
    uint64_t run_time;    /* sim: virtual ns; cortex-m: cycles (keel_rtos_stats), else 0 */
    size_t stack_size;
    size_t stack_used;    /* high-water mark: bytes of stack ever written */
} keel_rtos_thread_stats;

typedef struct keel_rtos_sem {
    struct keel_rtos_list waiters;
    uint32_t count, max;
} keel_rtos_sem;

typedef struct keel_rtos_mutex {
    struct keel_rtos_list waiters; /* by priority */
    struct keel_rtos_list owned;   /* node in the owner's owned_mutexes */
    keel_rtos_thread *owner;
    uint32_t recursion;
} keel_rtos_mutex;

typedef struct keel_rtos_queue {
    struct keel_rtos_list senders, receivers;
    uint8_t *buffer;
    uint32_t msg_size, capacity, count;
    uint32_t words; /* msg_size / 4 when buffer and size are word-aligned, else 0 */
    uint32_t head, tail, bytes; /* byte offsets into buffer; bytes = capacity * msg_size */
} keel_rtos_queue;

#define KEEL_RTOS_EVENT_OR 0u    /* any of the requested flags */
#define KEEL_RTOS_EVENT_AND 1u   /* all of the requested flags */
#define KEEL_RTOS_EVENT_CLEAR 2u /* clear the requested flags when the wait is satisfied */

typedef struct keel_rtos_event {
    struct keel_rtos_list waiters;
    uint32_t flags;
} keel_rtos_event;

typedef struct keel_rtos_timer {
    struct keel_rtos_timeout timeout;
    void (*fn)(void *arg);
    void *arg;
    uint32_t period; /* ticks; 0 = one-shot */
    bool active;
} keel_rtos_timer;

typedef struct keel_rtos_block_pool {
    struct keel_rtos_list waiters;
    void *free_list;
    uint8_t *start;
    uint32_t span;       /* bytes of blocks */
    uint32_t block_size, total, available;
    uint32_t align_mask; /* block_size - 1 when a power of two (a cheap check on free), else 0 */
} keel_rtos_block_pool;

typedef struct keel_rtos_byte_pool {
    struct keel_rtos_list waiters;
    uint8_t *start;
    size_t size, available;
} keel_rtos_byte_pool;

/* ---- kernel ---- */

/* Resets the kernel (every object created before is forgotten). Call once before creating
 * objects; on the sim port keel_sim_create() does it. */
void keel_rtos_init(void);
/* Starts scheduling; never returns on hardware. On the sim port it runs the simulation (a
 * default one if none was created) until board_exit() or until every thread is gone. */
void keel_rtos_start(void);
/* Ticks since start. */
uint64_t keel_rtos_ticks(void);
/* Tick rate of the port (sim: set by keel_sim_config.tick_us; cortex-m: KEEL_RTOS_TICK_HZ). */
uint32_t keel_rtos_tick_hz(void);
/* True in interrupt context (an ISR, a timer callback). */
bool keel_rtos_in_isr(void);

/* Called by a port: `ticks` ticks have passed (more than one after a tickless sleep). Expires
 * timeouts and timers, slices time; interrupt context. */
void keel_rtos_tick_announce(uint32_t ticks);
/* For a tickless idle: ticks until the next deadline (UINT32_MAX if none). */
uint32_t keel_rtos_idle_ticks(void);
/* Called by the idle loop with the ticks it may sleep; a board may override it (weak) to stop
 * the tick and enter a low-power state. The default does nothing. */
void keel_rtos_idle_hook(uint32_t ticks);

/* Called when a stack guard is found overwritten at a context switch. The default handler
 * reports the thread on the console and stops the system (board_exit 121 / abort on the host).
 * A handler that returns lets the kernel terminate the thread. */
typedef void (*keel_rtos_overflow_handler)(keel_rtos_thread *t);
void keel_rtos_set_overflow_handler(keel_rtos_overflow_handler fn);

/* ---- threads ---- */
KEEL_NODISCARD keel_rtos_err keel_rtos_thread_create(keel_rtos_thread *t,
                                                     const keel_rtos_thread_config *cfg);
keel_rtos_thread *keel_rtos_thread_self(void);
/* Sleeps `ticks` ticks (0 yields to threads of the same priority). */
keel_rtos_err keel_rtos_thread_sleep(uint32_t ticks);
/* Gives the CPU to the next ready thread of the same priority, if any. From an interrupt it
 * rotates the interrupted thread, as a time-slice expiry would. */
void keel_rtos_thread_relinquish(void);
/* Suspends a thread (itself included); a waiting thread is suspended when its wait ends. */
keel_rtos_err keel_rtos_thread_suspend(keel_rtos_thread *t);
keel_rtos_err keel_rtos_thread_resume(keel_rtos_thread *t);
/* Ends a thread (not itself); releases no mutex it holds (they are left owned). */
keel_rtos_err keel_rtos_thread_terminate(keel_rtos_thread *t);
/* Ends a thread's wait early with KEEL_RTOS_ERR_ABORTED. */
keel_rtos_err keel_rtos_thread_wait_abort(keel_rtos_thread *t);
keel_rtos_err keel_rtos_thread_set_priority(keel_rtos_thread *t, uint8_t priority);
keel_rtos_err keel_rtos_thread_stats_get(const keel_rtos_thread *t, keel_rtos_thread_stats *out);
/* Calls fn for every thread created and not terminated, in creation order. */
void keel_rtos_thread_foreach(void (*fn)(keel_rtos_thread *t, void *arg), void *arg);

/* ---- counting semaphores ---- */
/* max: the largest count (0 = UINT32_MAX). */
KEEL_NODISCARD keel_rtos_err keel_rtos_sem_create(keel_rtos_sem *s, uint32_t initial,
                                                  uint32_t max);
/* Waiters get KEEL_RTOS_ERR_DELETED. */
keel_rtos_err keel_rtos_sem_delete(keel_rtos_sem *s);
keel_rtos_err keel_rtos_sem_get(keel_rtos_sem *s, uint32_t timeout);
keel_rtos_err keel_rtos_sem_put(keel_rtos_sem *s);
uint32_t keel_rtos_sem_count(const keel_rtos_sem *s);

/* ---- mutexes: recursive, with priority inheritance (through chains of owners) ---- */
KEEL_NODISCARD keel_rtos_err keel_rtos_mutex_create(keel_rtos_mutex *m);
keel_rtos_err keel_rtos_mutex_delete(keel_rtos_mutex *m);
keel_rtos_err keel_rtos_mutex_lock(keel_rtos_mutex *m, uint32_t timeout);
keel_rtos_err keel_rtos_mutex_unlock(keel_rtos_mutex *m);
keel_rtos_thread *keel_rtos_mutex_owner(const keel_rtos_mutex *m);

/* ---- message queues of fixed-size messages ---- */
/* buffer holds capacity * msg_size bytes. */
KEEL_NODISCARD keel_rtos_err keel_rtos_queue_create(keel_rtos_queue *q, void *buffer,
                                                    uint32_t msg_size, uint32_t capacity);
keel_rtos_err keel_rtos_queue_delete(keel_rtos_queue *q);
keel_rtos_err keel_rtos_queue_send(keel_rtos_queue *q, const void *msg, uint32_t timeout);
keel_rtos_err keel_rtos_queue_receive(keel_rtos_queue *q, void *msg, uint32_t timeout);
uint32_t keel_rtos_queue_count(const keel_rtos_queue *q);

/* ---- event flags ---- */
KEEL_NODISCARD keel_rtos_err keel_rtos_event_create(keel_rtos_event *e);
keel_rtos_err keel_rtos_event_delete(keel_rtos_event *e);
keel_rtos_err keel_rtos_event_set(keel_rtos_event *e, uint32_t flags);
keel_rtos_err keel_rtos_event_clear(keel_rtos_event *e, uint32_t flags);
/* Waits for `requested` (KEEL_RTOS_EVENT_OR / _AND, optionally | _CLEAR). *actual (may be NULL)
 * receives the flags as they were when the wait was satisfied. */
keel_rtos_err keel_rtos_event_wait(keel_rtos_event *e, uint32_t requested, uint32_t options,
                                   uint32_t *actual, uint32_t timeout);
uint32_t keel_rtos_event_get(const keel_rtos_event *e);

/* ---- software timers: callbacks run in interrupt context, in deadline order (equal
 * deadlines in the order the timers were started) ---- */
KEEL_NODISCARD keel_rtos_err keel_rtos_timer_create(keel_rtos_timer *tm, void (*fn)(void *arg),
                                                    void *arg);
/* First expiry after `initial` ticks (>= 1), then every `period` ticks (0 = one-shot). */
keel_rtos_err keel_rtos_timer_start(keel_rtos_timer *tm, uint32_t initial, uint32_t period);
keel_rtos_err keel_rtos_timer_stop(keel_rtos_timer *tm);
bool keel_rtos_timer_active(const keel_rtos_timer *tm);

/* ---- fixed-block pools ---- */
/* Carves `memory` (size bytes) into blocks of block_size (rounded up to pointer alignment). */
KEEL_NODISCARD keel_rtos_err keel_rtos_block_pool_create(keel_rtos_block_pool *p,
                                                         uint32_t block_size, void *memory,
                                                         size_t size);
keel_rtos_err keel_rtos_block_pool_delete(keel_rtos_block_pool *p);
keel_rtos_err keel_rtos_block_alloc(keel_rtos_block_pool *p, void **block, uint32_t timeout);
/* KEEL_RTOS_ERR_INVALID if block is not a block of this pool. */
keel_rtos_err keel_rtos_block_free(keel_rtos_block_pool *p, void *block);
uint32_t keel_rtos_block_pool_available(const keel_rtos_block_pool *p);

/* ---- byte pool: first fit with coalescing; waiters served in priority order ---- */
KEEL_NODISCARD keel_rtos_err keel_rtos_byte_pool_create(keel_rtos_byte_pool *p, void *memory,
                                                        size_t size);
keel_rtos_err keel_rtos_byte_pool_delete(keel_rtos_byte_pool *p);
keel_rtos_err keel_rtos_byte_alloc(keel_rtos_byte_pool *p, void **mem, size_t size,
                                   uint32_t timeout);
keel_rtos_err keel_rtos_byte_free(keel_rtos_byte_pool *p, void *mem);
/* Largest single allocation that would succeed now. */
size_t keel_rtos_byte_pool_largest(const keel_rtos_byte_pool *p);

#endif

/* The sim port: threads are ucontext fibers on one host thread, time is virtual.
 *
 * Model. The "hardware" is a timeline of device events (a min-heap ordered by instant, then
 * by scheduling order) and the tick boundaries (multiples of tick_ns). The "CPU" is whichever
 * context runs: a thread, or the host's run loop, which is the idle thread. Time moves only
 * in sim_hw_until(): when the CPU is idle (a jump to the next thing that can happen, skipping
 * ticks no deadline needs: tickless), or when running code is charged time (busy, kernel
 * service cost, interrupt entry). Hardware events fire at their exact instants even while the
 * CPU is busy; interrupts (device lines, the tick) are taken only at interrupt points: in a
 * thread's busy loop, in the idle loop, and when a thread raises a line. After the handlers,
 * a switch the kernel asked for happens, so preemption lands exactly there.
 *
 * The host context doubles as the idle thread: keel_sim_run_*() is the idle loop, and a
 * switch to the idle thread returns into it. To stop a run while a thread is mid-busy, that
 * thread is parked (its context saved, the kernel still calls it current) and the run
 * returns; the next run resumes it first.
 *
 * Sanitizers: every swapcontext is announced to ASan (start/finish_switch_fiber) and TSan
 * (one fiber per thread), so instrumented builds follow the stacks.
 *
 * The event heap, interrupt lines and host fds are in sim_devices.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>

#include "keel/rtos_sim.h"
#include "rtos_private.h"
#include "sim_private.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIM_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define SIM_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(SIM_ASAN)
#define SIM_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(SIM_TSAN)
#define SIM_TSAN 1
#endif
#ifdef SIM_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef SIM_TSAN
#include <sanitizer/tsan_interface.h>
#endif

struct sim keel_sim_state;
struct keel_sim_cpu keel_sim_cpu;

/* ---- fibers ---- */

static struct sim_ctx *ctx_of(keel_rtos_thread *t)
{
    return t == &keel_rtos_k.idle ? &S.host : (struct sim_ctx *)t->context;
}

static void after_switch(struct sim_ctx *self)
{
#ifdef SIM_ASAN
    const void *old_bottom = NULL;
    size_t old_size = 0;
    __sanitizer_finish_switch_fiber(self ? self->fake_stack : NULL, &old_bottom, &old_size);
    if (S.switching_from == &S.host && S.host.stack_bottom == NULL) {
        S.host.stack_bottom = old_bottom;
        S.host.stack_size = old_size;
    }
#else
    (void)self;
#endif
}

static void ctx_swap(struct sim_ctx *from, struct sim_ctx *to, bool from_dying)
{
    S.switching_from = from;
#ifdef SIM_ASAN
    __sanitizer_start_switch_fiber(from_dying ? NULL : &from->fake_stack, to->stack_bottom,
                                   to->stack_size);
#else
    (void)from_dying;
#endif
#ifdef SIM_TSAN
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
    swapcontext(&from->uc, &to->uc);
    after_switch(from);
}

static void sim_trampoline(void)
{
    after_switch(NULL);
    keel_rtos_thread *t = keel_rtos_k.current;
    t->entry(t->arg);
    kr_thread_exit();
}

void keel_port_stack_prepare(void *stack, size_t size)
{
#ifdef SIM_ASAN
    __asan_unpoison_memory_region(stack, size);
#else
    (void)stack;
    (void)size;
#endif
}

void keel_port_thread_init(keel_rtos_thread *t)
{
    uintptr_t top = (uintptr_t)t->stack + t->stack_size;
    struct sim_ctx *c = (struct sim_ctx *)((top - sizeof(struct sim_ctx)) & ~(uintptr_t)63u);
    memset(c, 0, sizeof *c);
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = t->stack;
    c->uc.uc_stack.ss_size = (size_t)((uint8_t *)c - t->stack);
    c->uc.uc_link = NULL;
    makecontext(&c->uc, sim_trampoline, 0);
    c->stack_bottom = t->stack;
    c->stack_size = c->uc.uc_stack.ss_size;
#ifdef SIM_TSAN
    c->tsan_fiber = __tsan_create_fiber(0);
#endif
    t->context = c;
    if (S.nstacks < SIM_MAX_THREADS) {
        S.stacks[S.nstacks].stack = t->stack;
        S.stacks[S.nstacks].size = t->stack_size;
        S.stacks[S.nstacks].tsan_fiber = c->tsan_fiber;
        S.nstacks++;
    }
}

_Noreturn void keel_port_fatal(const char *what, const char *thread)
{
    fprintf(stderr, "keel rtos: %s (thread %s) at %llu ns\n", what, thread ? thread : "?",
            (unsigned long long)S.now);
    abort();
}

uint64_t keel_port_timestamp(void)
{
    return S.now;
}

uint32_t keel_rtos_tick_hz(void)
{
    return (uint32_t)(1000000000ull / (S.cfg.tick_ns ? S.cfg.tick_ns : 1000000u));
}

void keel_sim_port_switch(void)
{
    keel_sim_cpu.switch_pending = 0;
    keel_rtos_thread *from = keel_rtos_k.current, *to = keel_rtos_k.next;
    if (from == to) {
        return;
    }
    from->run_time += S.now - from->run_start;
    to->run_start = S.now;
    to->switches_in++;
    S.stats.context_switches++;
    keel_rtos_k.current = to;
    ctx_swap(ctx_of(from), ctx_of(to), from->state >= KEEL_RTOS_THREAD_COMPLETED);
}

/* ---- the hardware timeline ---- */

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Paced runs: virtual time t may not be reached before its wall-clock instant. */
static void pace(uint64_t t)
{
    if (!S.cfg.paced || t == KEEL_SIM_FOREVER) {
        return;
    }
    uint64_t target = S.wall_base + (t - S.vt_base);
    for (;;) {
        uint64_t w = wall_ns();
        if (w >= target) {
            return;
        }
        struct timespec ts = {(time_t)((target - w) / 1000000000ull),
                              (long)((target - w) % 1000000000ull)};
        nanosleep(&ts, NULL);
    }
}

static void tick_account(void)
{
    uint64_t b = S.now / S.cfg.tick_ns;
    if (b > S.tick_count) {
        S.tick_pending += b - S.tick_count;
        S.tick_count = b;
    }
}

/* Hardware runs until t: every event due by then fires at its own instant. */
static void hw_until(uint64_t t)
{
    while (S.nheap != 0 && S.heap[0]->at_ns <= t) {
        keel_sim_event *ev = S.heap[0];
        sim_heap_remove(0);
        if (ev->at_ns > S.now) {
            pace(ev->at_ns);
            S.now = ev->at_ns;
            tick_account();
        }
        S.stats.events++;
        keel_sim_cpu.isr_depth++;
        ev->fn(ev->arg);
        keel_sim_cpu.isr_depth--;
    }
    if (t > S.now) {
        pace(t);
        S.now = t;
    }
    tick_account();
}

static bool irq_ready(void)
{
    return S.tick_pending != 0 || (S.irq_pending & S.irq_enabled) != 0;
}

/* Takes every pending interrupt: lines lowest first, then the tick. The CPU must be outside
 * any handler and critical section. */
static void take_interrupts(void)
{
    while (irq_ready()) {
        /* The interrupt is chosen when it is taken; lines raised during its entry wait. */
        uint64_t m = S.irq_pending & S.irq_enabled;
        unsigned n = m != 0 ? (unsigned)__builtin_ctzll(m) : KEEL_SIM_IRQ_COUNT;
        if (m != 0) {
            S.irq_pending &= ~(1ull << n);
        }
        hw_until(S.now + S.cfg.irq_entry_ns);
        S.stats.interrupts++;
        keel_sim_cpu.isr_depth++;
        if (n < KEEL_SIM_IRQ_COUNT) {
            S.irq[n].fn(S.irq[n].arg);
        } else if (S.tick_pending != 0) {
            uint32_t n = S.tick_pending > UINT32_MAX ? UINT32_MAX : (uint32_t)S.tick_pending;
            S.tick_pending -= n;
            S.stats.ticks += n;
            keel_rtos_tick_announce(n);
        }
        keel_sim_cpu.isr_depth--;
    }
}

static bool stop_reason(keel_sim_stop *why)
{
    if (S.stop_req) {
        *why = KEEL_SIM_STOP_REQUEST;
        return true;
    }
    if (S.cond != NULL && S.cond(S.cond_arg)) {
        *why = KEEL_SIM_STOP_CONDITION;
        return true;
    }
    if (S.now >= S.run_limit) {
        *why = KEEL_SIM_STOP_TIME;
        return true;
    }
    return false;
}

/* An interrupt point in a thread: handlers, then a switch if one is due, then a stop. */
void sim_thread_point(void)
{
    for (;;) {
        take_interrupts();
        if (keel_sim_cpu.switch_pending) {
            keel_sim_port_switch();
            continue;
        }
        keel_sim_stop why;
        if (stop_reason(&why)) {
            S.parked = keel_rtos_k.current;
            S.have_stop = true;
            S.stop = why;
            ctx_swap(ctx_of(keel_rtos_k.current), &S.host, false);
            continue;
        }
        return;
    }
}

static void thread_busy(uint64_t ns)
{
    uint64_t left = ns;
    for (;;) {
        uint64_t next = (S.tick_count + 1) * S.cfg.tick_ns;
        if (S.nheap != 0 && S.heap[0]->at_ns < next) {
            next = S.heap[0]->at_ns;
        }
        if (S.run_limit < next) {
            next = S.run_limit < S.now ? S.now : S.run_limit;
        }
        if (next >= S.now + left) {
            hw_until(S.now + left);
            left = 0;
        } else {
            left -= next - S.now;
            hw_until(next);
        }
        sim_thread_point();
        if (left == 0) {
            return;
        }
    }
}

static void charge(uint64_t ns)
{
    if (!S.exists || ns == 0) {
        return;
    }
    if (keel_sim_cpu.isr_depth != 0 || keel_sim_cpu.nesting != 0) {
        hw_until(S.now + ns); /* no interrupt point inside a handler or critical section */
        return;
    }
    if (!keel_sim_cpu.in_run || keel_rtos_k.current == &keel_rtos_k.idle) {
        return; /* the host between runs: time does not pass */
    }
    thread_busy(ns);
}

void keel_sim_port_charge(uint64_t ns)
{
    charge(ns);
}

void keel_sim_busy_ns(uint64_t ns)
{
    charge(ns);
}

void keel_sim_busy_us(uint64_t us)
{
    charge(us * KEEL_SIM_US);
}

/* ---- lifecycle ---- */

keel_sim_config keel_sim_config_default(void)
{
    keel_sim_config c = {
        .seed = 1,
        .tick_ns = 1000000u,
        .service_cost_ns = 1000u,
        .irq_entry_ns = 500u,
        .paced = false,
    };
    return c;
}

static void sim_setup(const keel_sim_config *cfg)
{
    memset(&S, 0, sizeof S);
    memset(&keel_sim_cpu, 0, sizeof keel_sim_cpu);
    S.cfg = *cfg;
    S.rng = cfg->seed;
    S.run_limit = 0;
#ifdef SIM_TSAN
    S.host.tsan_fiber = __tsan_get_current_fiber();
#endif
    keel_sim_cpu.service_cost_ns = cfg->service_cost_ns;
    S.exists = true;
}

keel_sim_err keel_sim_create(const keel_sim_config *cfg)
{
    if (S.exists) {
        return KEEL_SIM_ERR_BUSY;
    }
    keel_sim_config c = cfg ? *cfg : keel_sim_config_default();
    if (c.tick_ns == 0) {
        return KEEL_SIM_ERR_INVALID;
    }
    sim_setup(&c);
    keel_rtos_init();
    return KEEL_SIM_OK;
}

void keel_port_init(void)
{
    /* keel_rtos_init() without keel_sim_create() (firmware's main): a default simulation. */
    if (!S.exists) {
        keel_sim_config c = keel_sim_config_default();
        sim_setup(&c);
    }
}

void keel_port_start(void)
{
    if (!S.exists) {
        keel_port_init();
    }
    (void)keel_sim_run_until(KEEL_SIM_FOREVER);
}

void keel_sim_destroy(void)
{
    if (!S.exists) {
        return;
    }
    for (size_t i = 0; i < S.nstacks; i++) {
        keel_port_stack_prepare(S.stacks[i].stack, S.stacks[i].size);
#ifdef SIM_TSAN
        if (S.stacks[i].tsan_fiber != NULL) {
            __tsan_destroy_fiber(S.stacks[i].tsan_fiber);
        }
#endif
    }
    for (size_t i = 0; i < S.nheap; i++) {
        S.heap[i]->slot = -1;
    }
    memset(&S, 0, sizeof S);
    memset(&keel_sim_cpu, 0, sizeof keel_sim_cpu);
    keel_rtos_init(); /* forget every object; keel_port_init makes a fresh default sim */
    S.exists = false;
}

bool keel_sim_exists(void)
{
    return S.exists;
}

uint64_t keel_sim_now_ns(void)
{
    return S.now;
}

uint64_t keel_sim_now_us(void)
{
    return S.now / KEEL_SIM_US;
}

uint64_t keel_sim_random(void)
{
    uint64_t z = (S.rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void keel_sim_stats_get(keel_sim_stats *out)
{
    *out = S.stats;
    out->idle_ns = keel_rtos_k.idle.run_time;
    if (keel_rtos_k.current == &keel_rtos_k.idle) {
        out->idle_ns += S.now - keel_rtos_k.idle.run_start;
    }
}

/* ---- running ---- */

/* One idle step: jump to the next instant something can happen. False: nothing ever will. */
static bool idle_step(void)
{
    uint64_t next = S.run_limit;
    if (S.nheap != 0 && S.heap[0]->at_ns < next) {
        next = S.heap[0]->at_ns;
    }
    uint32_t it = keel_rtos_idle_ticks();
    keel_rtos_idle_hook(it);
    if (it != UINT32_MAX) {
        uint64_t tt = (S.tick_count + (it ? it : 1u)) * S.cfg.tick_ns;
        if (tt < next) {
            next = tt;
        }
    }
    if (next == KEEL_SIM_FOREVER && S.nfds == 0) {
        return false;
    }
    if (S.nfds != 0) {
        uint64_t wait = 0;
        if (next == KEEL_SIM_FOREVER) {
            wait = KEEL_SIM_FOREVER;
        } else if (S.cfg.paced) {
            uint64_t target = S.wall_base + (next - S.vt_base), w = wall_ns();
            wait = target > w ? target - w : 0;
        }
        if (sim_poll_fds(wait)) {
            if (S.cfg.paced) {
                uint64_t vt = S.vt_base + (wall_ns() - S.wall_base);
                hw_until(vt < next ? vt : next);
            }
            return true;
        }
        if (next == KEEL_SIM_FOREVER) {
            return true;
        }
    }
    hw_until(next);
    return true;
}

keel_sim_stop keel_sim_run_until_cond(bool (*cond)(void *arg), void *arg, uint64_t deadline_ns)
{
    if (!S.exists || keel_sim_cpu.in_run) {
        return KEEL_SIM_STOP_IDLE;
    }
    S.run_limit = deadline_ns;
    S.cond = cond;
    S.cond_arg = arg;
    S.stop_req = false;
    S.wall_base = wall_ns();
    S.vt_base = S.now;
    keel_sim_cpu.in_run = 1;
    keel_sim_stop why;
    for (;;) {
        if (stop_reason(&why)) {
            break;
        }
        if (S.parked != NULL) {
            keel_rtos_thread *t = S.parked;
            S.parked = NULL;
            ctx_swap(&S.host, ctx_of(t), false);
        } else {
            take_interrupts();
            if (keel_rtos_k.next != &keel_rtos_k.idle) {
                keel_sim_port_switch();
            } else {
                keel_sim_cpu.switch_pending = 0;
                if (!idle_step()) {
                    why = KEEL_SIM_STOP_IDLE;
                    break;
                }
                continue;
            }
        }
        if (S.have_stop) {
            S.have_stop = false;
            why = S.stop;
            break;
        }
    }
    keel_sim_cpu.in_run = 0;
    S.cond = NULL;
    return why;
}

keel_sim_stop keel_sim_run_until(uint64_t t_ns)
{
    return keel_sim_run_until_cond(NULL, NULL, t_ns);
}

keel_sim_stop keel_sim_run_for(uint64_t ns)
{
    uint64_t t = ns > KEEL_SIM_FOREVER - S.now ? KEEL_SIM_FOREVER : S.now + ns;
    return keel_sim_run_until(t);
}

void keel_sim_request_stop(void)
{
    S.stop_req = true;
}

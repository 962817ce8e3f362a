/* Helpers shared by the RTOS unit tests: a fresh simulation per test (so every test also
 * checks that a simulation can be created and destroyed many times in one process), stacks
 * from a static pool, and a trace of what ran when. */
#ifndef KEEL_RTOS_TEST_H
#define KEEL_RTOS_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "keel/rtos.h"
#include "keel/rtos_sim.h"

#define RT_STACK (64u * 1024u)
#define RT_MAX_THREADS 12
#define MS 1000000ull /* ns */

static _Alignas(64) uint8_t rt_stacks[RT_MAX_THREADS][RT_STACK];
static keel_rtos_thread rt_threads[RT_MAX_THREADS];
static int rt_nthreads;
static char rt_trace[256];
static size_t rt_trace_len;

static inline void rt_mark(char c)
{
    if (rt_trace_len + 1 < sizeof rt_trace) {
        rt_trace[rt_trace_len++] = c;
        rt_trace[rt_trace_len] = 0;
    }
}

/* Default test costs: no service cost (exact times are easy to state), 500 ns interrupt
 * entry, 1 ms tick. Tests that need costs create their own config. */
static inline int rt_setup_cfg(const keel_sim_config *cfg)
{
    rt_nthreads = 0;
    rt_trace_len = 0;
    rt_trace[0] = 0;
    return keel_sim_create(cfg) == KEEL_SIM_OK ? 0 : -1;
}

static inline int rt_setup(void **state)
{
    (void)state;
    keel_sim_config c = keel_sim_config_default();
    c.service_cost_ns = 0;
    return rt_setup_cfg(&c);
}

static inline int rt_teardown(void **state)
{
    (void)state;
    keel_sim_destroy();
    return 0;
}

static inline keel_rtos_thread *rt_spawn_opts(const char *name, void (*fn)(void *), void *arg,
                                              uint8_t prio, uint32_t slice, bool suspended)
{
    assert_true(rt_nthreads < RT_MAX_THREADS);
    int i = rt_nthreads++;
    keel_rtos_thread_config cfg = {
        .name = name,
        .entry = fn,
        .arg = arg,
        .stack = rt_stacks[i],
        .stack_size = RT_STACK,
        .priority = prio,
        .time_slice = slice,
        .start_suspended = suspended,
    };
    assert_int_equal(keel_rtos_thread_create(&rt_threads[i], &cfg), KEEL_RTOS_OK);
    return &rt_threads[i];
}

static inline keel_rtos_thread *rt_spawn(const char *name, void (*fn)(void *), void *arg,
                                         uint8_t prio)
{
    return rt_spawn_opts(name, fn, arg, prio, 0, false);
}

#define RT_TEST(fn) cmocka_unit_test_setup_teardown(fn, rt_setup, rt_teardown)

#endif

/* Shared between the benchmark's process-to-process cases (bench_icc.c) and its real-time
 * core cases (bench_icc_rt.c: the RTOS sim port and QEMU). */
#ifndef KEEL_BENCH_ICC_H
#define KEEL_BENCH_ICC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "keel/icc.h"

typedef struct bench_result {
    double p50_us, p99_us, msgs_s, mb_s;
} bench_result;

_Noreturn void bench_die(const char *what);
int64_t bench_now_ns(void);
/* p50/p99 of n round trips of `size`-byte messages on an endpoint whose peer echoes. */
void bench_rtt(keel_icc *c, size_t size, int n, bench_result *r);
/* Messages/s through an echoing peer with up to `window` messages in flight. */
void bench_echo_rate(keel_icc *c, size_t size, int n, bench_result *r);

/* A real-time core running firmware/apps/icc_echo: started, measured through c, stopped. */
typedef struct bench_rt {
    pid_t pid;
    keel_icc *c;
    void *mem;
    size_t mem_len;
    char shm[96], sock[96]; /* sock must fit sockaddr_un.sun_path */
} bench_rt;

/* The RTOS sim port (the release tree's fw_icc_echo). False if it is not built. */
bool bench_rt_sim_start(bench_rt *rt, uint32_t spin_ns);
/* QEMU mps2-an386 (build/fw's fw_icc_echo.elf). False if it or QEMU is missing. */
bool bench_rt_qemu_start(bench_rt *rt, uint32_t spin_ns);
/* QEMU through keel-qemu (this tree's bin/keel-qemu), as keeld runs it. */
bool bench_rt_qemu_loader_start(bench_rt *rt, uint32_t spin_ns);
void bench_rt_stop(bench_rt *rt);

#endif

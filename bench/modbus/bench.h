/* Shared by the MODBUS benchmark's parts. */
#ifndef BENCH_MODBUS_H
#define BENCH_MODBUS_H

#include <stdint.h>
#include <time.h>

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Seconds per measurement cell (BENCH_SECONDS, default 1). */
double bench_seconds(void);
void bench_tcp(void);
void bench_crc(void);
void bench_rtu(void);

#endif

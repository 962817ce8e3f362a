/* make bench-modbus: prints, measured in one run on this machine,
 *   1. CRC-16 throughput: Keel's slice-by-8 against the table method libmodbus uses;
 *   2. MODBUS TCP requests per second and p50/p99 latency for FC 3 (125 registers), FC 16
 *      (123 registers) and FC 23, one and 16 connections: Keel's client and server, libmodbus's
 *      client and server, and a bare TCP ping-pong of the same frame sizes (the floor);
 *   3. RTU bus efficiency in the simulator against the line's physical limit.
 * BENCH_SECONDS sets the time per cell (default 1). */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

double bench_seconds(void)
{
    const char *s = getenv("BENCH_SECONDS");
    double v = s ? atof(s) : 1.0;
    return v > 0 ? v : 1.0;
}

int main(void)
{
    printf("# MODBUS benchmark (%.1f s per cell)\n\n", bench_seconds());
    bench_crc();
    bench_rtu();
    bench_tcp();
    return 0;
}

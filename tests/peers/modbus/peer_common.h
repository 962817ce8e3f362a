/* Helpers for the MODBUS peer tests: start Keel's slave (`keel modbus serve`), a socat
 * pseudo-terminal pair standing in for an RS485 line, and wait for them with deadlines. */
#ifndef MODBUS_PEER_COMMON_H
#define MODBUS_PEER_COMMON_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "fixture.h"
#include "keel/modbus.h"

static inline const char *peer_path(const char *rel)
{
    static char buf[4][512];
    static int slot;
    char *p = buf[slot++ % 4];
    snprintf(p, 512, "%s/%s", kf_source_dir(), rel);
    return p;
}

static inline const char *keel_bin(void)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/bin/keel", kf_build_dir());
    return p;
}

/* One scratch directory per test program (the fixture has few), with numbered files in it. */
static inline const char *peer_dir(void)
{
    static const char *dir;
    if (!dir) {
        dir = kf_tmpdir("modbus-peers");
        assert_non_null(dir);
    }
    return dir;
}

static inline const char *peer_log(const char *name)
{
    static char buf[8][512];
    static int n;
    char *p = buf[n % 8];
    snprintf(p, 512, "%s/%d-%s.log", peer_dir(), n, name);
    n++;
    return p;
}

/* A pty pair: *a and *b are the two ends' paths. */
static inline void start_pty_pair(kf_proc *socat, char *a, char *b, size_t cap)
{
    static int pairs;
    snprintf(a, cap, "%s/pty%d-a", peer_dir(), pairs);
    snprintf(b, cap, "%s/pty%d-b", peer_dir(), pairs);
    pairs++;
    char pa[600], pb[600];
    snprintf(pa, sizeof pa, "pty,raw,echo=0,link=%s", a);
    snprintf(pb, sizeof pb, "pty,raw,echo=0,link=%s", b);
    char *argv[] = {"socat", pa, pb, NULL};
    assert_int_equal(kf_spawn(socat, "socat", argv, peer_log("socat")), 0);
    assert_int_equal(kf_wait_file(socat, a, 10000), 0);
    assert_int_equal(kf_wait_file(socat, b, 10000), 0);
}

/* keel modbus serve on TCP (port chosen here) or on a pty end. */
static inline void start_keel_tcp(kf_proc *p, uint16_t *port)
{
    *port = kf_free_port();
    char ps[16];
    snprintf(ps, sizeof ps, "%u", *port);
    char *argv[] = {(char *)keel_bin(),
                    "modbus",
                    "serve",
                    "--map",
                    (char *)peer_path("tests/peers/modbus/sensor_map.json"),
                    "--tcp",
                    ps,
                    NULL};
    assert_int_equal(kf_spawn(p, "keel-serve", argv, peer_log("keel-serve")), 0);
    if (kf_wait_tcp(p, *port, 10000) != 0) {
        kf_dump_log(p, 20);
        fail_msg("keel modbus serve did not listen");
    }
}

static inline void start_keel_rtu(kf_proc *p, const char *dev)
{
    char *argv[] = {(char *)keel_bin(),
                    "modbus",
                    "serve",
                    "--map",
                    (char *)peer_path("tests/peers/modbus/sensor_map.json"),
                    "--rtu",
                    (char *)dev,
                    "-P",
                    "none",
                    "-s",
                    "2",
                    NULL};
    assert_int_equal(kf_spawn(p, "keel-serve", argv, peer_log("keel-serve")), 0);
    if (kf_wait_log(p, "ready on", 10000) != 0) {
        kf_dump_log(p, 20);
        fail_msg("keel modbus serve did not open %s", dev);
    }
}

/* Runs a peer client to completion; asserts it passed every check. */
static inline void run_peer_client(const char *name, char *const argv[])
{
    static kf_proc procs[8]; /* the fixture keeps pointers to them until exit */
    static int n;
    kf_proc *pp = &procs[n++ % 8];
#define p (*pp)
    assert_int_equal(kf_spawn(&p, name, argv, peer_log(name)), 0);
    int st = kf_wait_exit(&p, 60000);
    if (st != 0) {
        kf_dump_log(&p, 40);
        fail_msg("%s failed (status %d)", name, st);
    }
    assert_int_equal(kf_wait_log(&p, "all checks passed", 1000), 0);
#undef p
}

/* The reference data the pymodbus and libmodbus servers hold: checks Keel's client against it.
 * The first read is retried until `deadline_ms` (a serial peer may open its end late). */
static inline void check_reference_server(keel_modbus_client *c)
{
    uint16_t regs[125];
    keel_modbus_err e = KEEL_MODBUS_ERR_TIMEOUT;
    for (int i = 0; i < 10 && e != KEEL_MODBUS_OK; i++) {
        e = keel_modbus_read_registers(c, 1, 3, 0, 125, regs);
    }
    assert_int_equal(e, KEEL_MODBUS_OK);
    for (int i = 0; i < 125; i++) {
        assert_int_equal(regs[i], 3 * i);
    }
    assert_int_equal(keel_modbus_read_registers(c, 1, 4, 10, 5, regs), KEEL_MODBUS_OK);
    assert_int_equal(regs[4], 1014);
    uint8_t bits[2];
    assert_int_equal(keel_modbus_read_bits(c, 1, 1, 0, 10, bits), KEEL_MODBUS_OK);
    assert_int_equal(bits[0], 0xAA); /* coil i = i % 2 */
    assert_int_equal(keel_modbus_read_bits(c, 1, 2, 0, 7, bits), KEEL_MODBUS_OK);
    assert_int_equal(bits[0], 0x49); /* i % 3 == 0: bits 0, 3, 6 */
    assert_int_equal(keel_modbus_write_register(c, 1, 150, 0xCAFE), KEEL_MODBUS_OK);
    const uint16_t w[4] = {11, 22, 33, 44};
    assert_int_equal(keel_modbus_write_registers(c, 1, 151, 4, w), KEEL_MODBUS_OK);
    assert_int_equal(keel_modbus_read_registers(c, 1, 3, 150, 5, regs), KEEL_MODBUS_OK);
    assert_int_equal(regs[0], 0xCAFE);
    assert_int_equal(regs[4], 44);
    assert_int_equal(keel_modbus_write_coil(c, 1, 1, false), KEEL_MODBUS_OK);
    const uint8_t wb[1] = {0x05};
    assert_int_equal(keel_modbus_write_coils(c, 1, 60, 3, wb), KEEL_MODBUS_OK);
    assert_int_equal(keel_modbus_read_bits(c, 1, 1, 60, 3, bits), KEEL_MODBUS_OK);
    assert_int_equal(bits[0] & 7, 5);
    uint16_t rr[2];
    const uint16_t w23[1] = {555};
    assert_int_equal(keel_modbus_read_write_registers(c, 1, 160, 2, rr, 161, 1, w23),
                     KEEL_MODBUS_OK);
    assert_int_equal(rr[0], 480);
    assert_int_equal(rr[1], 555);
    /* Outside the server's map: an exception, reported as such. */
    assert_int_equal(keel_modbus_read_registers(c, 1, 3, 199, 2, regs), KEEL_MODBUS_ERR_EXCEPTION);
    assert_int_equal(keel_modbus_client_last_exception(c), KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS);
    /* Still in step after the exception. */
    assert_int_equal(keel_modbus_read_registers(c, 1, 3, 198, 1, regs), KEEL_MODBUS_OK);
    assert_int_equal(regs[0], 594);
}

/* 19200 baud, 8 data bits, no parity, 2 stop bits (the spec's frame when there is no
 * parity). Not 8E1: this machine's kernel refuses PARENB on a pseudo-terminal (EINVAL). */
static inline keel_modbus_serial_opts serial_19200_8n2(void)
{
    keel_modbus_serial_opts o = {0};
    o.line = (keel_modbus_line){19200, 8, KEEL_MODBUS_PARITY_NONE, 2};
    return o;
}

#endif

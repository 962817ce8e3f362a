/* `keel modbus` end to end: serve a map, then read, write, id and scan it over TCP and over
 * RTU on a socat pty pair, and the exit codes a script relies on (0 ok, 2 usage, 4 timeout,
 * 5 a malformed map, 6 an exception). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "fixture.h"

static kf_proc srv, socat, runs[16];
static int nruns;
static char dir[512];

static const char *keel(void)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/bin/keel", kf_build_dir());
    return p;
}

static const char *map_path(void)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/tests/peers/modbus/sensor_map.json", kf_source_dir());
    return p;
}

/* Runs `keel modbus ...` to completion; returns its exit code; *out is its log's proc. */
static int run(kf_proc **out, char *const argv[])
{
    kf_proc *p = &runs[nruns % 16];
    char log[600];
    snprintf(log, sizeof log, "%s/run%d.log", dir, nruns++);
    assert_int_equal(kf_spawn(p, "keel", argv, log), 0);
    int st = kf_wait_exit(p, 30000);
    assert_true(st >= 0);
    *out = p;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void expect_output(const kf_proc *p, const char *needle)
{
    if (kf_wait_log(p, needle, 1000) != 0) {
        kf_dump_log(p, 20);
        fail_msg("output lacks \"%s\"", needle);
    }
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s", kf_tmpdir("modbus-cli"));
    return 0;
}

static void test_cli_tcp_read_write_id_and_exit_codes(void **state)
{
    (void)state;
    uint16_t port = kf_free_port();
    char ps[16], hp[32];
    snprintf(ps, sizeof ps, "%u", port);
    snprintf(hp, sizeof hp, "127.0.0.1:%u", port);
    char log[600];
    snprintf(log, sizeof log, "%s/serve.log", dir);
    char *serve[] = {(char *)keel(),     "modbus", "serve", "--map",
                     (char *)map_path(), "--tcp",  ps,      NULL};
    assert_int_equal(kf_spawn(&srv, "keel-serve", serve, log), 0);
    assert_int_equal(kf_wait_log(&srv, "listening on port", 10000), 0);
    kf_proc *p;
    char *rd[] = {(char *)keel(), "modbus", "read", "--tcp", hp, "0", "2", NULL};
    assert_int_equal(run(&p, rd), 0);
    expect_output(p, "holding[0] = 215 (0x00d7");
    expect_output(p, "holding[1] = 480");
    char *wr[] = {(char *)keel(), "modbus", "write", "--tcp", hp, "10", "7", "-2", NULL};
    assert_int_equal(run(&p, wr), 0);
    char *rd2[] = {(char *)keel(), "modbus", "read", "--tcp", hp, "10", "2", NULL};
    assert_int_equal(run(&p, rd2), 0);
    expect_output(p, "holding[11] = 65534 (0xfffe, signed -2)");
    char *coil[] = {(char *)keel(), "modbus", "read", "--tcp", hp, "-T", "coil", "0", "3", NULL};
    assert_int_equal(run(&p, coil), 0);
    expect_output(p, "coil[2] = 1");
    char *exc[] = {(char *)keel(), "modbus", "read", "--tcp", hp, "199", "2", NULL};
    assert_int_equal(run(&p, exc), 6);
    expect_output(p, "exception 2 (illegal data address)");
    char *id[] = {(char *)keel(), "modbus", "id", "--tcp", hp, NULL};
    assert_int_equal(run(&p, id), 0);
    expect_output(p, "product_code: KS-THP");
    char *v6[] = {(char *)keel(), "modbus", "read", "--tcp", "[::1]:0", "0", NULL};
    snprintf(hp, sizeof hp, "[::1]:%u", port);
    v6[4] = hp;
    assert_int_equal(run(&p, v6), 0); /* the server binds :: and serves IPv6 too */
    expect_output(p, "holding[0] = 215");
    char *usage[] = {(char *)keel(), "modbus", "read", "0", NULL};
    assert_int_equal(run(&p, usage), 2);
    char *help[] = {(char *)keel(), "modbus", "read", "--help", NULL};
    assert_int_equal(run(&p, help), 0);
    expect_output(p, "usage: keel modbus read");
    char *refused[] = {(char *)keel(), "modbus", "read", "--tcp", "127.0.0.1:1", "0", NULL};
    assert_int_equal(run(&p, refused), 3);
    kf_stop(&srv, 2000);
    expect_output(&srv, "frames");
}

static void test_cli_serve_rejects_bad_map_with_location(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/bad.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\n  \"holding_registers\": {\"count\": 4, \"values\": [1, 2, 70000]}\n}\n", f);
    fclose(f);
    kf_proc *p;
    char *serve[] = {(char *)keel(), "modbus", "serve", "--map", path, "--tcp", "0", NULL};
    assert_int_equal(run(&p, serve), 5);
    expect_output(p, "holding_registers.values[2] = 70000 is out of range");
    f = fopen(path, "w");
    fputs("{\n  \"unit\": 1,\n  oops\n}\n", f);
    fclose(f);
    assert_int_equal(run(&p, serve), 5);
    expect_output(p, "bad.json:3:");
}

static void test_cli_rtu_scan_and_timeout_on_pty(void **state)
{
    (void)state;
    char a[600], b[600], pa[700], pb[700];
    snprintf(a, sizeof a, "%s/ttyA", dir);
    snprintf(b, sizeof b, "%s/ttyB", dir);
    snprintf(pa, sizeof pa, "pty,raw,echo=0,link=%s", a);
    snprintf(pb, sizeof pb, "pty,raw,echo=0,link=%s", b);
    char *sargv[] = {"socat", pa, pb, NULL};
    char log[600];
    snprintf(log, sizeof log, "%s/socat.log", dir);
    assert_int_equal(kf_spawn(&socat, "socat", sargv, log), 0);
    assert_int_equal(kf_wait_file(&socat, a, 10000), 0);
    assert_int_equal(kf_wait_file(&socat, b, 10000), 0);
    kf_proc *p;
    /* Nothing on the other end yet: a timeout, exit 4. */
    char *rd[] = {(char *)keel(), "modbus", "read", "--rtu", b,   "-P", "none",
                  "-s",           "2",      "-o",   "200",   "0", NULL};
    assert_int_equal(run(&p, rd), 4);
    expect_output(p, "no reply from unit 1 within 200 ms");
    snprintf(log, sizeof log, "%s/serve-rtu.log", dir);
    char *serve[] = {(char *)keel(),
                     "modbus",
                     "serve",
                     "--map",
                     (char *)map_path(),
                     "--rtu",
                     a,
                     "-P",
                     "none",
                     "-s",
                     "2",
                     "-u",
                     "3",
                     NULL};
    assert_int_equal(kf_spawn(&srv, "keel-serve", serve, log), 0);
    assert_int_equal(kf_wait_log(&srv, "ready on", 10000), 0);
    /* A generous timeout per unit: the machine running the tests may be loaded. */
    char *scan[] = {(char *)keel(), "modbus", "scan", "--rtu", b,    "-P",   "none", "-s", "2",
                    "--from",       "1",      "--to", "5",     "-o", "1000", NULL};
    assert_int_equal(run(&p, scan), 0);
    expect_output(p, "unit 3: present (holding[0] = 215)");
    expect_output(p, "1 unit(s) answered in 1..5");
    kf_stop(&srv, 2000);
    kf_stop(&socat, 2000);
}

static void test_cli_simulate_reports_timing_and_writes_vcd(void **state)
{
    (void)state;
    char vcd[600];
    snprintf(vcd, sizeof vcd, "%s/bus.vcd", dir);
    kf_proc *p;
    char *sim[] = {(char *)keel(), "modbus", "simulate", "-b", "115200", "-l", "0",
                   "-n",           "5",      "-w",       vcd,  NULL};
    assert_int_equal(run(&p, sim), 0);
    expect_output(p, "5/5 polls answered");
    expect_output(p, "DE released at most 550 ns after the last stop bit");
    expect_output(p, "0 collisions, 0 garbled, 0 cut");
    FILE *f = fopen(vcd, "r");
    assert_non_null(f);
    char line[128] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_non_null(strstr(line, "$date"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_tcp_read_write_id_and_exit_codes),
        cmocka_unit_test(test_cli_serve_rejects_bad_map_with_location),
        cmocka_unit_test(test_cli_rtu_scan_and_timeout_on_pty),
        cmocka_unit_test(test_cli_simulate_reports_timing_and_writes_vcd),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}

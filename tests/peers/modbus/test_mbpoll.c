/* mbpoll (Debian's) reading and writing Keel's slave over TCP and over RTU on a socat pty
 * pair: the tool integrators reach for first must work against Keel unchanged. */
#include "peer_common.h"

static kf_proc socat, srv, poll_proc[8];
static int npoll;

/* Runs mbpoll to completion; returns its log path after asserting it exited 0. */
static const char *mbpoll(char *const argv[])
{
    kf_proc *p = &poll_proc[npoll++ % 8];
    const char *log = peer_log("mbpoll");
    assert_int_equal(kf_spawn(p, "mbpoll", argv, log), 0);
    int st = kf_wait_exit(p, 30000);
    if (st != 0) {
        kf_dump_log(p, 30);
        fail_msg("mbpoll exited with status %d", st);
    }
    return p->log;
}

static void expect_log(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    if (!strstr(buf, needle)) {
        fail_msg("mbpoll output lacks \"%s\":\n%s", needle, buf);
    }
}

static void test_mbpoll_reads_and_writes_keel_slave_tcp(void **state)
{
    (void)state;
    uint16_t port;
    start_keel_tcp(&srv, &port);
    char ps[16];
    snprintf(ps, sizeof ps, "%u", port);
    /* -0: PDU addressing, -1: poll once. */
    char *rd[] = {"mbpoll", "-o", "5",  "-m", "tcp", "-p", ps,          "-a", "1",
                  "-0",     "-1", "-r", "0",  "-c",  "3",  "127.0.0.1", NULL};
    const char *log = mbpoll(rd);
    expect_log(log, "[0]: \t215");
    expect_log(log, "[2]: \t1013");
    char *wr[] = {"mbpoll", "-o", "5",  "-m", "tcp",       "-p",   ps,     "-a",
                  "1",      "-0", "-r", "30", "127.0.0.1", "1234", "5678", NULL};
    mbpoll(wr);
    char *rd2[] = {"mbpoll", "-o", "5",  "-m", "tcp", "-p", ps,          "-a", "1",
                   "-0",     "-1", "-r", "30", "-c",  "2",  "127.0.0.1", NULL};
    log = mbpoll(rd2);
    expect_log(log, "[30]: \t1234");
    expect_log(log, "[31]: \t5678");
    char *in[] = {"mbpoll", "-o", "5",  "-m", "tcp", "-p", ps,          "-a", "1",
                  "-0",     "-1", "-t", "3",  "-r",  "1",  "127.0.0.1", NULL};
    expect_log(mbpoll(in), "[1]: \t4800");
    kf_stop(&srv, 2000);
}

static void test_mbpoll_reads_and_writes_keel_slave_rtu_pty(void **state)
{
    (void)state;
    char a[512], b[512];
    start_pty_pair(&socat, a, b, sizeof a);
    start_keel_rtu(&srv, a);
    char *rd[] = {"mbpoll", "-o", "5",  "-m", "rtu", "-b", "19200", "-P", "none", "-s", "2",
                  "-a",     "1",  "-0", "-1", "-r",  "0",  "-c",    "2",  b,      NULL};
    expect_log(mbpoll(rd), "[1]: \t480");
    char *wr[] = {"mbpoll", "-o", "5",  "-m", "rtu", "-b", "19200", "-P", "none", "-s", "2",
                  "-a",     "1",  "-0", "-t", "0",   "-r", "7",     b,    "1",    NULL};
    mbpoll(wr);
    char *rd2[] = {"mbpoll", "-o", "5",  "-m", "rtu", "-b", "19200", "-P", "none", "-s", "2",
                   "-a",     "1",  "-0", "-1", "-t",  "0",  "-r",    "7",  b,      NULL};
    expect_log(mbpoll(rd2), "[7]: \t1");
    kf_stop(&srv, 2000);
    kf_stop(&socat, 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mbpoll_reads_and_writes_keel_slave_tcp),
        cmocka_unit_test(test_mbpoll_reads_and_writes_keel_slave_rtu_pty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

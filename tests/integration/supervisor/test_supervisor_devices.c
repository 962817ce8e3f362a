/* Devices keeld hands to apps, and the system calls it does not let them make.
 *
 * Serial: socat makes a real pty pair; the device config names one end "rs485"; an app under
 * keeld with the "serial" capability gets the fd from keeld, writes a MODBUS RTU request, and
 * the test reads it from the other end and answers. Apps without the capability, or asking for
 * a name the config does not have, are refused with a status.
 * GPIO: this machine has no /dev/gpiochip* and no gpio-sim module, so only the refusal paths
 * run: not in the manifest, not in the config, the chip missing, a path that is no GPIO chip.
 * seccomp: apps making a system call outside the allow list are killed and the crash report
 * names the call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "world.h"

static sv_world W;
static char out[65536];
static kf_proc socat;
static char tty_app[300], tty_dev[300];
static int dev_fd = -1; /* the device's end of the pty pair, open before keeld starts */

#define NEED_ROOT()                                                                              \
    do {                                                                                         \
        if (geteuid() != 0) {                                                                    \
            print_message("skipped: the sandbox needs root (namespaces, uids, cgroups)\n");     \
            skip();                                                                              \
        }                                                                                        \
    } while (0)

static uint16_t crc16(const uint8_t *p, size_t n)
{
    uint16_t crc = 0xffff;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++) {
            crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xa001) : (uint16_t)(crc >> 1);
        }
    }
    return crc;
}

static int setup(void **state)
{
    (void)state;
    const char *dir = kf_tmpdir("sv-devices-tty");
    snprintf(tty_app, sizeof tty_app, "%s/app", dir);
    snprintf(tty_dev, sizeof tty_dev, "%s/dev", dir);
    char a1[400], a2[400];
    snprintf(a1, sizeof a1, "pty,raw,echo=0,link=%s", tty_app);
    snprintf(a2, sizeof a2, "pty,raw,echo=0,link=%s", tty_dev);
    char *argv[] = {"socat", a1, a2, NULL};
    if (kf_spawn(&socat, "socat", argv, NULL) < 0 || kf_wait_file(&socat, tty_app, 10000) < 0 ||
        kf_wait_file(&socat, tty_dev, 10000) < 0) {
        return -1;
    }
    /* opened before any app writes, so no byte is written to an end nobody holds */
    dev_fd = open(tty_dev, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (dev_fd < 0) {
        return -1;
    }
    char extra[1500];
    snprintf(extra, sizeof extra,
             "\"backoff_initial_ms\": 10, \"backoff_max_ms\": 400, \"stop_grace_ms\": 1000, "
             "\"serial\": {\"rs485\": {\"path\": \"%s\", \"baud\": 19200, \"parity\": \"even\", \"stop_bits\": 2}, "
             "\"notatty\": {\"path\": \"/dev/null\"}, "
             "\"halfduplex\": {\"path\": \"%s\", \"baud\": 9600, \"rs485\": true}, "
             "\"gone\": {\"path\": \"%s/no-such-tty\"}}, "
             "\"gpio\": {\"relay\": {\"chip\": \"/dev/null\", \"line\": 3, \"direction\": "
             "\"output\"}, \"nochip\": {\"chip\": \"%s/gpiochip-none\", \"line\": 0}}",
             tty_app, tty_app, dir, dir);
    if (sv_world_init(&W, "supervisor-devices", extra) < 0) {
        return -1;
    }
    const char *st = sv_world_store(&W);
    struct {
        const char *name, *exe, *json;
    } pkgs[] = {
        {"modbus", "sv_devices",
         "\"args\": [\"serial\", \"rs485\", \"rs232\", \"notatty\", \"gone\", \"halfduplex\"], "
         "\"capabilities\": {\"serial\": [\"rs485\", \"rs232\", \"notatty\", \"gone\", "
         "\"halfduplex\"]}"},
        {"noserial", "sv_devices", "\"args\": [\"serial\", \"rs485\"]"},
        {"relay", "sv_devices",
         "\"args\": [\"gpio\", \"relay\", \"nochip\", \"led\", \"rs485\"], "
         "\"capabilities\": {\"gpio\": [\"relay\", \"nochip\", \"led\"]}"},
        {"sysbpf", "sv_evil", "\"args\": [\"sys\", \"bpf\"], \"restart\": \"never\""},
        {"sysmade", "sv_evil", "\"args\": [\"sys\", \"4000\"], \"restart\": \"never\""},
        {"sysptrace", "sv_evil", "\"args\": [\"sys\", \"ptrace\"], \"restart\": \"never\""},
        {"sysunshare", "sv_evil", "\"args\": [\"sys\", \"unshare\"], \"restart\": \"never\""},
        {"syskeyctl", "sv_evil", "\"args\": [\"sys\", \"keyctl\"], \"restart\": \"never\""},
    };
    for (size_t i = 0; i < sizeof pkgs / sizeof pkgs[0]; i++) {
        if (sv_world_package(st, pkgs[i].name, pkgs[i].exe, pkgs[i].json) < 0) {
            return -1;
        }
    }
    if (sv_world_start(&W) < 0) {
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int st = kf_stop(&W.keeld, 5000);
    kf_stop(&socat, 1000);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        kf_dump_log(&W.keeld, 80);
        return -1;
    }
    return 0;
}

/* Reads exactly n bytes from fd within timeout_ms; returns the count read. */
static size_t read_n(int fd, uint8_t *buf, size_t n, int timeout_ms)
{
    size_t got = 0;
    for (int waited = 0; got < n && waited < timeout_ms; waited += 50) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) == 1) {
            ssize_t r = read(fd, buf + got, n - got);
            if (r > 0) {
                got += (size_t)r;
            }
        }
    }
    return got;
}

static void test_serial_port_handed_over_and_a_modbus_exchange_runs(void **state)
{
    (void)state;
    NEED_ROOT();
    int fd = dev_fd;
    assert_true(sv_world_wait(&W, "logs modbus 50", "devices: serial_open rs485 -> KEEL_APP_OK",
                              10000));
    /* the request the app wrote through the handed fd, as the wire carries it */
    uint8_t req[8];
    size_t n = read_n(fd, req, sizeof req, 10000);
    assert_int_equal(n, sizeof req);
    static const uint8_t want[6] = {0x01, 0x03, 0x00, 0x00, 0x00, 0x02};
    assert_memory_equal(req, want, sizeof want);
    uint16_t c = crc16(req, 6);
    assert_int_equal(req[6], c & 0xff);
    assert_int_equal(req[7], c >> 8);
    uint8_t ans[9] = {0x01, 0x03, 0x04, 0x00, 42, 0x01, 0x2c};
    c = crc16(ans, 7);
    ans[7] = (uint8_t)(c & 0xff);
    ans[8] = (uint8_t)(c >> 8);
    assert_int_equal(write(fd, ans, sizeof ans), (ssize_t)sizeof ans);
    assert_true(sv_world_wait(&W, "logs modbus 50", "devices: registers 42 300", 10000));
    sv_world_ctl(&W, "logs modbus 50", out, sizeof out);
    /* blocking, read-write, not inherited by anything the app execs */
    assert_non_null(strstr(out, "devices: fd flags rdwr blocking cloexec"));
    /* the manifest lists rs232, the device config does not have it */
    assert_non_null(strstr(out, "devices: serial_open rs232 -> KEEL_APP_ERR_NOT_FOUND"));
    assert_non_null(strstr(out, "the device config has no such port"));
    /* a config naming something that is not a serial port, or nothing at all */
    assert_non_null(strstr(out, "devices: serial_open notatty -> KEEL_APP_ERR_IO"));
    assert_non_null(strstr(out, "not a serial device"));
    assert_non_null(strstr(out, "devices: serial_open gone -> KEEL_APP_ERR_IO"));
    /* a pty has no RS485 mode: a port the config wants in RS485 mode is refused, not handed
     * over half set up */
    assert_non_null(strstr(out, "devices: serial_open halfduplex -> KEEL_APP_ERR_IO"));
    assert_non_null(strstr(out, "the driver has no kernel RS485 mode"));
    /* keeld set the line up as the config says: 19200 baud, 2 stop bits, raw. (The config
     * asks for even parity too, but the kernel's pty driver forces CS8 without parity, so a
     * pty cannot show it; a real UART keeps it.) */
    int t = open(tty_app, O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    assert_true(t >= 0);
    struct termios tio;
    assert_int_equal(tcgetattr(t, &tio), 0);
    close(t);
    assert_int_equal(cfgetospeed(&tio), B19200);
    assert_true(tio.c_cflag & CSTOPB);
    assert_false(tio.c_lflag & ICANON);
    assert_false(tio.c_lflag & ECHO);
}

static void test_serial_refused_without_the_capability(void **state)
{
    (void)state;
    NEED_ROOT();
    assert_true(sv_world_wait(&W, "logs noserial 50", "devices: done", 10000));
    sv_world_ctl(&W, "logs noserial 50", out, sizeof out);
    assert_non_null(strstr(out, "devices: serial_open rs485 -> KEEL_APP_ERR_DENIED"));
    assert_non_null(strstr(out, "the manifest does not list it"));
    assert_null(strstr(out, "request sent"));
}

static void test_gpio_refusals(void **state)
{
    (void)state;
    NEED_ROOT();
    assert_true(sv_world_wait(&W, "logs relay 50", "devices: done", 10000));
    sv_world_ctl(&W, "logs relay 50", out, sizeof out);
    /* the config's chip is /dev/null: the line request ioctl is refused */
    assert_non_null(strstr(out, "devices: gpio_open relay -> KEEL_APP_ERR_IO"));
    assert_non_null(strstr(out, "not a GPIO character device"));
    assert_non_null(strstr(out, "devices: gpio_open nochip -> KEEL_APP_ERR_IO"));
    assert_non_null(strstr(out, "No such file or directory"));
    /* in the manifest, not in the device config */
    assert_non_null(strstr(out, "devices: gpio_open led -> KEEL_APP_ERR_NOT_FOUND"));
    assert_non_null(strstr(out, "the device config has no such line"));
    /* not in the manifest (a serial port's name is no GPIO line either) */
    assert_non_null(strstr(out, "devices: gpio_open rs485 -> KEEL_APP_ERR_DENIED"));
}

static void test_syscalls_outside_the_allow_list_are_killed_and_named(void **state)
{
    (void)state;
    NEED_ROOT();
    static const char *const cases[][2] = {
        {"sysbpf", "denied system call 321 (bpf)"},
        {"sysmade", "denied system call 4000 (unknown)"},
        {"sysptrace", "denied system call 101 (ptrace)"},
        {"sysunshare", "denied system call 272 (unshare)"},
        {"syskeyctl", "denied system call 250 (keyctl)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char req[64];
        snprintf(req, sizeof req, "crashes %s 1", cases[i][0]);
        if (!sv_world_wait(&W, req, "SIGSYS", 10000)) {
            kf_dump_log(&W.keeld, 40);
            fail_msg("%s: no SIGSYS report", cases[i][0]);
        }
        sv_world_ctl(&W, req, out, sizeof out);
        if (!strstr(out, cases[i][1])) {
            fail_msg("%s: '%s' missing in:\n%s", cases[i][0], cases[i][1], out);
        }
        assert_non_null(strstr(out, "exit: killed by SIGSYS"));
        /* and the app never got past the call */
        snprintf(req, sizeof req, "logs %s 50", cases[i][0]);
        sv_world_ctl(&W, req, out, sizeof out);
        assert_non_null(strstr(out, "evil: sys calling"));
        assert_null(strstr(out, "evil: sys returned"));
    }
    assert_true(kf_running(&W.keeld));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serial_port_handed_over_and_a_modbus_exchange_runs),
        cmocka_unit_test(test_serial_refused_without_the_capability),
        cmocka_unit_test(test_gpio_refusals),
        cmocka_unit_test(test_syscalls_outside_the_allow_list_are_killed_and_named),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

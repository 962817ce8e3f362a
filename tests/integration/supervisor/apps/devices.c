/* A well-behaved app that asks keeld for devices by name and logs what it got, so the test can
 * assert both the refusals and a real exchange.
 *   devices serial NAME...  keel_app_serial_open each NAME; with the first fd handed over,
 *                           send a MODBUS RTU request (read 2 holding registers of unit 1) and
 *                           log the answer's registers once its CRC checks.
 *   devices gpio NAME...    keel_app_gpio_open each NAME and log the status.
 * Everything it learns goes into its log ("devices: ..."), then it idles. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keel/app.h"

static keel_app *g_app;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0 && keel_app_log(g_app, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1) !=
                     KEEL_APP_OK) {
        return;
    }
}

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

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Reads exactly n bytes within timeout_ms; returns how many came. */
static size_t read_n(int fd, uint8_t *buf, size_t n, int timeout_ms)
{
    size_t got = 0;
    int64_t end = now_ms() + timeout_ms;
    while (got < n) {
        int64_t left = end - now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
            break;
        }
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0 && !(r < 0 && errno == EINTR)) {
            break;
        }
        got += r > 0 ? (size_t)r : 0;
    }
    return got;
}

static void modbus_exchange(int fd)
{
    int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);
    say("devices: fd flags %s%s%s", (fl & O_ACCMODE) == O_RDWR ? "rdwr" : "not-rdwr",
        (fl & O_NONBLOCK) ? " nonblocking" : " blocking", (fdfl & FD_CLOEXEC) ? " cloexec" : "");
    uint8_t req[8] = {0x01, 0x03, 0x00, 0x00, 0x00, 0x02};
    uint16_t c = crc16(req, 6);
    req[6] = (uint8_t)(c & 0xff);
    req[7] = (uint8_t)(c >> 8);
    if (write(fd, req, sizeof req) != (ssize_t)sizeof req) {
        say("devices: write: %s", strerror(errno));
        return;
    }
    say("devices: request sent");
    uint8_t ans[9];
    size_t n = read_n(fd, ans, sizeof ans, 10000);
    if (n != sizeof ans) {
        say("devices: answer: %zu bytes, wanted %zu", n, sizeof ans);
        return;
    }
    c = crc16(ans, 7);
    if (ans[0] != 1 || ans[1] != 3 || ans[2] != 4 || ans[7] != (c & 0xff) || ans[8] != (c >> 8)) {
        say("devices: answer malformed");
        return;
    }
    say("devices: registers %u %u", (unsigned)(ans[3] << 8 | ans[4]),
        (unsigned)(ans[5] << 8 | ans[6]));
}

int main(int argc, char **argv)
{
    keel_app_status st = keel_app_open(&g_app);
    if (st != KEEL_APP_OK) {
        fprintf(stderr, "devices: keel_app_open: %s\n", keel_app_status_name(st));
        return 1;
    }
    const char *kind = argc > 1 ? argv[1] : "";
    bool serial = strcmp(kind, "serial") == 0;
    int used = -1;
    for (int i = 2; i < argc; i++) {
        int fd = -1;
        st = serial ? keel_app_serial_open(g_app, argv[i], &fd)
                    : keel_app_gpio_open(g_app, argv[i], &fd);
        say("devices: %s_open %s -> %s", kind, argv[i], keel_app_status_name(st));
        if (st == KEEL_APP_OK && serial && used < 0) {
            used = fd;
        } else if (fd >= 0) {
            close(fd);
        }
    }
    if (used >= 0) {
        modbus_exchange(used);
        close(used);
    }
    say("devices: done");
    for (;;) {
        pause();
    }
}

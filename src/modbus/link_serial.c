/* The serial backend: a tty in raw mode at the line's baud, parity and stop bits, driving an
 * RS485 transceiver one of two ways.
 *
 * - Kernel RS485 mode (TIOCSRS485): the UART driver raises RTS (driver-enable) when it starts
 *   sending and drops it when its shift register is empty, from its own interrupt. This is the
 *   right way on Linux and what Keel asks for first.
 * - RTS toggling from user space, when the driver has no RS485 mode: raise RTS, write,
 *   tcdrain() until the kernel says the bytes left, then drop RTS. tcdrain returns on the
 *   kernel's idea of "sent", often a character or a scheduler tick late, which is exactly the
 *   weakness libmodbus users meet (its issues #367, #606): the real-time core's line driver
 *   (firmware/drivers/rs485) is the answer where timing matters.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/serial.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "link.h"

static speed_t speed_for(uint32_t baud)
{
    static const struct {
        uint32_t baud;
        speed_t speed;
    } table[] = {
        {1200, B1200},     {2400, B2400},     {4800, B4800},     {9600, B9600},
        {19200, B19200},   {38400, B38400},   {57600, B57600},   {115200, B115200},
        {230400, B230400}, {460800, B460800}, {921600, B921600},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (table[i].baud == baud) {
            return table[i].speed;
        }
    }
    return 0;
}

static void pause_us(uint32_t us)
{
    struct timespec ts = {us / 1000000u, (long)(us % 1000000u) * 1000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static keel_modbus_err write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                (void)poll(&p, 1, 100);
                continue;
            }
            return KEEL_MODBUS_ERR_IO;
        }
        buf += n;
        len -= (size_t)n;
    }
    return KEEL_MODBUS_OK;
}

static keel_modbus_err serial_send(keel_modbus_link *l, const uint8_t *buf, size_t len)
{
    if (l->rs485 != RS485_RTS) {
        return write_all(l->fd, buf, len);
    }
    int rts = TIOCM_RTS;
    if (ioctl(l->fd, TIOCMBIS, &rts) < 0) {
        return KEEL_MODBUS_ERR_IO;
    }
    pause_us(l->rts_delay_us);
    keel_modbus_err e = write_all(l->fd, buf, len);
    (void)tcdrain(l->fd);
    pause_us(l->rts_delay_us);
    (void)ioctl(l->fd, TIOCMBIC, &rts);
    return e;
}

static keel_modbus_err serial_recv(keel_modbus_link *l, uint8_t *buf, size_t cap, int timeout_ms,
                                   size_t *got)
{
    *got = 0;
    struct pollfd p = {.fd = l->fd, .events = POLLIN};
    int r;
    do {
        r = poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        return KEEL_MODBUS_ERR_IO;
    }
    if (r == 0) {
        return KEEL_MODBUS_ERR_TIMEOUT;
    }
    if (p.revents & (POLLHUP | POLLERR) && !(p.revents & POLLIN)) {
        return KEEL_MODBUS_ERR_CLOSED; /* the other end of a pty went away */
    }
    ssize_t n = read(l->fd, buf, cap);
    if (n < 0) {
        return errno == EAGAIN || errno == EINTR ? KEEL_MODBUS_ERR_TIMEOUT : KEEL_MODBUS_ERR_IO;
    }
    if (n == 0) {
        return KEEL_MODBUS_ERR_CLOSED;
    }
    *got = (size_t)n;
    return KEEL_MODBUS_OK;
}

static void serial_flush(keel_modbus_link *l)
{
    (void)tcflush(l->fd, TCIFLUSH);
}

static void serial_close(keel_modbus_link *l)
{
    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
}

static const keel_modbus_backend serial_backend = {"serial", serial_send, serial_recv, serial_flush,
                                                   serial_close};

keel_modbus_err keel_modbus_link_serial_open(keel_modbus_link *l, const char *device,
                                             const keel_modbus_serial_opts *opts)
{
    keel_modbus_rtu_timing timing;
    if (keel_modbus_rtu_timing_for(&opts->line, &timing) != KEEL_MODBUS_OK) {
        return KEEL_MODBUS_ERR_ARG;
    }
    speed_t speed = speed_for(opts->line.baud);
    if (speed == 0) {
        return KEEL_MODBUS_ERR_UNSUPPORTED;
    }
    int fd = open(device, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        return KEEL_MODBUS_ERR_IO;
    }
    struct termios tio;
    if (tcgetattr(fd, &tio) < 0) {
        close(fd);
        return KEEL_MODBUS_ERR_IO;
    }
    cfmakeraw(&tio);
    cfsetispeed(&tio, speed);
    cfsetospeed(&tio, speed);
    tio.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS);
    tio.c_cflag |= CLOCAL | CREAD | (opts->line.data_bits == 7 ? CS7 : CS8);
    if (opts->line.parity != KEEL_MODBUS_PARITY_NONE) {
        tio.c_cflag |= PARENB;
        if (opts->line.parity == KEEL_MODBUS_PARITY_ODD) {
            tio.c_cflag |= PARODD;
        }
    }
    if (opts->line.stop_bits == 2) {
        tio.c_cflag |= CSTOPB;
    }
    tio.c_cc[VMIN] = 0;
    tio.c_cc[VTIME] = 0;
    if (tcsetattr(fd, TCSANOW, &tio) < 0) {
        close(fd);
        return KEEL_MODBUS_ERR_IO;
    }
    memset(l, 0, sizeof *l);
    l->be = &serial_backend;
    l->fd = fd;
    l->framing = KEEL_MODBUS_RTU;
    l->line = opts->line;
    l->rts_delay_us = opts->rts_delay_us;
    l->rs485 = RS485_NONE;
    if (opts->rs485 && !opts->rts_toggle) {
        struct serial_rs485 rs = {0};
        rs.flags = SER_RS485_ENABLED | SER_RS485_RTS_ON_SEND;
        rs.delay_rts_before_send = opts->rts_delay_us / 1000u;
        rs.delay_rts_after_send = opts->rts_delay_us / 1000u;
        if (ioctl(fd, TIOCSRS485, &rs) == 0) {
            l->rs485 = RS485_KERNEL;
        }
    }
    if ((opts->rs485 || opts->rts_toggle) && l->rs485 == RS485_NONE) {
        int rts = TIOCM_RTS;
        if (ioctl(fd, TIOCMBIC, &rts) == 0) {
            l->rs485 = RS485_RTS; /* the driver can at least drive RTS */
        }
    }
    (void)tcflush(fd, TCIOFLUSH);
    return KEEL_MODBUS_OK;
}

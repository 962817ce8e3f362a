/* The field bus and its sensors; see fieldbus.h. Each connection accumulates bytes until
 * keel_modbus_rtu_frame_len() says a request frame is complete, then offers it to both
 * sensors' slave cores (each answers only its own unit); garbage that cannot be sized drops the
 * connection's buffer, as a line driver resynchronises on silence. */
#include "fieldbus.h"

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "keel/modbus.h"

typedef struct conn {
    int fd;
    uint8_t buf[KEEL_MODBUS_MAX_RTU_ADU];
    size_t len;
} conn;

struct fieldbus {
    int lfd;
    conn c[FIELDBUS_MAX_CONN];
    keel_modbus_slave room, supply;
    uint16_t supply_period_s;
    sensor_boot *boot; /* unit 2's bootloader, or NULL */
    uint32_t answered, refused;
    bool via_world; /* TCP frames go out on the world's bus (fieldbus_via_world) */
    int owner;      /* the connection whose frame is on the bus, -1: none */
};

static int16_t centi(double v)
{
    double x = round(v * 100.0);
    return (int16_t)(x > 32767 ? 32767 : x < -32768 ? -32768 : x);
}

uint8_t fieldbus_read_input(const world_status *s, uint8_t unit, uint16_t addr, uint16_t count,
                            uint16_t *regs)
{
    uint16_t all[3];
    uint16_t n;
    if (unit == 1) {
        all[0] = (uint16_t)centi(s->room_temp_c);
        all[1] = (uint16_t)centi(s->room_humidity_pct);
        all[2] = (uint16_t)lround(s->room_pressure_hpa * 10.0);
        n = 3;
    } else {
        double t = s->hvac == ENVMON_HVAC_HEATING   ? 35.0
                   : s->hvac == ENVMON_HVAC_COOLING ? 13.0
                                                    : s->room_temp_c;
        all[0] = (uint16_t)centi(t);
        n = 1;
    }
    if (addr >= n || count > n - addr) {
        return KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS;
    }
    memcpy(regs, all + addr, count * sizeof *regs);
    return 0;
}

static uint8_t room_regs(void *ctx, int table, uint16_t addr, uint16_t count, uint16_t *regs)
{
    (void)ctx;
    if (table != KEEL_MODBUS_INPUT) {
        return KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS;
    }
    world_status s;
    world_status_get(&s);
    return fieldbus_read_input(&s, 1, addr, count, regs);
}

static bool in_profile(uint16_t addr)
{
    return addr >= KEEL_UPDATE_SENSOR_BASE;
}

static uint8_t supply_regs(void *ctx, int table, uint16_t addr, uint16_t count, uint16_t *regs)
{
    fieldbus *b = ctx;
    if (b->boot && table == KEEL_MODBUS_HOLDING && in_profile(addr)) {
        return sensor_boot_read_regs(b->boot, table, addr, count, regs);
    }
    if (table == KEEL_MODBUS_HOLDING) {
        if (addr != 0 || count != 1) {
            return KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS;
        }
        regs[0] = b->supply_period_s;
        return 0;
    }
    world_status s;
    world_status_get(&s);
    return fieldbus_read_input(&s, 2, addr, count, regs);
}

static uint8_t supply_write(void *ctx, uint16_t addr, uint16_t count, const uint16_t *regs)
{
    fieldbus *b = ctx;
    if (b->boot && in_profile(addr)) {
        return sensor_boot_write_regs(b->boot, addr, count, regs);
    }
    if (addr != 0 || count != 1) {
        return KEEL_MODBUS_EXC_ILLEGAL_DATA_ADDRESS;
    }
    if (regs[0] < 1 || regs[0] > 3600) {
        return KEEL_MODBUS_EXC_ILLEGAL_DATA_VALUE;
    }
    b->supply_period_s = regs[0];
    return 0;
}

static const char *room_id(void *ctx, uint8_t id)
{
    (void)ctx;
    static const char *const v[] = {"Keel", "ENV-RS485", "1.0.0"};
    return id < 3 ? v[id] : NULL;
}

static uint8_t supply_write_file(void *ctx, uint16_t file, uint16_t record, uint16_t count,
                                 const uint16_t *regs)
{
    fieldbus *b = ctx;
    return b->boot ? sensor_boot_write_file(b->boot, file, record, count, regs)
                   : KEEL_MODBUS_EXC_ILLEGAL_FUNCTION;
}

static uint8_t supply_read_file(void *ctx, uint16_t file, uint16_t record, uint16_t count,
                                uint16_t *regs)
{
    fieldbus *b = ctx;
    return b->boot ? sensor_boot_read_file(b->boot, file, record, count, regs)
                   : KEEL_MODBUS_EXC_ILLEGAL_FUNCTION;
}

static const char *supply_id(void *ctx, uint8_t id)
{
    fieldbus *b = ctx;
    if (b->boot && id == 2) {
        return sensor_boot_version(b->boot);
    }
    static const char *const v[] = {"Keel", "DUCT-T", "1.0.0"};
    return id < 3 ? v[id] : NULL;
}

static const keel_modbus_model room_model = {.read_regs = room_regs, .device_id = room_id};
static const keel_modbus_model supply_model = {.read_regs = supply_regs,
                                               .write_regs = supply_write,
                                               .read_file = supply_read_file,
                                               .write_file = supply_write_file,
                                               .device_id = supply_id};

void fieldbus_attach_bootloader(fieldbus *b, sensor_boot *s)
{
    b->boot = s;
}

const char *fieldbus_sensor_version(const fieldbus *b)
{
    return b->boot ? sensor_boot_version(b->boot) : "";
}

const keel_modbus_model *fieldbus_model(uint8_t unit)
{
    return unit == 1 ? &room_model : unit == 2 ? &supply_model : NULL;
}

void fieldbus_after_frame(fieldbus *b)
{
    if (b->boot) {
        /* a commit asks the sensor to restart into the new image: the bootloader runs it
         * (verify, trial, confirm or fall back) before the next frame */
        char why[160];
        if (!sensor_boot_poll(&b->boot, why, sizeof why)) {
            b->boot = NULL; /* it no longer boots: the unit falls silent on updates */
        }
    }
}

fieldbus *fieldbus_new(void)
{
    fieldbus *b = calloc(1, sizeof *b);
    if (!b) {
        return NULL;
    }
    b->lfd = -1;
    b->owner = -1;
    for (int i = 0; i < FIELDBUS_MAX_CONN; i++) {
        b->c[i].fd = -1;
    }
    b->supply_period_s = 2;
    keel_modbus_slave_init(&b->room, 1, &room_model, b);
    keel_modbus_slave_init(&b->supply, 2, &supply_model, b);
    return b;
}

fieldbus *fieldbus_open(uint16_t port, uint16_t *bound)
{
    fieldbus *b = fieldbus_new();
    if (!b) {
        return NULL;
    }
    if (fieldbus_listen(b, port, bound) != 0) {
        int e = errno;
        fieldbus_close(b);
        errno = e;
        return NULL;
    }
    return b;
}

int fieldbus_listen(fieldbus *b, uint16_t port, uint16_t *bound)
{
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int one = 1;
    b->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (b->lfd < 0 || setsockopt(b->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(b->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(b->lfd, 8) != 0 ||
        getsockname(b->lfd, (struct sockaddr *)&a, &al) != 0) {
        int e = errno;
        if (b->lfd >= 0) {
            close(b->lfd);
        }
        b->lfd = -1;
        errno = e;
        return -1;
    }
    *bound = ntohs(a.sin_port);
    return 0;
}

void fieldbus_close(fieldbus *b)
{
    if (!b) {
        return;
    }
    for (int i = 0; i < FIELDBUS_MAX_CONN; i++) {
        if (b->c[i].fd >= 0) {
            close(b->c[i].fd);
        }
    }
    if (b->lfd >= 0) {
        close(b->lfd);
    }
    if (b->boot) {
        sensor_boot_power_off(b->boot);
    }
    free(b);
}

int fieldbus_fds(const fieldbus *b, int *fds, int max)
{
    int n = 0;
    if (b->lfd < 0) {
        return 0;
    }
    if (n < max) {
        fds[n++] = b->lfd;
    }
    for (int i = 0; i < FIELDBUS_MAX_CONN && n < max; i++) {
        if (b->c[i].fd >= 0) {
            fds[n++] = b->c[i].fd;
        }
    }
    return n;
}

void fieldbus_counts(const fieldbus *b, uint32_t *answered, uint32_t *refused)
{
    *answered = b->answered;
    *refused = b->refused;
}

static void drop(conn *c)
{
    close(c->fd);
    c->fd = -1;
    c->len = 0;
}

/* Answers every complete frame at the front of c->buf (via the world: submits the first one
 * when the bus is free; the rest wait their turn in the buffer). */
static void frames(fieldbus *b, conn *c)
{
    while (c->len > 0) {
        if (b->via_world && b->owner >= 0) {
            return; /* half duplex: one frame on the line at a time */
        }
        size_t want = keel_modbus_rtu_frame_len(c->buf, c->len, true);
        if (want == SIZE_MAX || want > sizeof c->buf) {
            b->refused++;
            c->len = 0; /* cannot be sized: resynchronise */
            return;
        }
        if (want == 0 || want > c->len) {
            return;
        }
        if (b->via_world) {
            if (world_serial_submit(c->buf, want, 1000000u)) {
                b->owner = (int)(c - b->c);
            } else {
                b->refused++;
            }
            memmove(c->buf, c->buf + want, c->len - want);
            c->len -= want;
            continue; /* returns above while the frame is on the line */
        }
        uint8_t out[KEEL_MODBUS_MAX_RTU_ADU];
        size_t out_len = 0;
        keel_modbus_slave *s[2] = {&b->room, &b->supply};
        bool ok = false;
        for (int i = 0; i < 2; i++) {
            keel_modbus_err e =
                keel_modbus_slave_rtu(s[i], c->buf, want, out, sizeof out, &out_len);
            if (e != KEEL_MODBUS_OK) {
                break; /* bad CRC or truncated: the same for every slave on the bus */
            }
            ok = true;
            if (out_len) {
                (void)!write(c->fd, out, out_len);
                b->answered++;
                break;
            }
        }
        b->refused += !ok;
        fieldbus_after_frame(b);
        memmove(c->buf, c->buf + want, c->len - want);
        c->len -= want;
    }
}

void fieldbus_via_world(fieldbus *b, bool on)
{
    b->via_world = on;
}

void fieldbus_service(fieldbus *b)
{
    if (!b || !b->via_world || b->owner < 0) {
        return;
    }
    uint8_t out[KEEL_MODBUS_MAX_RTU_ADU];
    size_t n = 0;
    int st = 0;
    if (!world_serial_take(out, sizeof out, &n, &st)) {
        return;
    }
    conn *c = &b->c[b->owner];
    b->owner = -1;
    /* a timeout sends nothing back: the client times out, as behind a real serial server */
    if (c->fd >= 0 && st == 0 && n > 0) {
        (void)!write(c->fd, out, n);
        b->answered++;
    }
    for (int i = 0; i < FIELDBUS_MAX_CONN && b->owner < 0; i++) {
        if (b->c[i].fd >= 0) {
            frames(b, &b->c[i]);
        }
    }
}

void fieldbus_handle(fieldbus *b, int fd)
{
    if (fd == b->lfd) {
        int cfd = accept4(b->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0) {
            return;
        }
        for (int i = 0; i < FIELDBUS_MAX_CONN; i++) {
            if (b->c[i].fd < 0 && i != b->owner) { /* the owner slot waits for its reply */
                b->c[i].fd = cfd;
                b->c[i].len = 0;
                return;
            }
        }
        close(cfd); /* bus busy: too many masters */
        return;
    }
    for (int i = 0; i < FIELDBUS_MAX_CONN; i++) {
        conn *c = &b->c[i];
        if (c->fd != fd) {
            continue;
        }
        ssize_t n = read(fd, c->buf + c->len, sizeof c->buf - c->len);
        if (n <= 0) {
            if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                drop(c);
            }
            return;
        }
        c->len += (size_t)n;
        frames(b, c);
        return;
    }
}

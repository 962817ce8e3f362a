/* keel-sim-sensor: a simulated MODBUS sensor whose firmware updates through the sensor update
 * profile. Its flash lives in a file, so killing this process is a power cut.
 *
 *   keel-sim-sensor --flash FILE --provision IMAGE [--slot-size N]
 *   keel-sim-sensor --flash FILE --key K.pub --component UUID [--port P] [--unit N]
 *                   [--rtu-over-tcp] [--slot-size N]
 *   keel-sim-sensor --flash FILE --key K.pub --component UUID --device TTY [--baud N]
 *                   [--parity N|E|O] [--unit N]        (RTU on a serial line, e.g. a pty)
 *
 * Serving, it prints "listening on port P" and, at each boot, "running X.Y.Z". After a commit
 * it restarts: it stops serving (dropping its connections), boots (verifying the new image,
 * running it on trial, falling back if it does not start), and serves again on the same port.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/modbus.h"
#include "sensor_boot.h"

struct holder {
    sensor_boot *s;
    volatile int stop;
    uint16_t port;
};

static struct holder h;
static volatile int terminate;

static uint8_t h_read(void *ctx, int table, uint16_t addr, uint16_t count, uint16_t *regs)
{
    return sensor_boot_read_regs(((struct holder *)ctx)->s, table, addr, count, regs);
}
static uint8_t h_write(void *ctx, uint16_t addr, uint16_t count, const uint16_t *regs)
{
    struct holder *h = ctx;
    uint8_t r = sensor_boot_write_regs(h->s, addr, count, regs);
    if (sensor_boot_restart_pending(h->s)) {
        h->stop = 1; /* restart once this reply is out */
    }
    return r;
}
static uint8_t h_file(void *ctx, uint16_t file, uint16_t rec, uint16_t count, const uint16_t *regs)
{
    return sensor_boot_write_file(((struct holder *)ctx)->s, file, rec, count, regs);
}
static uint8_t h_rfile(void *ctx, uint16_t file, uint16_t rec, uint16_t count, uint16_t *regs)
{
    return sensor_boot_read_file(((struct holder *)ctx)->s, file, rec, count, regs);
}
static const char *h_id(void *ctx, uint8_t id)
{
    return sensor_boot_device_id(((struct holder *)ctx)->s, id);
}

static void on_ready(void *ctx, uint16_t port)
{
    ((struct holder *)ctx)->port = port;
    if (port) {
        printf("listening on port %u\n", port);
    } else {
        printf("listening on the serial line\n");
    }
    fflush(stdout);
}

static void on_signal(int sig)
{
    (void)sig;
    terminate = 1;
    h.stop = 1;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: keel-sim-sensor --flash FILE --provision IMAGE [--slot-size N]\n"
            "       keel-sim-sensor --flash FILE --key K.pub --component UUID [--port P]\n"
            "                       [--unit N] [--rtu-over-tcp] [--slot-size N] [--hardware HW]\n"
            "       keel-sim-sensor --flash FILE --key K.pub --component UUID --device TTY\n"
            "                       [--baud N] [--parity N|E|O] [--unit N]\n");
    return 2;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"flash", required_argument, NULL, 'f'},     {"provision", required_argument, NULL, 'p'},
        {"slot-size", required_argument, NULL, 's'}, {"key", required_argument, NULL, 'k'},
        {"component", required_argument, NULL, 'c'}, {"port", required_argument, NULL, 'P'},
        {"unit", required_argument, NULL, 'u'},      {"rtu-over-tcp", no_argument, NULL, 'r'},
        {"hardware", required_argument, NULL, 'w'},  {"help", no_argument, NULL, 'h'},
        {"device", required_argument, NULL, 'd'},    {"baud", required_argument, NULL, 'b'},
        {"parity", required_argument, NULL, 'y'},    {0}};
    const char *flash = NULL, *prov = NULL, *key = NULL, *comp = NULL, *port = "0", *hw = "sim";
    unsigned long slot = 64 * 1024, unit = 1;
    bool rtu = false;
    const char *device = NULL;
    unsigned long baud = 19200;
    char parity = 'E';
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'f': flash = optarg; break;
        case 'p': prov = optarg; break;
        case 's': slot = strtoul(optarg, NULL, 0); break;
        case 'k': key = optarg; break;
        case 'c': comp = optarg; break;
        case 'P': port = optarg; break;
        case 'u': unit = strtoul(optarg, NULL, 0); break;
        case 'r': rtu = true; break;
        case 'w': hw = optarg; break;
        case 'd': device = optarg; break;
        case 'b': baud = strtoul(optarg, NULL, 0); break;
        case 'y': parity = optarg[0]; break;
        case 'h': usage(); return 0;
        default: return usage();
        }
    }
    if (!flash || slot == 0 || slot % 1024 || unit < 1 || unit > 247 || !baud ||
        !strchr("NEO", parity)) {
        return usage();
    }
    sensor_boot_config cfg = {.flash_path = flash, .hardware = hw, .slot_size = (uint32_t)slot};
    if (prov) {
        uint8_t *img;
        size_t len;
        keel_image_error ie;
        if (keel_image_read_file(prov, slot, &img, &len, &ie) != KEEL_IMAGE_OK) {
            fprintf(stderr, "keel-sim-sensor: %s\n", ie.msg);
            return 3;
        }
        int rc = sensor_boot_provision(&cfg, img, len);
        free(img);
        if (rc != 0) {
            fprintf(stderr, "keel-sim-sensor: provisioning %s failed (is it a Keel image?)\n",
                    flash);
            return 1;
        }
        return 0;
    }
    keel_image_pubkey pub;
    keel_image_error ie;
    if (!key || !comp || !keel_image_uuid_parse(comp, cfg.component)) {
        return usage();
    }
    if (keel_image_pubkey_load(key, &pub, &ie) != KEEL_IMAGE_OK) {
        fprintf(stderr, "keel-sim-sensor: %s\n", ie.msg);
        return 3;
    }
    cfg.keys = (keel_image_keys){&pub, 1};
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    setvbuf(stdout, NULL, _IOLBF, 0);

    static const keel_modbus_model model = {.read_regs = h_read, .write_regs = h_write,
                                            .write_file = h_file, .read_file = h_rfile,
                                            .device_id = h_id};
    char why[256], bound[16];
    snprintf(bound, sizeof bound, "%s", port);
    /* On a serial line, keep the device open across restarts, as the UART stays wired: a pty's
     * other end then never sees the line hang up while the sensor reboots. */
    int keep = device ? open(device, O_RDWR | O_NOCTTY | O_CLOEXEC) : -1;
    if (device && keep < 0) {
        fprintf(stderr, "keel-sim-sensor: %s: cannot open\n", device);
        return 3;
    }
    for (;;) {
        if (!h.s) {
            h.s = sensor_boot_power_on(&cfg, why, sizeof why);
            if (!h.s) {
                fprintf(stderr, "keel-sim-sensor: does not boot: %s\n", why);
                return 1;
            }
            printf("running %s\n", sensor_boot_version(h.s));
        }
        keel_modbus_slave slave;
        keel_modbus_slave_init(&slave, (uint8_t)unit, &model, &h);
        keel_modbus_server_opts so = {.bind = "127.0.0.1", .port = bound, .rtu_over_tcp = rtu,
                                      .device = device, .on_ready = on_ready, .ctx = &h};
        so.serial.line = (keel_modbus_line){(uint32_t)baud, 8,
                                            parity == 'N'   ? KEEL_MODBUS_PARITY_NONE
                                            : parity == 'O' ? KEEL_MODBUS_PARITY_ODD
                                                            : KEEL_MODBUS_PARITY_EVEN,
                                            parity == 'N' ? 2 : 1};
        h.stop = 0;
        /* The server stops for a restart (h.stop) or for good (terminate). */
        volatile int *stop = &h.stop;
        keel_modbus_err e = keel_modbus_serve(&slave, &so, (volatile const int *)stop);
        if (terminate) {
            break;
        }
        if (!device) {
            snprintf(bound, sizeof bound, "%u", h.port); /* serve again on the same port */
        }
        if (e != KEEL_MODBUS_OK && !h.stop) {
            fprintf(stderr, "keel-sim-sensor: serve: %s (%s)\n", keel_modbus_err_name(e),
                    strerror(errno));
            sensor_boot_power_off(h.s);
            return 1;
        }
        if (!sensor_boot_poll(&h.s, why, sizeof why)) {
            fprintf(stderr, "keel-sim-sensor: does not boot: %s\n", why);
            return 1;
        }
        printf("running %s\n", sensor_boot_version(h.s));
    }
    sensor_boot_power_off(h.s);
    if (keep >= 0) {
        close(keep);
    }
    return 0;
}

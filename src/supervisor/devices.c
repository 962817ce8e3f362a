/* Devices keeld hands to apps: serial ports and GPIO lines.
 *
 * The device config names each device ("rs485" -> /dev/ttyUSB0 at 9600 8E1, "relay" -> line 17
 * of /dev/gpiochip0, output); an app's manifest lists the names it may use; the app asks by
 * name (keel_app_serial_open / keel_app_gpio_open) and keeld, outside the sandbox, opens the
 * device and passes the fd over the SDK socket (SCM_RIGHTS). The app's private root has no
 * /dev/tty* or /dev/gpiochip* at all, so this is the only way an app reaches hardware, and a
 * name is never a path the app chooses.
 *
 * keeld owns the line settings: the port is put in raw mode at the configured speed, parity
 * and stop bits before the app sees it, so a gateway's wiring lives in one file and an app
 * cannot be written for the wrong baud rate; with "rs485" keeld also puts the UART in kernel
 * RS485 mode (the driver switches the transceiver's direction). GPIO lines are requested through the character
 * device's v2 ABI (GPIO_V2_GET_LINE_IOCTL): the app gets the line fd, which can read or set
 * only that line, and the line is released when the app's last copy of the fd closes.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/gpio.h>
#include <linux/serial.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "keel/manifest.h"
#include "supervisor.h"

/* ---- the device config's "serial" and "gpio" sections ---- */

static speed_t speed_of(uint32_t baud)
{
    static const struct {
        uint32_t baud;
        speed_t speed;
    } rates[] = {{50, B50},         {75, B75},         {110, B110},       {134, B134},
                 {150, B150},       {200, B200},       {300, B300},       {600, B600},
                 {1200, B1200},     {1800, B1800},     {2400, B2400},     {4800, B4800},
                 {9600, B9600},     {19200, B19200},   {38400, B38400},   {57600, B57600},
                 {115200, B115200}, {230400, B230400}, {460800, B460800}, {500000, B500000},
                 {576000, B576000}, {921600, B921600}, {1000000, B1000000},
                 {1152000, B1152000}, {1500000, B1500000}, {2000000, B2000000},
                 {2500000, B2500000}, {3000000, B3000000}, {3500000, B3500000},
                 {4000000, B4000000}};
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        if (rates[i].baud == baud) {
            return rates[i].speed;
        }
    }
    return B0;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= SV_DEV_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.')) {
            return false;
        }
    }
    return true;
}

/* "path": an absolute path that fits. */
static bool get_path(const cJSON *o, const char *key, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && v->valuestring[0] == '/' && sv_fmt(out, cap, "%s", v->valuestring);
}

static bool get_uint(const cJSON *o, const char *key, double min, double max, uint32_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        return true; /* optional: the default stays */
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < min || v->valuedouble > max ||
        v->valuedouble != (double)(uint32_t)v->valuedouble) {
        return false;
    }
    *out = (uint32_t)v->valuedouble;
    return true;
}

static bool get_flag(const cJSON *o, const char *key, bool *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        return true;
    }
    if (!cJSON_IsBool(v)) {
        return false;
    }
    *out = cJSON_IsTrue(v);
    return true;
}

/* Unknown keys are errors here as in manifests: a misspelt "parity" must not be ignored. */
static const char *unknown_key(const cJSON *o, const char *const *keys, size_t n)
{
    for (const cJSON *it = o->child; it; it = it->next) {
        size_t k = 0;
        while (k < n && strcmp(keys[k], it->string) != 0) {
            k++;
        }
        if (k == n) {
            return it->string;
        }
    }
    return NULL;
}

static bool parse_serial(sv_config *c, const cJSON *sec, char *msg, size_t msglen)
{
    static const char *const keys[] = {"path", "baud", "parity", "data_bits", "stop_bits",
                                       "rs485"};
    c->nserial = 0;
    for (const cJSON *it = sec->child; it; it = it->next) {
        if (c->nserial == SV_MAX_SERIAL) {
            snprintf(msg, msglen, "\"serial\": at most %d ports", SV_MAX_SERIAL);
            return false;
        }
        sv_serial_port *p = &c->serial[c->nserial];
        memset(p, 0, sizeof *p);
        const char *bad;
        if (!name_ok(it->string)) {
            snprintf(msg, msglen, "\"serial\": \"%.40s\": a name is 1-31 of [A-Za-z0-9._-]",
                     it->string);
            return false;
        }
        snprintf(p->name, sizeof p->name, "%s", it->string);
        if (!cJSON_IsObject(it)) {
            snprintf(msg, msglen, "\"serial\".%s: must be an object with \"path\"", p->name);
            return false;
        }
        if ((bad = unknown_key(it, keys, sizeof keys / sizeof keys[0]))) {
            snprintf(msg, msglen, "\"serial\".%s: unknown key \"%.40s\"", p->name, bad);
            return false;
        }
        if (!get_path(it, "path", p->path, sizeof p->path)) {
            snprintf(msg, msglen, "\"serial\".%s.path: an absolute device path is required",
                     p->name);
            return false;
        }
        uint32_t data = 8, stop = 1;
        p->parity = 'N';
        if (!get_uint(it, "baud", 50, 4000000, &p->baud) || (p->baud && speed_of(p->baud) == B0)) {
            snprintf(msg, msglen, "\"serial\".%s.baud: a standard rate 50..4000000", p->name);
            return false;
        }
        if (!get_uint(it, "data_bits", 5, 8, &data) || !get_uint(it, "stop_bits", 1, 2, &stop)) {
            snprintf(msg, msglen, "\"serial\".%s: data_bits 5..8, stop_bits 1 or 2", p->name);
            return false;
        }
        p->data_bits = (uint8_t)data;
        p->stop_bits = (uint8_t)stop;
        if (!get_flag(it, "rs485", &p->rs485)) {
            snprintf(msg, msglen, "\"serial\".%s.rs485: true or false", p->name);
            return false;
        }
        const cJSON *par = cJSON_GetObjectItemCaseSensitive(it, "parity");
        if (par) {
            const char *s = cJSON_IsString(par) ? par->valuestring : "";
            p->parity = strcmp(s, "none") == 0   ? 'N'
                        : strcmp(s, "even") == 0 ? 'E'
                        : strcmp(s, "odd") == 0  ? 'O'
                                                 : '?';
            if (p->parity == '?') {
                snprintf(msg, msglen, "\"serial\".%s.parity: \"none\", \"even\" or \"odd\"",
                         p->name);
                return false;
            }
        }
        c->nserial++;
    }
    return true;
}

static bool parse_gpio(sv_config *c, const cJSON *sec, char *msg, size_t msglen)
{
    static const char *const keys[] = {"chip", "line", "direction", "active_low", "initial"};
    c->ngpio = 0;
    for (const cJSON *it = sec->child; it; it = it->next) {
        if (c->ngpio == SV_MAX_GPIO) {
            snprintf(msg, msglen, "\"gpio\": at most %d lines", SV_MAX_GPIO);
            return false;
        }
        sv_gpio_line *g = &c->gpio[c->ngpio];
        memset(g, 0, sizeof *g);
        const char *bad;
        if (!name_ok(it->string)) {
            snprintf(msg, msglen, "\"gpio\": \"%.40s\": a name is 1-31 of [A-Za-z0-9._-]",
                     it->string);
            return false;
        }
        snprintf(g->name, sizeof g->name, "%s", it->string);
        if (!cJSON_IsObject(it)) {
            snprintf(msg, msglen, "\"gpio\".%s: must be an object with \"chip\" and \"line\"",
                     g->name);
            return false;
        }
        if ((bad = unknown_key(it, keys, sizeof keys / sizeof keys[0]))) {
            snprintf(msg, msglen, "\"gpio\".%s: unknown key \"%.40s\"", g->name, bad);
            return false;
        }
        g->line = UINT32_MAX;
        if (!get_path(it, "chip", g->chip, sizeof g->chip) ||
            !get_uint(it, "line", 0, 65535, &g->line) ||
            g->line == UINT32_MAX) {
            snprintf(msg, msglen,
                     "\"gpio\".%s: \"chip\" (an absolute path, /dev/gpiochipN) and \"line\" "
                     "(its offset on the chip) are required",
                     g->name);
            return false;
        }
        const cJSON *dir = cJSON_GetObjectItemCaseSensitive(it, "direction");
        if (dir) {
            const char *s = cJSON_IsString(dir) ? dir->valuestring : "";
            if (strcmp(s, "output") != 0 && strcmp(s, "input") != 0) {
                snprintf(msg, msglen, "\"gpio\".%s.direction: \"input\" or \"output\"", g->name);
                return false;
            }
            g->output = strcmp(s, "output") == 0;
        }
        if (!get_flag(it, "active_low", &g->active_low) ||
            !get_flag(it, "initial", &g->initial)) {
            snprintf(msg, msglen, "\"gpio\".%s: active_low and initial are true or false",
                     g->name);
            return false;
        }
        c->ngpio++;
    }
    return true;
}

bool sv_devices_config(sv_config *c, const cJSON *root, char *msg, size_t msglen)
{
    const cJSON *serial = cJSON_GetObjectItemCaseSensitive(root, "serial");
    const cJSON *gpio = cJSON_GetObjectItemCaseSensitive(root, "gpio");
    if (serial && !cJSON_IsObject(serial)) {
        snprintf(msg, msglen, "\"serial\": an object mapping names to ports");
        return false;
    }
    if (gpio && !cJSON_IsObject(gpio)) {
        snprintf(msg, msglen, "\"gpio\": an object mapping names to lines");
        return false;
    }
    return (!serial || parse_serial(c, serial, msg, msglen)) &&
           (!gpio || parse_gpio(c, gpio, msg, msglen));
}

/* ---- handing devices over ---- */

static void refuse(sv_daemon *d, sv_app *a, const char *fmt, const char *name, const char *why)
{
    char line[SV_LOG_LINE_MAX];
    int n = snprintf(line, sizeof line, fmt, name, why);
    sv_applog_line(d, a, "keeld", line, n > 0 && (size_t)n < sizeof line ? (size_t)n : 0);
}

/* Raw mode at the configured speed and framing: what MODBUS RTU and most device protocols
 * want (no echo, no line editing, no CR/LF translation, no flow control). */
static int set_line(int fd, const sv_serial_port *p)
{
    struct termios t;
    if (tcgetattr(fd, &t) < 0) {
        return -1;
    }
    cfmakeraw(&t);
    speed_t sp = speed_of(p->baud);
    if (sp == B0) {
        errno = EINVAL;
        return -1;
    }
    if (cfsetispeed(&t, sp) < 0 || cfsetospeed(&t, sp) < 0) {
        return -1;
    }
    t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS);
    static const tcflag_t sizes[] = {CS5, CS6, CS7, CS8};
    t.c_cflag |= sizes[p->data_bits - 5] | CLOCAL | CREAD;
    if (p->parity != 'N') {
        t.c_cflag |= PARENB | (p->parity == 'O' ? PARODD : 0);
    }
    if (p->stop_bits == 2) {
        t.c_cflag |= CSTOPB;
    }
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    return tcsetattr(fd, TCSANOW, &t);
}

keel_app_status sv_serial_open(sv_daemon *d, sv_app *a, const char *name, int *fd)
{
    if (!keel_manifest_allows_serial(&a->m.km, name)) {
        refuse(d, a, "serial_open %s denied: the manifest does not list it%s", name, "");
        return KEEL_APP_ERR_DENIED;
    }
    const sv_serial_port *p = NULL;
    for (int i = 0; i < d->cfg.nserial && !p; i++) {
        p = strcmp(d->cfg.serial[i].name, name) == 0 ? &d->cfg.serial[i] : NULL;
    }
    if (!p) {
        refuse(d, a, "serial_open %s: the device config has no such port%s", name, "");
        return KEEL_APP_ERR_NOT_FOUND;
    }
    /* O_NOCTTY: a terminal never becomes keeld's controlling tty (a hangup must not signal
     * keeld); O_NONBLOCK only so that a modem-control line cannot block keeld's loop in open. */
    int f = open(p->path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (f < 0) {
        refuse(d, a, "serial_open %s: %s", name, strerror(errno));
        return errno == EBUSY ? KEEL_APP_ERR_BUSY : KEEL_APP_ERR_IO;
    }
    if (!isatty(f)) {
        close(f);
        refuse(d, a, "serial_open %s: %s", name, "not a serial device (the config is wrong)");
        return KEEL_APP_ERR_IO;
    }
    /* RS485 first: a refusal leaves the line settings as they were */
    if (p->rs485) {
        /* the UART driver switches the transceiver (RTS high while sending) with exact timing;
         * a driver without the mode is refused rather than handed over half set up, since
         * a half-duplex bus driven without direction control garbles every frame */
        struct serial_rs485 rs;
        memset(&rs, 0, sizeof rs);
        rs.flags = SER_RS485_ENABLED | SER_RS485_RTS_ON_SEND;
        if (ioctl(f, TIOCSRS485, &rs) < 0) {
            int e = errno;
            close(f);
            refuse(d, a, "serial_open %s: the driver has no kernel RS485 mode (TIOCSRS485: %s)",
                   name, strerror(e));
            return KEEL_APP_ERR_IO;
        }
    }
    if (p->baud && set_line(f, p) < 0) {
        int e = errno;
        close(f);
        refuse(d, a, "serial_open %s: line settings refused: %s", name, strerror(e));
        return KEEL_APP_ERR_IO;
    }
    /* the app gets a blocking fd, as if it had opened the port itself */
    (void)fcntl(f, F_SETFL, fcntl(f, F_GETFL) & ~O_NONBLOCK);
    *fd = f;
    sv_logf("%s: serial port %s (%s) handed over", a->m.name, name, p->path);
    return KEEL_APP_OK;
}

keel_app_status sv_gpio_open(sv_daemon *d, sv_app *a, const char *name, int *fd)
{
    if (!keel_manifest_allows_gpio(&a->m.km, name)) {
        refuse(d, a, "gpio_open %s denied: the manifest does not list it%s", name, "");
        return KEEL_APP_ERR_DENIED;
    }
    const sv_gpio_line *g = NULL;
    for (int i = 0; i < d->cfg.ngpio && !g; i++) {
        g = strcmp(d->cfg.gpio[i].name, name) == 0 ? &d->cfg.gpio[i] : NULL;
    }
    if (!g) {
        refuse(d, a, "gpio_open %s: the device config has no such line%s", name, "");
        return KEEL_APP_ERR_NOT_FOUND;
    }
    int chip = open(g->chip, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (chip < 0) {
        refuse(d, a, "gpio_open %s: %s", name, strerror(errno));
        return KEEL_APP_ERR_IO;
    }
    struct gpio_v2_line_request req;
    memset(&req, 0, sizeof req);
    req.offsets[0] = g->line;
    req.num_lines = 1;
    /* the consumer label gpioinfo shows: "keel:<app>", cut to the kernel's 31 characters */
    (void)sv_fmt(req.consumer, sizeof req.consumer, "keel:%s", a->m.name);
    req.config.flags = (g->output ? GPIO_V2_LINE_FLAG_OUTPUT : GPIO_V2_LINE_FLAG_INPUT) |
                       (g->active_low ? GPIO_V2_LINE_FLAG_ACTIVE_LOW : 0);
    if (g->output) {
        req.config.num_attrs = 1;
        req.config.attrs[0].attr.id = GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES;
        req.config.attrs[0].attr.values = g->initial ? 1u : 0u;
        req.config.attrs[0].mask = 1;
    }
    int rc = ioctl(chip, GPIO_V2_GET_LINE_IOCTL, &req);
    int e = errno;
    close(chip);
    if (rc < 0) {
        /* ENOTTY: the path is not a GPIO chip; EBUSY: another consumer holds the line
         * (another app, or the kernel) */
        refuse(d, a, "gpio_open %s: %s", name,
               e == ENOTTY ? "not a GPIO character device (the config is wrong)" : strerror(e));
        return e == EBUSY ? KEEL_APP_ERR_BUSY
               : e == EINVAL ? KEEL_APP_ERR_INVALID_ARG
                             : KEEL_APP_ERR_IO;
    }
    *fd = req.fd;
    sv_logf("%s: gpio line %s (%s line %u) handed over", a->m.name, name, g->chip, g->line);
    return KEEL_APP_OK;
}

/* keel modbus: a MODBUS master (read, write, scan, id) and slave (serve) on the command line,
 * over TCP, RTU on a serial device, or RTU over TCP; like mbpoll and diagslave, with errors
 * that say what happened (timeout, CRC, which exception) and the exit codes of cli.h. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "keel/modbus.h"
#include "rs485_world.h"

#define CONN_USAGE                                                                                 \
    "connection (one of):\n"                                                                       \
    "  -t, --tcp HOST[:PORT]       MODBUS TCP (port 502; IPv6 as [::1]:1502)\n"                    \
    "  -R, --rtu-over-tcp HOST[:PORT]  RTU frames over a TCP stream (serial gateways)\n"           \
    "  -r, --rtu DEVICE            RTU on a serial device (/dev/ttyUSB0, a pty)\n"                 \
    "serial line (with --rtu):\n"                                                                  \
    "  -b, --baud N                19200 (the spec's default)\n"                                   \
    "  -P, --parity even|odd|none  even (the spec's default)\n"                                    \
    "  -s, --stop 1|2              1\n"                                                            \
    "      --rs485                 drive an RS485 transceiver: kernel RS485 mode\n"                \
    "                              (TIOCSRS485), else RTS toggling\n"                              \
    "      --rts-toggle            toggle RTS from user space (no kernel RS485 mode)\n"            \
    "      --rts-delay US          RTS/DE settle time before and after a frame\n"                  \
    "  -u, --unit N                slave address, 1..247 (default 1; 0 = broadcast)\n"             \
    "  -o, --timeout MS            reply timeout (default 1000)\n"

typedef struct conn_opts {
    const char *tcp, *rtu_tcp, *rtu;
    keel_modbus_serial_opts serial;
    int unit;
    uint32_t timeout_ms;
    int table; /* KEEL_MODBUS_COILS.. */
} conn_opts;

enum { OPT_RS485 = 1000, OPT_FROM, OPT_TO, OPT_MAP, OPT_RTS, OPT_RTS_DELAY };

static const struct option conn_long[] = {
    {"tcp", required_argument, NULL, 't'},
    {"rtu-over-tcp", required_argument, NULL, 'R'},
    {"rtu", required_argument, NULL, 'r'},
    {"baud", required_argument, NULL, 'b'},
    {"parity", required_argument, NULL, 'P'},
    {"stop", required_argument, NULL, 's'},
    {"rs485", no_argument, NULL, OPT_RS485},
    {"rts-toggle", no_argument, NULL, OPT_RTS},
    {"rts-delay", required_argument, NULL, OPT_RTS_DELAY},
    {"unit", required_argument, NULL, 'u'},
    {"timeout", required_argument, NULL, 'o'},
    {"type", required_argument, NULL, 'T'},
    {"from", required_argument, NULL, OPT_FROM},
    {"to", required_argument, NULL, OPT_TO},
    {"map", required_argument, NULL, OPT_MAP},
    {NULL, 0, NULL, 0},
};

static bool parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (errno || end == s || *end || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* "host", "host:port", "[v6]:port", ":port" into host and port (static storage). */
static void split_host_port(const char *arg, const char *def_host, const char **host,
                            const char **port)
{
    static char h[256], p[16];
    snprintf(h, sizeof h, "%s", arg);
    snprintf(p, sizeof p, "502");
    char *colon = NULL;
    if (h[0] && strspn(h, "0123456789") == strlen(h)) {
        snprintf(p, sizeof p, "%.15s", h); /* a bare port */
        h[0] = 0;
    } else if (h[0] == '[') {
        char *close = strchr(h, ']');
        if (close) {
            *close = 0;
            memmove(h, h + 1, strlen(h + 1) + 1);
            if (close[1] == ':') {
                snprintf(p, sizeof p, "%.15s", close + 2);
            }
        }
    } else if ((colon = strchr(h, ':')) && !strchr(colon + 1, ':')) {
        *colon = 0;
        snprintf(p, sizeof p, "%.15s", colon + 1);
    }
    *host = h[0] ? h : def_host;
    *port = p;
}

/* Parses options; returns the index of the first operand, or -1 after printing an error. */
static int parse_opts(int argc, char **argv, const char *verb, conn_opts *o, const char **map,
                      long *from, long *to)
{
    memset(o, 0, sizeof *o);
    o->serial.line = (keel_modbus_line){19200, 8, KEEL_MODBUS_PARITY_EVEN, 1};
    o->unit = 1;
    o->timeout_ms = 1000;
    o->table = KEEL_MODBUS_HOLDING;
    optind = 1;
    opterr = 0;
    int c;
    long v;
    while ((c = getopt_long(argc, argv, "+t:R:r:b:P:s:u:o:T:", conn_long, NULL)) != -1) {
        switch (c) {
        case 't':
            o->tcp = optarg;
            break;
        case 'R':
            o->rtu_tcp = optarg;
            break;
        case 'r':
            o->rtu = optarg;
            break;
        case 'b':
            if (!parse_long(optarg, 50, 4000000, &v)) {
                goto bad;
            }
            o->serial.line.baud = (uint32_t)v;
            break;
        case 'P':
            if (strcmp(optarg, "even") == 0 || strcmp(optarg, "E") == 0) {
                o->serial.line.parity = KEEL_MODBUS_PARITY_EVEN;
            } else if (strcmp(optarg, "odd") == 0 || strcmp(optarg, "O") == 0) {
                o->serial.line.parity = KEEL_MODBUS_PARITY_ODD;
            } else if (strcmp(optarg, "none") == 0 || strcmp(optarg, "N") == 0) {
                o->serial.line.parity = KEEL_MODBUS_PARITY_NONE;
            } else {
                goto bad;
            }
            break;
        case 's':
            if (!parse_long(optarg, 1, 2, &v)) {
                goto bad;
            }
            o->serial.line.stop_bits = (uint8_t)v;
            break;
        case OPT_RS485:
            o->serial.rs485 = true;
            break;
        case OPT_RTS:
            o->serial.rts_toggle = true;
            break;
        case OPT_RTS_DELAY:
            if (!parse_long(optarg, 0, 100000, &v)) {
                goto bad;
            }
            o->serial.rts_delay_us = (uint32_t)v;
            break;
        case 'u':
            if (!parse_long(optarg, 0, 255, &v)) {
                goto bad;
            }
            o->unit = (int)v;
            break;
        case 'o':
            if (!parse_long(optarg, 1, 600000, &v)) {
                goto bad;
            }
            o->timeout_ms = (uint32_t)v;
            break;
        case 'T':
            if (strcmp(optarg, "coil") == 0 || strcmp(optarg, "coils") == 0) {
                o->table = KEEL_MODBUS_COILS;
            } else if (strcmp(optarg, "discrete") == 0) {
                o->table = KEEL_MODBUS_DISCRETE_INPUTS;
            } else if (strcmp(optarg, "holding") == 0) {
                o->table = KEEL_MODBUS_HOLDING;
            } else if (strcmp(optarg, "input") == 0) {
                o->table = KEEL_MODBUS_INPUT;
            } else {
                goto bad;
            }
            break;
        case OPT_FROM:
        case OPT_TO:
            if (!from || !parse_long(optarg, 0, 247, &v)) {
                goto bad;
            }
            *(c == OPT_FROM ? from : to) = v;
            break;
        case OPT_MAP:
            if (!map) {
                goto bad;
            }
            *map = optarg;
            break;
        default:
            fprintf(stderr, "keel modbus %s: unknown option '%s' (see --help)\n", verb,
                    argv[optind - 1]);
            return -1;
        }
    }
    if (!!o->tcp + !!o->rtu_tcp + !!o->rtu != 1) {
        fprintf(stderr, "keel modbus %s: give exactly one of --tcp, --rtu-over-tcp, --rtu\n", verb);
        return -1;
    }
    return optind;
bad:
    fprintf(stderr, "keel modbus %s: bad value '%s' for %s (see --help)\n", verb, optarg,
            argv[optind - 1]);
    return -1;
}

static int exit_for(keel_modbus_err e)
{
    switch (e) {
    case KEEL_MODBUS_OK:
        return KEEL_EXIT_OK;
    case KEEL_MODBUS_ERR_TIMEOUT:
        return KEEL_EXIT_TIMEOUT;
    case KEEL_MODBUS_ERR_CRC:
    case KEEL_MODBUS_ERR_FRAME:
    case KEEL_MODBUS_ERR_MISMATCH:
        return KEEL_EXIT_VERIFY;
    case KEEL_MODBUS_ERR_EXCEPTION:
        return KEEL_EXIT_REMOTE;
    case KEEL_MODBUS_ERR_IO:
    case KEEL_MODBUS_ERR_CLOSED:
        return KEEL_EXIT_IO;
    case KEEL_MODBUS_ERR_ARG:
        return KEEL_EXIT_USAGE;
    default:
        return KEEL_EXIT_FAIL;
    }
}

static int report(const char *verb, const conn_opts *o, keel_modbus_client *c, keel_modbus_err e)
{
    char what[64];
    snprintf(what, sizeof what, "modbus %s", verb);
    switch (e) {
    case KEEL_MODBUS_ERR_TIMEOUT:
        return keel_cli_fail(KEEL_EXIT_TIMEOUT, what, "no reply from unit %d within %u ms", o->unit,
                             o->timeout_ms);
    case KEEL_MODBUS_ERR_EXCEPTION: {
        uint8_t x = keel_modbus_client_last_exception(c);
        return keel_cli_fail(KEEL_EXIT_REMOTE, what, "unit %d answered exception %u (%s)", o->unit,
                             x, keel_modbus_exc_name(x));
    }
    case KEEL_MODBUS_ERR_CRC:
        return keel_cli_fail(KEEL_EXIT_VERIFY, what, "reply from unit %d failed its CRC", o->unit);
    default:
        return keel_cli_fail(exit_for(e), what, "%s", keel_modbus_err_name(e));
    }
}

static int connect_client(const char *verb, const conn_opts *o, keel_modbus_client **c)
{
    keel_modbus_err e;
    const char *target;
    if (o->rtu) {
        target = o->rtu;
        e = keel_modbus_client_serial(o->rtu, &o->serial, c);
    } else {
        const char *host, *port;
        target = o->tcp ? o->tcp : o->rtu_tcp;
        split_host_port(target, "127.0.0.1", &host, &port);
        e = keel_modbus_client_tcp(host, port, o->rtu_tcp != NULL, c);
    }
    if (e != KEEL_MODBUS_OK) {
        char what[64];
        snprintf(what, sizeof what, "modbus %s", verb);
        return keel_cli_fail(exit_for(e) == KEEL_EXIT_USAGE ? KEEL_EXIT_USAGE : KEEL_EXIT_IO, what,
                             "cannot open %s: %s (%s)", target, keel_modbus_err_name(e),
                             errno ? strerror(errno) : "bad address");
    }
    keel_modbus_client_set_timeout(*c, o->timeout_ms * 1000u);
    if (o->rtu && (o->serial.rs485 || o->serial.rts_toggle) &&
        strcmp(keel_modbus_client_rs485_mode(*c), "none") == 0) {
        fprintf(stderr,
                "keel modbus %s: warning: %s has neither kernel RS485 mode nor RTS; "
                "the transceiver must switch direction by itself\n",
                verb, o->rtu);
    }
    return KEEL_EXIT_OK;
}

static const char *table_name(int t)
{
    static const char *const n[] = {"coil", "discrete", "holding", "input"};
    return n[t];
}

static int modbus_read(int argc, char **argv)
{
    conn_opts o;
    int i = parse_opts(argc, argv, "read", &o, NULL, NULL, NULL);
    if (i < 0) {
        return KEEL_EXIT_USAGE;
    }
    long addr, count = 1;
    bool bits = o.table == KEEL_MODBUS_COILS || o.table == KEEL_MODBUS_DISCRETE_INPUTS;
    if (i >= argc || !parse_long(argv[i], 0, 65535, &addr) ||
        (i + 1 < argc && !parse_long(argv[i + 1], 1, bits ? 2000 : 125, &count))) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "modbus read",
                             "give ADDRESS (0..65535) and COUNT (1..%d)", bits ? 2000 : 125);
    }
    keel_modbus_client *c;
    int rc = connect_client("read", &o, &c);
    if (rc) {
        return rc;
    }
    keel_modbus_err e;
    uint16_t regs[125];
    uint8_t packed[250];
    if (bits) {
        e = keel_modbus_read_bits(c, (uint8_t)o.unit, o.table == KEEL_MODBUS_COILS ? 1 : 2,
                                  (uint16_t)addr, (uint16_t)count, packed);
    } else {
        e = keel_modbus_read_registers(c, (uint8_t)o.unit, o.table == KEEL_MODBUS_HOLDING ? 3 : 4,
                                       (uint16_t)addr, (uint16_t)count, regs);
    }
    if (e == KEEL_MODBUS_OK) {
        for (long k = 0; k < count; k++) {
            if (bits) {
                printf("%s[%ld] = %d\n", table_name(o.table), addr + k,
                       (packed[k / 8] >> (k % 8)) & 1);
            } else {
                printf("%s[%ld] = %u (0x%04x, signed %d)\n", table_name(o.table), addr + k, regs[k],
                       regs[k], (int16_t)regs[k]);
            }
        }
        rc = KEEL_EXIT_OK;
    } else {
        rc = report("read", &o, c, e);
    }
    keel_modbus_client_close(c);
    return rc;
}

static int modbus_write(int argc, char **argv)
{
    conn_opts o;
    int i = parse_opts(argc, argv, "write", &o, NULL, NULL, NULL);
    if (i < 0) {
        return KEEL_EXIT_USAGE;
    }
    bool bits = o.table == KEEL_MODBUS_COILS;
    if (o.table != KEEL_MODBUS_COILS && o.table != KEEL_MODBUS_HOLDING) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "modbus write",
                             "only coils and holding registers can be written");
    }
    long addr;
    int n = argc - i - 1;
    if (i >= argc || !parse_long(argv[i], 0, 65535, &addr) || n < 1 || n > (bits ? 1968 : 123)) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "modbus write", "give ADDRESS VALUE... (at most %d)",
                             bits ? 1968 : 123);
    }
    uint16_t regs[123];
    uint8_t packed[246] = {0};
    for (int k = 0; k < n; k++) {
        long v;
        if (!parse_long(argv[i + 1 + k], bits ? 0 : -32768, bits ? 1 : 65535, &v)) {
            return keel_cli_fail(KEEL_EXIT_USAGE, "modbus write", "value '%s' is not %s",
                                 argv[i + 1 + k], bits ? "0 or 1" : "a 16-bit number");
        }
        if (bits) {
            packed[k / 8] |= (uint8_t)((v & 1) << (k % 8));
        } else {
            regs[k] = (uint16_t)v;
        }
    }
    keel_modbus_client *c;
    int rc = connect_client("write", &o, &c);
    if (rc) {
        return rc;
    }
    keel_modbus_err e;
    if (bits) {
        e = n == 1
                ? keel_modbus_write_coil(c, (uint8_t)o.unit, (uint16_t)addr, packed[0] & 1)
                : keel_modbus_write_coils(c, (uint8_t)o.unit, (uint16_t)addr, (uint16_t)n, packed);
    } else {
        e = n == 1 ? keel_modbus_write_register(c, (uint8_t)o.unit, (uint16_t)addr, regs[0])
                   : keel_modbus_write_registers(c, (uint8_t)o.unit, (uint16_t)addr, (uint16_t)n,
                                                 regs);
    }
    if (e == KEEL_MODBUS_OK) {
        printf("wrote %d %s at %ld\n", n,
               bits ? (n == 1 ? "coil" : "coils")
                    : (n == 1 ? "holding register" : "holding registers"),
               addr);
        rc = KEEL_EXIT_OK;
    } else {
        rc = report("write", &o, c, e);
    }
    keel_modbus_client_close(c);
    return rc;
}

static int modbus_scan(int argc, char **argv)
{
    conn_opts o;
    long from = 1, to = 247;
    int i = parse_opts(argc, argv, "scan", &o, NULL, &from, &to);
    if (i < 0) {
        return KEEL_EXIT_USAGE;
    }
    if (i < argc || from < 1 || to < from) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "modbus scan", "bad range --from %ld --to %ld", from,
                             to);
    }
    bool timeout_given = false;
    for (int k = 1; k < argc; k++) {
        timeout_given = timeout_given || !strcmp(argv[k], "-o") || !strcmp(argv[k], "--timeout");
    }
    if (!timeout_given) {
        o.timeout_ms = 200;
    }
    keel_modbus_client *c;
    int rc = connect_client("scan", &o, &c);
    if (rc) {
        return rc;
    }
    int found = 0;
    for (long u = from; u <= to; u++) {
        uint16_t reg;
        keel_modbus_err e = keel_modbus_read_registers(c, (uint8_t)u, 3, 0, 1, &reg);
        if (e == KEEL_MODBUS_OK || e == KEEL_MODBUS_ERR_EXCEPTION) {
            found++;
            if (e == KEEL_MODBUS_OK) {
                printf("unit %ld: present (holding[0] = %u)\n", u, reg);
            } else {
                uint8_t x = keel_modbus_client_last_exception(c);
                printf("unit %ld: present (exception %u, %s)\n", u, x, keel_modbus_exc_name(x));
            }
            fflush(stdout);
        } else if (e == KEEL_MODBUS_ERR_CRC || e == KEEL_MODBUS_ERR_MISMATCH ||
                   e == KEEL_MODBUS_ERR_FRAME) {
            printf("unit %ld: garbled reply (%s)\n", u, keel_modbus_err_name(e));
        } else if (e != KEEL_MODBUS_ERR_TIMEOUT) {
            rc = report("scan", &o, c, e);
            break;
        }
        if ((u - from) % 16 == 15) {
            fprintf(stderr, "scan: %ld/%ld units, %d found\n", u - from + 1, to - from + 1, found);
        }
    }
    keel_modbus_client_close(c);
    if (rc) {
        return rc;
    }
    fprintf(stderr, "scan: %d unit(s) answered in %ld..%ld\n", found, from, to);
    return found ? KEEL_EXIT_OK : KEEL_EXIT_FAIL;
}

static int modbus_id(int argc, char **argv)
{
    conn_opts o;
    int i = parse_opts(argc, argv, "id", &o, NULL, NULL, NULL);
    if (i < 0) {
        return KEEL_EXIT_USAGE;
    }
    keel_modbus_client *c;
    int rc = connect_client("id", &o, &c);
    if (rc) {
        return rc;
    }
    static const char *const names[] = {"vendor",          "product_code", "revision",
                                        "vendor_url",      "product_name", "model_name",
                                        "application_name"};
    uint8_t next = 0;
    keel_modbus_err e = KEEL_MODBUS_OK;
    for (int round = 0; round < 8; round++) {
        uint8_t req[8], rsp[KEEL_MODBUS_MAX_PDU];
        size_t req_len, rsp_len;
        e = keel_modbus_req_device_id(2, next, req, sizeof req, &req_len);
        if (e == KEEL_MODBUS_OK) {
            e = keel_modbus_client_transact(c, (uint8_t)o.unit, req, req_len, rsp, sizeof rsp,
                                            &rsp_len);
        }
        keel_modbus_device_id id;
        if (e == KEEL_MODBUS_OK) {
            e = keel_modbus_rsp_device_id(rsp, rsp_len, &id, NULL);
        }
        if (e != KEEL_MODBUS_OK) {
            break;
        }
        for (unsigned k = 0; k < id.count; k++) {
            const keel_modbus_id_object *ob = &id.objects[k];
            printf("%s: %.*s\n", ob->id < 7 ? names[ob->id] : "object", ob->len,
                   (const char *)ob->value);
        }
        if (!id.more) {
            break;
        }
        next = id.next_object;
    }
    rc = e == KEEL_MODBUS_OK ? KEEL_EXIT_OK : report("id", &o, c, e);
    keel_modbus_client_close(c);
    return rc;
}

static volatile int serve_stop;

static void on_signal(int sig)
{
    (void)sig;
    serve_stop = 1;
}

static void on_ready(void *ctx, uint16_t port)
{
    const conn_opts *o = ctx;
    if (o->rtu) {
        printf("keel modbus serve: unit %d ready on %s\n", o->unit, o->rtu);
    } else {
        printf("keel modbus serve: unit %d listening on port %u\n", o->unit, port);
    }
    fflush(stdout);
}

static int modbus_serve(int argc, char **argv)
{
    conn_opts o;
    const char *map_path = NULL;
    int i = parse_opts(argc, argv, "serve", &o, &map_path, NULL, NULL);
    if (i < 0) {
        return KEEL_EXIT_USAGE;
    }
    bool unit_given = false;
    for (int k = 1; k < argc; k++) {
        unit_given = unit_given || !strcmp(argv[k], "-u") || !strcmp(argv[k], "--unit");
    }
    if (!map_path || i < argc) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "modbus serve", "give --map FILE (see --help)");
    }
    keel_modbus_map map;
    uint8_t unit;
    char msg[320];
    keel_modbus_err e = keel_modbus_map_load(map_path, &map, &unit, msg, sizeof msg);
    if (e != KEEL_MODBUS_OK) {
        return keel_cli_fail(e == KEEL_MODBUS_ERR_IO ? KEEL_EXIT_IO : KEEL_EXIT_VERIFY,
                             "modbus serve", "%s", msg);
    }
    if (unit_given) {
        unit = (uint8_t)o.unit;
    }
    o.unit = unit;
    keel_modbus_slave slave;
    keel_modbus_slave_init(&slave, unit, &keel_modbus_map_model, &map);
    keel_modbus_server_opts so = {0};
    const char *host = NULL, *port = NULL;
    if (o.rtu) {
        so.device = o.rtu;
        so.serial = o.serial;
    } else {
        split_host_port(o.tcp ? o.tcp : o.rtu_tcp, NULL, &host, &port);
        so.bind = host;
        so.port = port;
        so.rtu_over_tcp = o.rtu_tcp != NULL;
    }
    so.on_ready = on_ready;
    so.ctx = &o;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    e = keel_modbus_serve(&slave, &so, &serve_stop);
    const keel_modbus_counters *k = &slave.counters;
    fprintf(stderr,
            "keel modbus serve: %u frames, %u for us, %u comm errors, %u exceptions, "
            "%u unanswered\n",
            k->bus_messages, k->server_messages, k->bus_comm_errors, k->bus_exceptions,
            k->server_no_response);
    keel_modbus_map_free(&map);
    if (e != KEEL_MODBUS_OK) {
        return keel_cli_fail(exit_for(e) == KEEL_EXIT_USAGE ? KEEL_EXIT_USAGE : KEEL_EXIT_IO,
                             "modbus serve", "cannot serve on %s: %s (%s)",
                             o.rtu ? o.rtu : (o.tcp ? o.tcp : o.rtu_tcp), keel_modbus_err_name(e),
                             strerror(errno));
    }
    return KEEL_EXIT_OK;
}

/* ---- simulate: the RT core's line driver and a sensor on the simulated bus ---- */

static world sim_world;
static int sim_polls, sim_ok, sim_timeouts;
static uint64_t sim_de_worst, sim_reply_first;

static void sim_poller(void *arg)
{
    (void)arg;
    keel_modbus_master m;
    if (keel_modbus_master_init(&m, KEEL_MODBUS_RTU, &sim_world.line) != KEEL_MODBUS_OK) {
        sim_world.done = true;
        return;
    }
    for (int i = 0; i < sim_polls; i++) {
        poll_result r = world_poll(&sim_world, &m, 1, 4, 0, 3, 1000000);
        sim_ok += r.err == KEEL_MODBUS_OK;
        sim_timeouts += r.err == KEEL_MODBUS_ERR_TIMEOUT;
        const sim_rs485_node *core = &sim_world.bus.nodes[sim_world.node];
        uint64_t late = core->de_off_ns - core->last_stop_end_ns;
        sim_de_worst = late > sim_de_worst ? late : sim_de_worst;
        if (i == 0 && r.t.first_rx_ns) {
            sim_reply_first = r.t.first_rx_ns - core->last_stop_end_ns;
        }
    }
    sim_world.done = true;
}

static int modbus_simulate(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"baud", required_argument, NULL, 'b'},
        {"latency", required_argument, NULL, 'l'},
        {"polls", required_argument, NULL, 'n'},
        {"vcd", required_argument, NULL, 'w'},
        {NULL, 0, NULL, 0},
    };
    long baud = 19200, latency_us = 1000, polls = 10;
    const char *vcd = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "b:l:n:w:", longopts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case 'b':
            ok = parse_long(optarg, 1200, 1000000, &baud);
            break;
        case 'l':
            ok = parse_long(optarg, 0, 10000000, &latency_us);
            break;
        case 'n':
            ok = parse_long(optarg, 1, 10000000, &polls);
            break;
        case 'w':
            vcd = optarg;
            break;
        default:
            ok = false;
            break;
        }
        if (!ok) {
            return keel_cli_fail(KEEL_EXIT_USAGE, "modbus simulate", "bad option '%s' (see --help)",
                                 argv[optind - 1]);
        }
    }
    if (world_create(&sim_world, (uint32_t)baud) != 0) {
        return keel_cli_fail(KEEL_EXIT_FAIL, "modbus simulate", "cannot create the simulation");
    }
    uint64_t lat_ns = latency_us ? (uint64_t)latency_us * 1000u : sim_world.uart.bit_ns;
    if (!world_add_sensor(&sim_world, 1, lat_ns, NULL)) {
        world_destroy(&sim_world);
        return keel_cli_fail(KEEL_EXIT_FAIL, "modbus simulate", "cannot add the sensor");
    }
    if (vcd) {
        sim_rs485_vcd_start(&sim_world.bus);
    }
    sim_polls = (int)polls;
    sim_ok = sim_timeouts = 0;
    sim_de_worst = sim_reply_first = 0;
    if (world_start(&sim_world, sim_poller, NULL) != 0) {
        world_destroy(&sim_world);
        return keel_cli_fail(KEEL_EXIT_FAIL, "modbus simulate", "cannot start the poller");
    }
    (void)keel_sim_run_until_cond(world_is_done, &sim_world, KEEL_SIM_FOREVER);
    printf("%ld baud 8E1, sensor latency %.1f us: %d/%ld polls answered, %d timeouts, "
           "%.3f s of virtual time\n",
           baud, lat_ns / 1e3, sim_ok, polls, sim_timeouts, keel_sim_now_ns() / 1e9);
    printf("DE released at most %llu ns after the last stop bit (a bit-time is %llu ns)\n",
           (unsigned long long)sim_de_worst, (unsigned long long)sim_world.uart.bit_ns);
    if (sim_reply_first) {
        printf("reply began %.1f us after the request's last stop bit (its first byte was in "
               "%.1f us later)\n",
               (double)(sim_reply_first - sim_world.uart.char_ns) / 1e3,
               sim_world.uart.char_ns / 1e3);
    }
    printf("bus: %llu characters, %llu collisions, %llu garbled, %llu cut\n",
           (unsigned long long)sim_world.bus.stats.chars,
           (unsigned long long)sim_world.bus.stats.collisions,
           (unsigned long long)sim_world.bus.stats.garbled,
           (unsigned long long)sim_world.bus.stats.cut);
    int rc = sim_ok == polls ? KEEL_EXIT_OK : KEEL_EXIT_FAIL;
    if (vcd) {
        if (sim_rs485_vcd_write(&sim_world.bus, vcd) != 0) {
            rc = keel_cli_fail(KEEL_EXIT_IO, "modbus simulate", "cannot write %s: %s", vcd,
                               strerror(errno));
        } else {
            printf("waveform: %s (gtkwave %s)\n", vcd, vcd);
        }
    }
    world_destroy(&sim_world);
    return rc;
}

static const struct keel_cli_verb modbus_verbs[] = {
    {"read", "read coils, discrete inputs, holding or input registers (FC 1-4)",
     "usage: keel modbus read CONNECTION [-u UNIT] [-T TYPE] ADDRESS [COUNT]\n\n"
     "Reads COUNT (default 1) items from ADDRESS (0-based, as on the wire) and prints one\n"
     "line each. TYPE: holding (default, FC 3), input (FC 4), coil (FC 1), discrete (FC "
     "2).\n\n" CONN_USAGE "\nexamples:\n"
     "  keel modbus read --rtu /dev/ttyUSB0 -b 9600 -u 3 -T input 0 3\n"
     "  keel modbus read --tcp 192.168.1.20 100 10\n"
     "\nexit: 0 ok, 2 usage, 3 cannot open, 4 timeout, 5 CRC/garbled reply, 6 exception\n",
     modbus_read},
    {"write", "write coils or holding registers (FC 5, 6, 15, 16)",
     "usage: keel modbus write CONNECTION [-u UNIT] [-T holding|coil] ADDRESS VALUE...\n\n"
     "One value is written with FC 6 (FC 5 for a coil), several with FC 16 (FC 15).\n"
     "Register values are 0..65535 or -32768..-1; coils 0 or 1. Unit 0 broadcasts.\n\n" CONN_USAGE
     "\nexample:\n  keel modbus write --tcp 127.0.0.1:1502 -u 1 10 215 480\n"
     "\nexit: 0 ok, 2 usage, 3 cannot open, 4 timeout, 5 CRC/garbled reply, 6 exception\n",
     modbus_write},
    {"scan", "find the slaves on a bus (FC 3 probe of each unit)",
     "usage: keel modbus scan CONNECTION [--from N] [--to N] [-o MS]\n\n"
     "Asks each unit from N to N (default 1..247) for holding register 0 and lists those\n"
     "that answer, with data or an exception. Progress goes to stderr every 16 units.\n"
     "The timeout per unit defaults to 200 ms here.\n\n" CONN_USAGE
     "\nexit: 0 some unit answered, 1 none did, 2 usage, 3 cannot open\n",
     modbus_scan},
    {"id", "read a slave's device identification (FC 43/14)",
     "usage: keel modbus id CONNECTION [-u UNIT]\n\n"
     "Prints the vendor, product code, revision and the regular objects the slave "
     "has.\n\n" CONN_USAGE
     "\nexit: 0 ok, 4 timeout, 6 exception (the slave does not support FC 43)\n",
     modbus_id},
    {"serve", "be a slave: answer from a register map file",
     "usage: keel modbus serve --map FILE CONNECTION [-u UNIT]\n\n"
     "Serves the map (format: docs/modbus.md) until SIGINT/SIGTERM, then prints counters.\n"
     "For TCP, the argument is [BIND:]PORT (bind \"::\" by default: IPv6 and IPv4); port 0\n"
     "takes a free port, printed as \"listening on port N\". The unit comes from the map\n"
     "(\"unit\", default 1) unless -u is given; on TCP a server also answers unit 0 and "
     "255.\n\n" CONN_USAGE "\nexamples:\n"
     "  keel modbus serve --map sensor.json --tcp :1502\n"
     "  keel modbus serve --map sensor.json --rtu /dev/ttyUSB1 -b 9600 -P none -s 2\n",
     modbus_serve},
    {"simulate", "poll a simulated RS485 sensor from the RT core's driver, in virtual time",
     "usage: keel modbus simulate [-b BAUD] [-l LATENCY_US] [-n POLLS] [-w FILE.vcd]\n\n"
     "Runs the real-time core (Keel's RTOS on its sim port, with interrupt-entry and kernel\n"
     "costs charged) and its RS485 line driver against a simulated sensor, and reports when\n"
     "driver-enable fell after the last stop bit, when the reply began, and any collision.\n"
     "-w records the bus as a VCD waveform (per node tx, de, rx; line; collision) for GTKWave.\n"
     "Defaults: 19200 baud 8E1, 1000 us latency (0: one bit-time), 10 polls.\n"
     "\nexample:\n  keel modbus simulate -b 115200 -l 0 -n 3 -w bus.vcd && gtkwave bus.vcd\n"
     "\nexit: 0 every poll answered, 1 otherwise, 3 the waveform could not be written\n",
     modbus_simulate},
    {NULL, NULL, NULL, NULL},
};

const struct keel_cli_noun keel_noun_modbus = {"modbus", "MODBUS master and slave (RTU, TCP)",
                                               modbus_verbs};

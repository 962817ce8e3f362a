/* keel-sim: the simulated world as a process. It runs the world (world.h) in virtual time,
 * paced against the wall clock at a chosen speed, writes its status for the demo's live view,
 * and hands the connected core its end of the intercore channel.
 *
 * Pacing: virtual time advances in slices of 2 ms of wall time (speed x 2 ms of virtual time);
 * after each slice the process sleeps in poll() until the wall clock catches up, serving the
 * control socket and signals meanwhile. A doorbell that arrives during the sleep is taken at
 * the start of the next slice, so a request waits at most one slice.
 *
 * Channel hand-over: under keeld (the package of kind "rt" the demo installs) keeld pairs
 * every app both manifests allow with this RT component and sends the RT ends over
 * $KEEL_RT_CHANNEL_FD, one record each, then closes it (docs/apps.md); keel-sim routes each
 * end by its partner's component id: the gateway's (--bridge-partner) to the RS485 bridge, any
 * other (envmon) to the environment service. Standalone (--socket / --bridge-socket, for tests
 * and the direct mode), keel-sim pairs the manifests itself (keel_icc_pair refuses unless each
 * names the other) and serves each connected core's end on its own Unix socket to whoever
 * connects: the app, or the app again after a restart (the region and its unread messages are
 * kept).
 *
 * The field bus: the world's simulated RS485 bus always carries the two sensors; the bridge
 * puts the RT core's line driver between them and the gateway. --modbus-port adds a second
 * way onto the same bus: a serial server node (a second master on the line) whose TCP port
 * takes RTU frames, sent on the wire in virtual time like the RT core's. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "keel/icc.h"
#include "keel/image.h"
#include "keel/manifest.h"
#include "fieldbus.h"
#include "world.h"

/* keel-gateway's component id (apps/gateway/app_manifest.json) */
#define GATEWAY_ID "5b0e6f3a-2c4d-4e8f-9a1b-7c3d2e1f0a9b"

static const char usage[] =
    "usage: keel-sim [options]\n"
    "\n"
    "The simulated world: the real-time core running the environment monitor firmware on\n"
    "Keel's RTOS (sim port), its sensor and HVAC actuator, and the room they measure.\n"
    "\n"
    "  --state DIR          keep the room's state in DIR/room.state (a restart is a power cycle)\n"
    "  --socket PATH        serve the connected core's channel end on this Unix socket\n"
    "                       (without it, under keeld: the end keeld sends on\n"
    "                       $KEEL_RT_CHANNEL_FD)\n"
    "  --app-manifest FILE  the HL app's app_manifest.json (pairing; with --socket)\n"
    "  --rt-manifest FILE   the RT firmware's app_manifest.json (pairing; with --socket)\n"
    "  --speed X            virtual seconds per wall second (default 1; 0: as fast as possible)\n"
    "  --seconds N          stop after N virtual seconds (default: until SIGINT/SIGTERM)\n"
    "  --status FILE        write the world's state as JSON here, 4 times a second\n"
    "  --temp C             the room's temperature when there is no saved state (default 18)\n"
    "  --noise C            sensor noise, peak degrees (default 0.05)\n"
    "  --seed N             seed for noise and the pressure drift (default 1)\n"
    "  --bridge-socket PATH serve the gateway's channel end (the RS485 bridge) on this socket\n"
    "  --gateway-manifest FILE  the gateway's app_manifest.json (with --bridge-socket)\n"
    "  --bridge-partner UUID  under keeld: the end whose partner is this component goes to\n"
    "                       the RS485 bridge (default: keel-gateway's id, " GATEWAY_ID ")\n"
    "  --baud N             the RS485 bus's baud rate, 8E1 (default 115200)\n"
    "  --modbus-port N      a serial server on the bus: RTU frames over TCP on 127.0.0.1:N\n"
    "                       go out on the simulated line (0: any free port, printed;\n"
    "                       default: none)\n"
    "  --sensor-key FILE    give bus unit 2 a bootloader trusting this public key (needs\n"
    "                       --state: its flash is DIR/supply-sensor.flash)\n"
    "  --sensor-image FILE  the signed image it is provisioned with when its flash is new\n"
    "  --sensor-component UUID  the component its images must name\n"
    "  -h, --help           this text\n"
    "\n"
    "Exit: 0 stopped (signal or --seconds), 1 the world failed, 2 usage, 3 i/o,\n"
    "5 the manifests are invalid or do not pair.\n";

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *hvac_name(uint8_t m)
{
    return m == ENVMON_HVAC_HEATING ? "heating" : m == ENVMON_HVAC_COOLING ? "cooling" : "off";
}

static fieldbus *bus;
static uint16_t bus_port;

static void write_status(const char *path)
{
    world_status s;
    world_status_get(&s);
    uint32_t answered = 0, refused = 0;
    if (bus) {
        fieldbus_counts(bus, &answered, &refused);
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        return;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        return;
    }
    fprintf(f,
            "{\"time_s\":%.3f,\"room\":{\"temperature\":%.3f,\"humidity\":%.2f,"
            "\"pressure\":%.2f},\"hvac\":\"%s\",\"hvac_changes\":%u,"
            "\"rt\":{\"samples\":%u,\"temperature\":%.3f,\"requests\":%u,\"bad_requests\":%u,"
            "\"channel\":\"%s\"},\"modbus\":{\"port\":%u,\"answered\":%u,\"refused\":%u,"
            "\"sensorFirmware\":\"%s\"},\"rs485\":{\"chars\":%llu,\"collisions\":%llu,"
            "\"garbled\":%llu,\"roomReplies\":%llu,\"supplyReplies\":%llu,"
            "\"serialFrames\":%u,\"serialTimeouts\":%u},"
            "\"bridge\":{\"paired\":%s,\"requests\":%u,\"sent\":%u,\"timeouts\":%u,"
            "\"lineErrors\":%u,\"refused\":%u,\"channel\":\"%s\"}}\n",
            (double)s.time_us / 1e6, s.room_temp_c, s.room_humidity_pct, s.room_pressure_hpa,
            hvac_name(s.hvac), s.hvac_changes, s.latest.seq, s.latest.temp_mc / 1000.0, s.requests,
            s.bad_requests, keel_icc_err_name((keel_icc_err)s.chan_err), bus_port, answered,
            refused, bus ? fieldbus_sensor_version(bus) : "", (unsigned long long)s.bus_chars,
            (unsigned long long)s.bus_collisions, (unsigned long long)s.bus_garbled,
            (unsigned long long)s.room_replies, (unsigned long long)s.supply_replies,
            s.serial_frames, s.serial_timeouts, s.bridge ? "true" : "false", s.bridge_requests,
            s.bridge_sent, s.bridge_timeouts, s.bridge_line_errors, s.bridge_refused,
            keel_icc_err_name((keel_icc_err)s.bridge_chan_err));
    if (fclose(f) == 0) {
        (void)rename(tmp, path);
    } else {
        unlink(tmp);
    }
}

static int listen_unix(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(a.sun_path, path);
    (void)unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

static int pair(const char *app_path, const char *rt_path, keel_icc_end *a, keel_icc_end *b)
{
    keel_manifest app, rt;
    keel_manifest_error err;
    if (keel_manifest_load(app_path, &app, &err) != KEEL_MANIFEST_OK ||
        keel_manifest_load(rt_path, &rt, &err) != KEEL_MANIFEST_OK) {
        fprintf(stderr, "keel-sim: %s\n", err.msg);
        return 5;
    }
    keel_icc_config cfg = {.ring_bytes = 16384, .max_msg = 1024};
    keel_icc_err rc = keel_icc_pair(&app, &rt, &cfg, a, b, &err);
    if (rc == KEEL_ICC_ERR_DENIED) {
        fprintf(stderr, "keel-sim: pairing refused: %s\n", err.msg);
        return 5;
    }
    if (rc != KEEL_ICC_OK) {
        fprintf(stderr, "keel-sim: channel: %s\n", keel_icc_err_name(rc));
        return 3;
    }
    return 0;
}

/* Unit 2's bootloader: trusted key, component, flash (provisioned with the first image). */
static keel_image_pubkey sensor_pub;
static char sensor_flash[4096];

static int attach_bootloader(const char *state, const char *key, const char *image,
                             const char *comp)
{
    keel_image_error ie;
    if (keel_image_pubkey_load(key, &sensor_pub, &ie) != KEEL_IMAGE_OK) {
        fprintf(stderr, "keel-sim: --sensor-key: %s\n", ie.msg);
        return 5;
    }
    keel_uuid id;
    if (!keel_manifest_uuid_parse(comp, &id)) {
        fprintf(stderr, "keel-sim: --sensor-component: \"%s\" is not a UUID\n", comp);
        return 2;
    }
    snprintf(sensor_flash, sizeof sensor_flash, "%s/supply-sensor.flash", state);
    sensor_boot_config cfg = {.flash_path = sensor_flash,
                              .keys = {.keys = &sensor_pub, .count = 1},
                              .hardware = "keel-sim-duct",
                              .slot_size = 64u * 1024u};
    memcpy(cfg.component, id.b, sizeof cfg.component);
    if (access(sensor_flash, F_OK) != 0) {
        FILE *f = fopen(image, "rb");
        static uint8_t buf[64u * 1024u];
        size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
        if (f) {
            fclose(f);
        }
        if (n == 0 || sensor_boot_provision(&cfg, buf, n) != 0) {
            fprintf(stderr, "keel-sim: cannot provision the sensor with %s\n", image);
            return 3;
        }
    }
    char why[256];
    sensor_boot *s = sensor_boot_power_on(&cfg, why, sizeof why);
    if (!s) {
        fprintf(stderr, "keel-sim: the supply-air sensor does not boot: %s\n", why);
        return 1;
    }
    fieldbus_attach_bootloader(bus, s);
    printf("keel-sim: supply-air sensor (unit 2) runs firmware %s\n", sensor_boot_version(s));
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"state", required_argument, NULL, 's'},
                                         {"socket", required_argument, NULL, 'S'},
                                         {"app-manifest", required_argument, NULL, 'a'},
                                         {"rt-manifest", required_argument, NULL, 'r'},
                                         {"speed", required_argument, NULL, 'x'},
                                         {"seconds", required_argument, NULL, 'n'},
                                         {"status", required_argument, NULL, 'j'},
                                         {"temp", required_argument, NULL, 't'},
                                         {"noise", required_argument, NULL, 'N'},
                                         {"seed", required_argument, NULL, 'e'},
                                         {"modbus-port", required_argument, NULL, 'm'},
                                         {"sensor-key", required_argument, NULL, 'K'},
                                         {"sensor-image", required_argument, NULL, 'I'},
                                         {"sensor-component", required_argument, NULL, 'U'},
                                         {"bridge-socket", required_argument, NULL, 'B'},
                                         {"gateway-manifest", required_argument, NULL, 'g'},
                                         {"bridge-partner", required_argument, NULL, 'P'},
                                         {"baud", required_argument, NULL, 'b'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *sock_path = NULL, *app_m = NULL, *rt_m = NULL, *status = NULL;
    const char *sensor_key = NULL, *sensor_image = NULL, *sensor_comp = NULL;
    const char *bridge_sock = NULL, *gw_m = NULL, *bridge_partner = GATEWAY_ID;
    double speed = 1.0, seconds = 0.0, modbus_port = -1, baud = 115200;
    world_config wc = world_config_default();
    wc.sensor_noise_c = 0.05;
    int o;
    char *end;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        errno = 0;
        switch (o) {
        case 's':
            wc.state_dir = optarg;
            break;
        case 'S':
            sock_path = optarg;
            break;
        case 'a':
            app_m = optarg;
            break;
        case 'r':
            rt_m = optarg;
            break;
        case 'j':
            status = optarg;
            break;
        case 'x':
            speed = strtod(optarg, &end);
            break;
        case 'n':
            seconds = strtod(optarg, &end);
            break;
        case 't':
            wc.start_temp_c = strtod(optarg, &end);
            break;
        case 'N':
            wc.sensor_noise_c = strtod(optarg, &end);
            break;
        case 'e':
            wc.seed = strtoull(optarg, &end, 10);
            break;
        case 'm':
            modbus_port = strtod(optarg, &end);
            break;
        case 'K':
            sensor_key = optarg;
            break;
        case 'I':
            sensor_image = optarg;
            break;
        case 'U':
            sensor_comp = optarg;
            break;
        case 'B':
            bridge_sock = optarg;
            break;
        case 'g':
            gw_m = optarg;
            break;
        case 'P':
            bridge_partner = optarg;
            break;
        case 'b':
            baud = strtod(optarg, &end);
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
        if (strchr("xntNemb", o) && (errno || *end || end == optarg)) {
            fprintf(stderr, "keel-sim: --%s: \"%s\" is not a number\n",
                    o == 'x'   ? "speed"
                    : o == 'n' ? "seconds"
                    : o == 't' ? "temp"
                    : o == 'N' ? "noise"
                    : o == 'm' ? "modbus-port"
                    : o == 'b' ? "baud"
                               : "seed",
                    optarg);
            return 2;
        }
    }
    if (optind != argc || speed < 0 || !isfinite(speed) || seconds < 0 || wc.start_temp_c < -40 ||
        wc.start_temp_c > 60 || modbus_port > 65535 || (sock_path && (!app_m || !rt_m)) ||
        (bridge_sock && (!gw_m || !rt_m)) || baud < 1200 || baud > 4000000 ||
        (sensor_key && (!sensor_image || !sensor_comp || !wc.state_dir))) {
        fputs(usage, stderr);
        return 2;
    }
    keel_uuid bridge_id;
    if (!keel_manifest_uuid_parse(bridge_partner, &bridge_id)) {
        fprintf(stderr, "keel-sim: --bridge-partner: \"%s\" is not a UUID\n", bridge_partner);
        return 2;
    }
    wc.bus_baud = (uint32_t)baud;

    keel_icc_end hl_end, rt_end, gw_end, br_end;
    bool have_env = false, have_bridge = false;
    int lfd = -1, bfd = -1;
    /* under keeld (a package of kind "rt"): keeld paired the channels and sends the RT ends */
    const char *keeld_fd = getenv("KEEL_RT_CHANNEL_FD");
    bool from_keeld = keeld_fd && !sock_path && !bridge_sock;
    if (from_keeld) {
        int kfd = atoi(keeld_fd);
        for (;;) {
            keel_icc_end e;
            keel_icc_err rc = keel_icc_end_recv(kfd, &e);
            if (rc == KEEL_ICC_ERR_PEER_GONE) {
                break; /* keeld sent them all */
            }
            if (rc != KEEL_ICC_OK) {
                fprintf(stderr, "keel-sim: channel end from keeld: %s\n", keel_icc_err_name(rc));
                return 5;
            }
            bool to_bridge = memcmp(e.peer.b, bridge_id.b, sizeof bridge_id.b) == 0;
            if (to_bridge && !have_bridge) {
                br_end = e;
                have_bridge = true;
                printf("keel-sim: channel end from keeld for the RS485 bridge\n");
            } else if (!to_bridge && !have_env) {
                rt_end = e;
                have_env = true;
                printf("keel-sim: channel end from keeld for the environment service\n");
            } else {
                printf("keel-sim: a second channel end for the %s: closed\n",
                       to_bridge ? "bridge" : "environment service");
                keel_icc_end_close(&e);
            }
        }
        close(kfd);
        if (!have_env && !have_bridge) {
            /* an RT component with no app to serve is a misconfigured install */
            fprintf(stderr, "keel-sim: no channel end from keeld\n");
            return 5;
        }
    } else {
        if (sock_path) {
            int rc = pair(app_m, rt_m, &hl_end, &rt_end);
            if (rc) {
                return rc;
            }
            have_env = true;
            lfd = listen_unix(sock_path);
            if (lfd < 0) {
                fprintf(stderr, "keel-sim: %s: %s\n", sock_path, strerror(errno));
                return 3;
            }
        }
        if (bridge_sock) {
            int rc = pair(gw_m, rt_m, &gw_end, &br_end);
            if (rc) {
                return rc;
            }
            have_bridge = true;
            bfd = listen_unix(bridge_sock);
            if (bfd < 0) {
                fprintf(stderr, "keel-sim: %s: %s\n", bridge_sock, strerror(errno));
                return 3;
            }
        }
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);

    bus = fieldbus_new();
    if (!bus) {
        fprintf(stderr, "keel-sim: out of memory\n");
        return 1;
    }
    if (sensor_key) {
        int brc = attach_bootloader(wc.state_dir, sensor_key, sensor_image, sensor_comp);
        if (brc) {
            fieldbus_close(bus);
            return brc;
        }
    }
    wc.bus = bus;
    wc.bridge_end = have_bridge ? &br_end : NULL;
    world_err we = world_create(&wc, have_env ? &rt_end : NULL);
    if (we != WORLD_OK) {
        fprintf(stderr, "keel-sim: %s\n", world_err_name(we));
        fieldbus_close(bus);
        return 1;
    }
    printf("keel-sim: RS485 bus at %u baud 8E1: RT core's line driver%s, room sensor (unit 1), "
           "supply-air sensor (unit 2)\n",
           wc.bus_baud, have_bridge ? " bridging the gateway" : "");
    if (modbus_port >= 0) {
        if (fieldbus_listen(bus, (uint16_t)modbus_port, &bus_port) != 0) {
            fprintf(stderr, "keel-sim: --modbus-port %g: %s\n", modbus_port, strerror(errno));
            world_destroy();
            fieldbus_close(bus);
            return 3;
        }
        fieldbus_via_world(bus, true);
        printf("keel-sim: the bus's serial server (RTU over TCP) on 127.0.0.1:%u\n", bus_port);
    }
    printf("keel-sim: world up (speed %g)%s%s\n", speed, sock_path ? ", channel on " : "",
           sock_path ? sock_path : "");
    fflush(stdout);

    const int64_t slice_wall_us = 2000;
    uint64_t slice_us = speed > 0 ? (uint64_t)(speed * (double)slice_wall_us) : 100000;
    if (slice_us < 100) {
        slice_us = 100;
    }
    uint64_t limit_us = seconds > 0 ? (uint64_t)(seconds * 1e6) : UINT64_MAX;
    int64_t start = wall_us(), last_status = 0, last_save = start;
    uint64_t t = 0;
    int rc = 0;
    bool stop = false;
    while (!stop && t < limit_us) {
        t = t + slice_us < limit_us ? t + slice_us : limit_us;
        world_run_until_us(t);
        fieldbus_service(bus); /* a reply the serial server finished goes to its TCP client */
        int64_t due = speed > 0 ? start + (int64_t)((double)t / speed) : 0;
        for (;;) {
            int64_t now = wall_us();
            if (status && now - last_status >= 250000) {
                write_status(status);
                last_status = now;
            }
            if (now - last_save >= 10000000) {
                if (world_save() != WORLD_OK) {
                    fprintf(stderr, "keel-sim: cannot save the room state\n");
                }
                last_save = now;
            }
            int wait_ms = due > now ? (int)((due - now + 999) / 1000) : 0;
            struct pollfd p[3 + FIELDBUS_MAX_CONN + 1] = {{.fd = sfd, .events = POLLIN},
                                                          {.fd = lfd, .events = POLLIN},
                                                          {.fd = bfd, .events = POLLIN}};
            int bfds[FIELDBUS_MAX_CONN + 1];
            int nb = bus ? fieldbus_fds(bus, bfds, FIELDBUS_MAX_CONN + 1) : 0;
            for (int i = 0; i < nb; i++) {
                p[3 + i] = (struct pollfd){.fd = bfds[i], .events = POLLIN};
            }
            int n = poll(p, (nfds_t)(3 + nb), wait_ms);
            for (int i = 0; n > 0 && i < nb; i++) {
                if (p[3 + i].revents) {
                    fieldbus_handle(bus, p[3 + i].fd);
                }
            }
            if (n > 0 && bfd >= 0 && (p[2].revents & POLLIN)) {
                int c = accept4(bfd, NULL, NULL, SOCK_CLOEXEC);
                if (c >= 0) {
                    keel_icc_err e = keel_icc_end_send(c, &gw_end);
                    printf("keel-sim: bridge channel end handed over: %s\n", keel_icc_err_name(e));
                    fflush(stdout);
                    close(c);
                }
                continue;
            }
            if (n > 0 && (p[0].revents & POLLIN)) {
                stop = true;
                break;
            }
            if (n > 0 && lfd >= 0 && (p[1].revents & POLLIN)) {
                int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (c >= 0) {
                    keel_icc_err e = keel_icc_end_send(c, &hl_end);
                    printf("keel-sim: channel end handed over: %s\n", keel_icc_err_name(e));
                    fflush(stdout);
                    close(c);
                }
                continue;
            }
            if (wall_us() >= due) {
                break;
            }
        }
    }
    if (status) {
        write_status(status);
    }
    world_status s;
    world_status_get(&s);
    printf("keel-sim: stopped at %.1f s virtual, room %.2f C, hvac %s\n", (double)s.time_us / 1e6,
           s.room_temp_c, hvac_name(s.hvac));
    world_destroy();
    fieldbus_close(bus);
    if (sock_path) {
        keel_icc_end_close(&hl_end);
        close(lfd);
        unlink(sock_path);
    }
    if (bridge_sock) {
        keel_icc_end_close(&gw_end);
        close(bfd);
        unlink(bridge_sock);
    }
    return rc;
}

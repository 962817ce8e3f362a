/* keel image: make signing keys, sign payloads into Keel images, verify and inspect images.
 * Exit codes per docs/CONTRIBUTING.md: 5 when an image or key fails a check, 3 for files. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "keel/image.h"
#include "keel/update.h"

#define MAX_KEYS 8

static int exit_for(keel_image_err e)
{
    switch (e) {
    case KEEL_IMAGE_OK: return KEEL_EXIT_OK;
    case KEEL_IMAGE_ERR_IO: return KEEL_EXIT_IO;
    case KEEL_IMAGE_ERR_ARG: return KEEL_EXIT_USAGE;
    case KEEL_IMAGE_ERR_CRYPTO: return KEEL_EXIT_FAIL;
    default: return KEEL_EXIT_VERIFY;
    }
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        sprintf(out + 2 * i, "%02x", p[i]);
    }
}

static int image_keygen(int argc, char **argv)
{
    static const struct option opts[] = {{"out", required_argument, NULL, 'o'}, {0}};
    const char *out = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        if (c == 'o') {
            out = optarg;
        } else {
            return KEEL_EXIT_USAGE;
        }
    }
    if (!out) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "image keygen", "--out NAME is required");
    }
    keel_image_pubkey pub;
    keel_image_seckey sec;
    keel_image_err e = keel_image_keygen(&pub, &sec);
    if (e != KEEL_IMAGE_OK) {
        return keel_cli_fail(exit_for(e), "image keygen", "%s", keel_image_err_name(e));
    }
    char pp[4096], sp[4096];
    snprintf(pp, sizeof pp, "%s.pub", out);
    snprintf(sp, sizeof sp, "%s.sec", out);
    keel_image_error err;
    e = keel_image_key_save(pp, sp, &pub, &sec, &err);
    if (e != KEEL_IMAGE_OK) {
        return keel_cli_fail(exit_for(e), "image keygen", "%s", err.msg);
    }
    char id[2 * KEEL_IMAGE_KEY_ID_SIZE + 1];
    hex(pub.id, KEEL_IMAGE_KEY_ID_SIZE, id);
    printf("key id %s\n%s (public, give to devices)\n%s (secret, keep offline)\n", id, pp, sp);
    return KEEL_EXIT_OK;
}

static int image_sign(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},     {"component", required_argument, NULL, 'c'},
        {"version", required_argument, NULL, 'v'}, {"counter", required_argument, NULL, 'n'},
        {"flags", required_argument, NULL, 'f'},   {0}};
    const char *key = NULL, *comp = NULL, *ver = NULL;
    unsigned long counter = 0, flags = 0;
    int c;
    while ((c = getopt_long(argc, argv, "k:c:v:n:f:", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'k': key = optarg; break;
        case 'c': comp = optarg; break;
        case 'v': ver = optarg; break;
        case 'n':
        case 'f': {
            unsigned long v = strtoul(optarg, &end, 0);
            if (*optarg == '\0' || *end != '\0' || v > 0xffffffffUL) {
                return keel_cli_fail(KEEL_EXIT_USAGE, "image sign", "--%s: '%s' is not a 32-bit number",
                                     c == 'n' ? "counter" : "flags", optarg);
            }
            *(c == 'n' ? &counter : &flags) = v;
            break;
        }
        default: return KEEL_EXIT_USAGE;
        }
    }
    if (!key || !comp || !ver || argc - optind != 2) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "image sign",
                             "need --key, --component, --version, PAYLOAD and OUT (see --help)");
    }
    keel_image_header h = {.security_counter = (uint32_t)counter, .flags = (uint32_t)flags};
    if (!keel_image_uuid_parse(comp, h.component)) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "image sign", "--component: '%s' is not a UUID", comp);
    }
    if (!keel_image_version_parse(ver, &h.version)) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "image sign", "--version: '%s' is not MAJOR.MINOR.PATCH",
                             ver);
    }
    keel_image_error err;
    keel_image_seckey sk;
    keel_image_err e = keel_image_seckey_load(key, &sk, &err);
    if (e != KEEL_IMAGE_OK) {
        return keel_cli_fail(exit_for(e), "image sign", "%s", err.msg);
    }
    uint8_t *payload;
    size_t len;
    e = keel_image_read_file(argv[optind], UINT32_MAX - 4096, &payload, &len, &err);
    if (e != KEEL_IMAGE_OK) {
        return keel_cli_fail(exit_for(e), "image sign", "%s", err.msg);
    }
    h.payload_size = (uint32_t)len;
    size_t cap = keel_image_size(h.payload_size), n;
    uint8_t *out = malloc(cap);
    if (!out) {
        free(payload);
        return keel_cli_fail(KEEL_EXIT_FAIL, "image sign", "out of memory");
    }
    e = keel_image_sign(&h, payload, &sk, out, cap, &n);
    free(payload);
    if (e == KEEL_IMAGE_OK) {
        e = keel_image_write_file(argv[optind + 1], out, n, &err);
    } else {
        snprintf(err.msg, sizeof err.msg, "%s", keel_image_err_name(e));
    }
    free(out);
    if (e != KEEL_IMAGE_OK) {
        return keel_cli_fail(exit_for(e), "image sign", "%s", err.msg);
    }
    printf("%s: %zu bytes, version %s, counter %lu\n", argv[optind + 1], n, ver, counter);
    return KEEL_EXIT_OK;
}

static void print_info(const char *path, const keel_image_info *info)
{
    char u[37], h[65], id[17];
    keel_image_uuid_format(info->header.component, u);
    hex(info->hash, KEEL_IMAGE_HASH_SIZE, h);
    hex(info->key_id, KEEL_IMAGE_KEY_ID_SIZE, id);
    printf("%s:\n  component  %s\n  version    %u.%u.%u\n  counter    %u\n  payload    %u bytes\n"
           "  image      %u bytes\n  flags      0x%08x\n  sha256     %s\n  key id     %s\n",
           path, u, info->header.version.major, info->header.version.minor,
           info->header.version.patch, info->header.security_counter, info->header.payload_size,
           info->image_size, info->header.flags, h, id);
}

static int image_verify(int argc, char **argv)
{
    static const struct option opts[] = {{"key", required_argument, NULL, 'k'}, {0}};
    keel_image_pubkey keys[MAX_KEYS];
    size_t nkeys = 0;
    keel_image_error err;
    int c;
    while ((c = getopt_long(argc, argv, "k:", opts, NULL)) != -1) {
        if (c != 'k') {
            return KEEL_EXIT_USAGE;
        }
        if (nkeys == MAX_KEYS) {
            return keel_cli_fail(KEEL_EXIT_USAGE, "image verify", "at most %d --key", MAX_KEYS);
        }
        keel_image_err e = keel_image_pubkey_load(optarg, &keys[nkeys], &err);
        if (e != KEEL_IMAGE_OK) {
            return keel_cli_fail(exit_for(e), "image verify", "%s", err.msg);
        }
        nkeys++;
    }
    if (nkeys == 0 || optind >= argc) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "image verify", "need --key KEY.pub and IMAGE...");
    }
    keel_image_keys ks = {keys, nkeys};
    int rc = KEEL_EXIT_OK;
    for (int i = optind; i < argc; i++) {
        keel_image_info info;
        keel_image_err e = keel_image_verify_file(argv[i], &ks, &info, &err);
        if (e == KEEL_IMAGE_OK) {
            printf("%s: ok (version %u.%u.%u, counter %u)\n", argv[i], info.header.version.major,
                   info.header.version.minor, info.header.version.patch,
                   info.header.security_counter);
        } else {
            fprintf(stderr, "%s: %s (%s)\n", argv[i], err.msg, keel_image_err_name(e));
            if (rc == KEEL_EXIT_OK || exit_for(e) == KEEL_EXIT_IO) {
                rc = exit_for(e);
            }
        }
    }
    return rc;
}

static int image_inspect(int argc, char **argv)
{
    if (argc < 2) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "image inspect", "which image? (IMAGE...)");
    }
    int rc = KEEL_EXIT_OK;
    for (int i = 1; i < argc; i++) {
        uint8_t *buf;
        size_t len;
        keel_image_error err;
        keel_image_info info;
        keel_image_err e = keel_image_read_file(argv[i], UINT32_MAX, &buf, &len, &err);
        if (e == KEEL_IMAGE_OK) {
            e = keel_image_inspect(buf, len, &info, &err);
            free(buf);
        }
        if (e == KEEL_IMAGE_OK) {
            print_info(argv[i], &info);
        } else {
            fprintf(stderr, "%s: %s (%s)\n", argv[i], err.msg, keel_image_err_name(e));
            rc = exit_for(e);
        }
    }
    return rc;
}


static void push_progress(void *ctx, uint32_t sent, uint32_t total)
{
    int *last = ctx;
    int pct = total ? (int)((uint64_t)sent * 100 / total) : 100;
    if (pct / 10 != *last / 10) {
        fprintf(stderr, "pushed %3d%% (%u of %u bytes)\n", pct, sent, total);
        *last = pct;
    }
}

static int image_push(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},  {"sensor", required_argument, NULL, 's'},
        {"unit", required_argument, NULL, 'u'}, {"rtu-over-tcp", no_argument, NULL, 'r'},
        {"wait", required_argument, NULL, 'w'}, {"serial", required_argument, NULL, 'S'},
        {"baud", required_argument, NULL, 'b'}, {"parity", required_argument, NULL, 'p'},
        {"rs485", no_argument, NULL, '4'},      {0}};
    keel_image_pubkey keys[MAX_KEYS];
    size_t nkeys = 0;
    keel_image_error ierr;
    keel_update_sensor_modbus tcp = {.unit = 1};
    const char *sensor = NULL;
    unsigned long wait_s = 30;
    int c;
    const char *serial = NULL;
    while ((c = getopt_long(argc, argv, "k:s:u:rw:", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'k':
            if (nkeys == MAX_KEYS) {
                return keel_cli_fail(KEEL_EXIT_USAGE, "image push", "at most %d --key", MAX_KEYS);
            }
            if (keel_image_pubkey_load(optarg, &keys[nkeys], &ierr) != KEEL_IMAGE_OK) {
                return keel_cli_fail(KEEL_EXIT_IO, "image push", "%s", ierr.msg);
            }
            nkeys++;
            break;
        case 's': sensor = optarg; break;
        case 'u': {
            unsigned long u = strtoul(optarg, &end, 0);
            if (*end || u < 1 || u > 247) {
                return keel_cli_fail(KEEL_EXIT_USAGE, "image push", "--unit: 1..247");
            }
            tcp.unit = (uint8_t)u;
            break;
        }
        case 'r': tcp.rtu_over_tcp = true; break;
        case 'S': serial = optarg; break;
        case 'b':
            tcp.baud = (uint32_t)strtoul(optarg, &end, 0);
            if (*end || !tcp.baud) {
                return keel_cli_fail(KEEL_EXIT_USAGE, "image push", "--baud: bits per second");
            }
            break;
        case 'p':
            if (strlen(optarg) != 1 || !strchr("NEO", optarg[0])) {
                return keel_cli_fail(KEEL_EXIT_USAGE, "image push", "--parity: N, E or O");
            }
            tcp.parity = optarg[0];
            break;
        case '4': tcp.rs485 = true; break;
        case 'w':
            wait_s = strtoul(optarg, &end, 0);
            if (*end) {
                return keel_cli_fail(KEEL_EXIT_USAGE, "image push", "--wait: seconds");
            }
            break;
        default: return KEEL_EXIT_USAGE;
        }
    }
    const char *colon = sensor ? strrchr(sensor, ':') : NULL;
    bool tcp_ok = colon && colon != sensor && (size_t)(colon - sensor) < sizeof tcp.host &&
                  strlen(colon + 1) < sizeof tcp.port;
    bool serial_ok = serial && strlen(serial) < sizeof tcp.device;
    if (!nkeys || argc - optind != 1 || (!tcp_ok && !serial_ok) || (sensor && serial)) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "image push",
                             "need --key KEY.pub, --sensor HOST:PORT or --serial DEVICE, and IMAGE "
                             "(see --help)");
    }
    if (serial_ok) {
        snprintf(tcp.device, sizeof tcp.device, "%s", serial);
    } else {
        memcpy(tcp.host, sensor, (size_t)(colon - sensor));
        snprintf(tcp.port, sizeof tcp.port, "%s", colon + 1);
    }
    uint8_t *img;
    size_t len;
    if (keel_image_read_file(argv[optind], UINT32_MAX, &img, &len, &ierr) != KEEL_IMAGE_OK) {
        return keel_cli_fail(KEEL_EXIT_IO, "image push", "%s", ierr.msg);
    }
    keel_image_header hdr;
    char want[32] = "";
    if (keel_image_parse_header(img, len, &hdr, NULL) == KEEL_IMAGE_OK) {
        snprintf(want, sizeof want, "%u.%u.%u", hdr.version.major, hdr.version.minor,
                 hdr.version.patch);
    }
    keel_update_sensor_link link;
    keel_update_sensor_link_modbus(&tcp, &link);
    int last = -1;
    keel_update_sensor_opts o = {.progress = push_progress, .progress_ctx = &last};
    keel_update_sensor_stats st;
    keel_update_error err;
    keel_image_keys ks = {keys, nkeys};
    keel_update_err e = keel_update_sensor_push(&link, img, len, &ks, &o, &st, &err);
    free(img);
    if (e != KEEL_UPDATE_OK) {
        keel_update_sensor_modbus_close(&tcp);
        int code = e == KEEL_UPDATE_ERR_FETCH         ? KEEL_EXIT_TIMEOUT
                   : e == KEEL_UPDATE_ERR_UNKNOWN_KEY || e == KEEL_UPDATE_ERR_SIGNATURE ||
                           e == KEEL_UPDATE_ERR_IMAGE
                       ? KEEL_EXIT_VERIFY
                       : KEEL_EXIT_REMOTE;
        return keel_cli_fail(code, "image push", "%s (%s)", err.msg, keel_update_err_name(e));
    }
    printf("pushed %s: %llu bytes sent in %u requests (%u unanswered, %u resumes)\n", want,
           (unsigned long long)st.bytes_sent, st.requests, st.unanswered, st.resumes);
    /* The sensor restarts into the image on trial; wait until it reports a version. */
    char running[32] = "";
    time_t deadline = time(NULL) + (time_t)wait_s;
    int r = -1;
    while (time(NULL) <= deadline && (r = link.read_version(link.ctx, running, sizeof running)) < 0) {
        struct timespec poll_interval = {0, 100 * 1000000L};
        nanosleep(&poll_interval, NULL);
    }
    keel_update_sensor_modbus_close(&tcp);
    if (r != 0) {
        return keel_cli_fail(KEEL_EXIT_TIMEOUT, "image push",
                             "the sensor did not come back within %lu s", wait_s);
    }
    if (strcmp(running, want) != 0) {
        return keel_cli_fail(KEEL_EXIT_FAIL, "image push",
                             "the sensor runs %s: %s did not start and it fell back", running,
                             want);
    }
    printf("sensor runs %s\n", running);
    return KEEL_EXIT_OK;
}

static const struct keel_cli_verb image_verbs[] = {
    {"keygen", "make an Ed25519 signing key pair",
     "usage: keel image keygen --out NAME\n\n"
     "Writes NAME.pub (32 bytes, install on devices as a trusted key) and NAME.sec (64 bytes,\n"
     "keep offline) and prints the key id (the first 8 bytes of SHA-256 of the public key).\n",
     image_keygen},
    {"sign", "sign a payload into a Keel image",
     "usage: keel image sign --key KEY.sec --component UUID --version X.Y.Z [--counter N]\n"
     "                       [--flags N] PAYLOAD OUT\n\n"
     "Writes OUT: a 64-byte header, the payload, and a trailer with the SHA-256 of both and an\n"
     "Ed25519 signature (docs/updates.md). --counter is the security counter (default 0):\n"
     "a device never accepts an image whose counter is below the one it runs.\n\n"
     "example: keel image sign --key release.sec --component \\\n"
     "           0c7e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b --version 1.4.0 --counter 3 app.bin app.kimg\n",
     image_sign},
    {"verify", "check images against trusted public keys",
     "usage: keel image verify --key KEY.pub [--key KEY2.pub ...] IMAGE...\n\n"
     "Checks format, SHA-256 and signature. Exit 5 if any image fails, 3 if one cannot be read.\n",
     image_verify},
    {"inspect", "print an image's header and trailer",
     "usage: keel image inspect IMAGE...\n\n"
     "Prints component, version, security counter, sizes, hash and key id; checks the hash\n"
     "but not the signature (use verify for that).\n",
     image_inspect},
    {"push", "update a MODBUS sensor's firmware (sensor update profile)",
     "usage: keel image push --key KEY.pub --sensor HOST:PORT [--rtu-over-tcp] [--unit N]\n"
     "                       [--wait SECONDS] IMAGE\n"
     "       keel image push --key KEY.pub --serial DEVICE [--baud N] [--parity N|E|O] [--rs485]\n"
     "                       [--unit N] [--wait SECONDS] IMAGE\n\n"
     "Verifies IMAGE against the trusted keys, then writes it to the sensor as MODBUS file\n"
     "records (FC 21), resuming from the record the sensor reports if it restarts, and commits.\n"
     "The sensor verifies the image again, restarts into it on trial and confirms it, or falls\n"
     "back. Waits up to --wait seconds (default 30) for the sensor's version (FC 43/14).\n"
     "Exit 0: the sensor runs IMAGE; 1: it fell back; 4: it stopped answering; 5: IMAGE fails\n"
     "verification; 6: the sensor refused it. See docs/updates.md, \"Sensor update profile\".\n"
     "Serial defaults: 19200 baud, even parity (8E1; N means 8N2), unit 1.\n\n"
     "example: keel image push --key release.pub --sensor 192.168.1.20:502 --unit 7 sensor.kimg\n",
     image_push},
    {NULL, NULL, NULL, NULL},
};

const struct keel_cli_noun keel_noun_image = {"image", "signed update images", image_verbs};

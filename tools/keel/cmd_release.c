/* keel release make: chunk a signed image and write the signed manifest a device fetches.
 * The output directory is what a web server serves: the manifest and the image side by side. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "keel/image.h"

static int num(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (*s == '\0' || *s == '-' || *end != '\0' || errno || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static int release_make(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},        {"hardware", required_argument, NULL, 'w'},
        {"chunk-size", required_argument, NULL, 'c'}, {"expires-in", required_argument, NULL, 'e'},
        {"serial", required_argument, NULL, 's'},     {"out", required_argument, NULL, 'o'},
        {0}};
    const char *key = NULL, *hw = NULL, *outdir = NULL;
    unsigned long long chunk = 65536, expires_in = 30ull * 86400, serial = 1;
    int c;
    while ((c = getopt_long(argc, argv, "k:w:c:e:s:o:", opts, NULL)) != -1) {
        switch (c) {
        case 'k': key = optarg; break;
        case 'w': hw = optarg; break;
        case 'o': outdir = optarg; break;
        case 'c':
            if (num(optarg, 1u << 30, &chunk) != 0 || chunk == 0 || chunk % 256 != 0) {
                return keel_cli_fail(KEEL_EXIT_USAGE, "release make",
                                     "--chunk-size: '%s' is not a positive multiple of 256", optarg);
            }
            break;
        case 'e':
            if (num(optarg, 100ull * 365 * 86400, &expires_in) != 0) {
                return keel_cli_fail(KEEL_EXIT_USAGE, "release make",
                                     "--expires-in: '%s' is not a number of seconds", optarg);
            }
            break;
        case 's':
            if (num(optarg, 0xffffffffull, &serial) != 0) {
                return keel_cli_fail(KEEL_EXIT_USAGE, "release make", "--serial: '%s'", optarg);
            }
            break;
        default: return KEEL_EXIT_USAGE;
        }
    }
    if (!key || !hw || !outdir || argc - optind != 1) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "release make",
                             "need --key, --hardware, --out and IMAGE (see --help)");
    }
    if (strlen(hw) > KEEL_RELEASE_HW_SIZE) {
        return keel_cli_fail(KEEL_EXIT_USAGE, "release make", "--hardware: at most %d characters",
                             KEEL_RELEASE_HW_SIZE);
    }
    const char *src = argv[optind];
    keel_image_error err;
    keel_image_seckey sk;
    keel_image_err e = keel_image_seckey_load(key, &sk, &err);
    uint8_t *img = NULL;
    size_t len = 0;
    if (e == KEEL_IMAGE_OK) {
        e = keel_image_read_file(src, UINT32_MAX, &img, &len, &err);
    }
    keel_image_info info;
    if (e == KEEL_IMAGE_OK) {
        e = keel_image_inspect(img, len, &info, &err);
    }
    if (e != KEEL_IMAGE_OK) {
        free(img);
        return keel_cli_fail(e == KEEL_IMAGE_ERR_IO ? KEEL_EXIT_IO : KEEL_EXIT_VERIFY,
                             "release make", "%s", err.msg);
    }
    keel_release m = {.version = info.header.version,
                       .security_counter = info.header.security_counter,
                       .serial = (uint32_t)serial,
                       .expires = (uint64_t)time(NULL) + expires_in,
                       .chunk_size = (uint32_t)chunk};
    memcpy(m.component, info.header.component, KEEL_IMAGE_UUID_SIZE);
    snprintf(m.hardware, sizeof m.hardware, "%s", hw);
    snprintf(m.image_name, sizeof m.image_name, "%u.%u.%u-%u.kimg", m.version.major,
             m.version.minor, m.version.patch, m.security_counter);
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
        free(img);
        return keel_cli_fail(KEEL_EXIT_IO, "release make", "%s: %s", outdir, strerror(errno));
    }
    uint32_t count = (uint32_t)((len + chunk - 1) / chunk);
    if (count > KEEL_RELEASE_MAX_CHUNKS) {
        free(img);
        return keel_cli_fail(KEEL_EXIT_USAGE, "release make",
                             "%u chunks of %llu bytes; at most %u: raise --chunk-size", count, chunk,
                             KEEL_RELEASE_MAX_CHUNKS);
    }
    size_t cap = keel_release_size(count), n;
    uint8_t *man = malloc(cap);
    e = man ? keel_release_make(&m, img, len, &sk, man, cap, &n) : KEEL_IMAGE_ERR_NO_SPACE;
    char path[4096];
    if (e == KEEL_IMAGE_OK) {
        snprintf(path, sizeof path, "%s/%s", outdir, m.image_name);
        e = keel_image_write_file(path, img, len, &err);
    } else {
        snprintf(err.msg, sizeof err.msg, "%s", keel_image_err_name(e));
    }
    if (e == KEEL_IMAGE_OK) {
        snprintf(path, sizeof path, "%s/manifest.kman", outdir);
        e = keel_image_write_file(path, man, n, &err);
    }
    free(img);
    free(man);
    if (e != KEEL_IMAGE_OK) {
        return keel_cli_fail(KEEL_EXIT_IO, "release make", "%s", err.msg);
    }
    printf("%s/manifest.kman: %s %u.%u.%u counter %u, %u chunks of %u bytes, expires in %llu s\n"
           "%s/%s: %zu bytes\n",
           outdir, hw, m.version.major, m.version.minor, m.version.patch, m.security_counter,
           m.chunk_count, m.chunk_size, expires_in, outdir, m.image_name, len);
    return KEEL_EXIT_OK;
}

static const struct keel_cli_verb release_verbs[] = {
    {"make", "chunk a signed image and write its signed manifest",
     "usage: keel release make --key KEY.sec --hardware HW --out DIR [--chunk-size BYTES]\n"
     "                         [--expires-in SECONDS] [--serial N] IMAGE\n\n"
     "Writes DIR/manifest.kman (signed: component, hardware, version, security counter, expiry,\n"
     "and a SHA-256 per chunk) and DIR/<version>-<counter>.kimg (the image). Serve DIR over HTTP;\n"
     "devices fetch the manifest, then the image in chunks with range requests.\n"
     "Defaults: --chunk-size 65536 (a multiple of 256, at most 4096 chunks), --expires-in\n"
     "2592000 (30 days), --serial 1.\n\n"
     "example: keel release make --key release.sec --hardware keel-gw-1 --out site app.kimg\n",
     release_make},
    {NULL, NULL, NULL, NULL},
};

const struct keel_cli_noun keel_noun_release = {"release", "update releases (manifests)",
                                                release_verbs};

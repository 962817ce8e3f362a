/* bench-update: end-to-end install of a 16 MiB image served by nginx on loopback, against a
 * plain copy of the same bytes with one fsync at the end, on the same disk, in the same run.
 *
 * The install is what a device does before it restarts: fetch the manifest, fetch every chunk
 * with range requests and check its SHA-256, store it in the inactive slot with fdatasync,
 * record it in the state record with fdatasync, check the image's header and signature, and
 * arm the trial. The restart row is the bootloader's full check of the slot plus the confirm. Then an interrupted install: the
 * device process dies mid-chunk half-way through and a second run finishes; the table shows
 * the bytes fetched again. Goal: install >= 50% of the copy's throughput, refetch <= 1 chunk.
 */
#include <curl/curl.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keel/update.h"
#include "nginx_site.h"

#define PAYLOAD (16u << 20)
#define SLOT (17u << 20)

static const char *work;
static char site[600], url[300];
static keel_image_pubkey pub;
static keel_image_seckey sec;
static uint8_t component[16] = {0x6b, 0x65, 0x65, 0x6c, 0xbe, 0x9c};
static uint8_t *v1_img;
static size_t v1_len, v2_len;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench-update: %s\n", what);
    exit(1);
}

static uint8_t *make_image(uint32_t payload, uint16_t major, size_t *len)
{
    uint8_t *p = malloc(payload);
    uint8_t *img = malloc(keel_image_size(payload));
    if (!p || !img) {
        die("out of memory");
    }
    randombytes_buf(p, payload);
    keel_image_header h = {.version = {major, 0, 0}, .security_counter = major,
                           .payload_size = payload};
    memcpy(h.component, component, 16);
    if (keel_image_sign(&h, p, &sec, img, keel_image_size(payload), len) != KEEL_IMAGE_OK) {
        die("sign");
    }
    free(p);
    return img;
}

static void release(const char *dir, const uint8_t *img, size_t len, uint32_t chunk)
{
    keel_release m = {.version = {2, 0, 0}, .security_counter = 2, .serial = 2,
                       .expires = (uint64_t)time(NULL) + 3600, .chunk_size = chunk};
    memcpy(m.component, component, 16);
    strcpy(m.hardware, "bench");
    strcpy(m.image_name, "image.kimg");
    uint32_t count = (uint32_t)((len + chunk - 1) / chunk);
    size_t cap = keel_release_size(count), n;
    uint8_t *man = malloc(cap);
    keel_image_error err;
    char path[800];
    snprintf(path, sizeof path, "%s/%s", site, dir);
    mkdir(path, 0755);
    if (keel_release_make(&m, img, len, &sec, man, cap, &n) != KEEL_IMAGE_OK) {
        die("manifest");
    }
    snprintf(path, sizeof path, "%s/%s/manifest.kman", site, dir);
    if (keel_image_write_file(path, man, n, &err) != KEEL_IMAGE_OK) {
        die(err.msg);
    }
    snprintf(path, sizeof path, "%s/%s/image.kimg", site, dir);
    if (keel_image_write_file(path, img, len, &err) != KEEL_IMAGE_OK) {
        die(err.msg);
    }
    free(man);
}

/* The baseline: read the image file, write it to a new file on the same disk, fsync. */
static double plain_copy(void)
{
    char src[800], dst[800];
    snprintf(src, sizeof src, "%s/c256/image.kimg", site);
    snprintf(dst, sizeof dst, "%s/copy.bin", work);
    double t0 = now_s();
    int in = open(src, O_RDONLY), out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0) {
        die("copy: open");
    }
    static uint8_t buf[1 << 20];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        if (write(out, buf, (size_t)n) != n) {
            die("copy: write");
        }
    }
    if (fsync(out) != 0) {
        die("copy: fsync");
    }
    close(in);
    close(out);
    double t = now_s() - t0;
    unlink(dst);
    return t;
}

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    *(size_t *)ctx += size * n;
    return size * n;
}

/* What the network part costs by itself: the whole image with libcurl, bytes thrown away. */
static double plain_fetch(const char *image_url)
{
    CURL *c = curl_easy_init();
    size_t got = 0;
    curl_easy_setopt(c, CURLOPT_URL, image_url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &got);
    double t0 = now_s();
    CURLcode rc = curl_easy_perform(c);
    double t = now_s() - t0;
    curl_easy_cleanup(c);
    if (rc != CURLE_OK || got != v2_len) {
        die("plain fetch");
    }
    return t;
}

static keel_update_storage fs_inner, fs_outer;
static unsigned long long op_count, die_at;
static keel_update_fetch_stats live;

static void count_op(void)
{
    if (die_at && ++op_count == die_at) {
        FILE *f = fopen("/dev/stdout", "w");
        (void)f;
        char line[64];
        int n = snprintf(line, sizeof line, "%llu\n", (unsigned long long)live.bytes_received);
        (void)!write(3, line, (size_t)n);
        _exit(9);
    }
}
static int w_read(void *c, keel_update_area a, uint32_t o, void *b, uint32_t l)
{
    (void)c;
    return fs_inner.read(fs_inner.ctx, a, o, b, l);
}
static int w_write(void *c, keel_update_area a, uint32_t o, const void *b, uint32_t l)
{
    (void)c;
    count_op();
    return fs_inner.write(fs_inner.ctx, a, o, b, l);
}
static int w_erase(void *c, keel_update_area a, uint32_t o, uint32_t l)
{
    (void)c;
    count_op();
    return fs_inner.erase(fs_inner.ctx, a, o, l);
}
static int w_sync(void *c, keel_update_area a)
{
    (void)c;
    count_op();
    return fs_inner.sync(fs_inner.ctx, a);
}

/* One device power-on in this process: boot, fetch (and install + reboot + confirm when
 * `finish`). Returns seconds; stats in *st. */
static double boot_seconds; /* of the last device_run's restart: trial boot + confirm */

static double device_run(const char *dir, const char *release_dir, bool finish,
                         keel_update_fetch_stats *st)
{
    keel_update_error err;
    if (keel_update_file_storage_open(dir, SLOT, &fs_inner, &err) != KEEL_UPDATE_OK) {
        die(err.msg);
    }
    fs_outer = fs_inner;
    fs_outer.read = w_read;
    fs_outer.write = w_write;
    fs_outer.erase = w_erase;
    fs_outer.sync = w_sync;
    keel_update_config cfg = {.storage = &fs_outer, .keys = {&pub, 1}};
    memcpy(cfg.component, component, 16);
    strcpy(cfg.hardware, "bench");
    keel_update_agent *a;
    keel_update_boot_info b;
    if (keel_update_open(&cfg, &a, &err) != KEEL_UPDATE_OK ||
        keel_update_boot(a, 0, &b, &err) != KEEL_UPDATE_OK) {
        die(err.msg);
    }
    snprintf(url, sizeof url, "%s/manifest.kman", release_dir);
    double t0 = now_s();
    keel_update_err e = keel_update_fetch(a, url, NULL, &live, &err);
    if (e != KEEL_UPDATE_OK) {
        die(err.msg);
    }
    double t = 0;
    if (finish) {
        if (keel_update_install(a, &err) != KEEL_UPDATE_OK) {
            die(err.msg);
        }
        t = now_s() - t0;
        keel_update_close(a);
        double t1 = now_s();
        if (keel_update_open(&cfg, &a, &err) != KEEL_UPDATE_OK ||
            keel_update_boot(a, 0, &b, &err) != KEEL_UPDATE_OK || !b.trial ||
            keel_update_confirm(a, &err) != KEEL_UPDATE_OK) {
            die(err.msg);
        }
        boot_seconds = now_s() - t1;
    } else {
        t = now_s() - t0;
    }
    *st = live;
    keel_update_close(a);
    keel_update_file_storage_close(&fs_inner);
    return t;
}

static void fresh_device(const char *dir)
{
    char cmd[800];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        die("rm");
    }
    keel_update_storage s;
    keel_update_error err;
    if (keel_update_file_storage_open(dir, SLOT, &s, &err) != KEEL_UPDATE_OK ||
        keel_update_provision(&s, v1_img, v1_len, &err) != KEEL_UPDATE_OK) {
        die(err.msg);
    }
    keel_update_file_storage_close(&s);
}

int main(void)
{
    if (sodium_init() < 0 || keel_image_keygen(&pub, &sec) != KEEL_IMAGE_OK) {
        die("keys");
    }
    work = kf_tmpdir("bench-update");
    snprintf(site, sizeof site, "%s/site", work);
    mkdir(site, 0755);
    v1_img = make_image(1024, 1, &v1_len);
    uint8_t *v2 = make_image(PAYLOAD, 2, &v2_len);
    const uint32_t chunks[] = {64u << 10, 256u << 10, 1u << 20};
    for (int i = 0; i < 3; i++) {
        char d[16];
        snprintf(d, sizeof d, "c%u", chunks[i] >> 10);
        release(d, v2, v2_len, chunks[i]);
    }
    free(v2);
    kf_proc nginx;
    uint16_t port;
    if (nginx_site_start(&nginx, work, site, &port) != 0) {
        die("nginx did not start");
    }
    char base[300], rel[400], dir[700];
    snprintf(base, sizeof base, "http://127.0.0.1:%u", port);
    snprintf(dir, sizeof dir, "%s/device", work);
    double mib = (double)v2_len / (1 << 20);

    printf("bench-update: %.1f MiB image via nginx on 127.0.0.1, slots and copy in %s\n\n", mib,
           work);
    printf("| %-44s | %9s | %9s | %8s |\n", "what", "seconds", "MiB/s", "vs copy");
    printf("|----------------------------------------------|-----------|-----------|----------|\n");
    double copy = 0;
    for (int r = 0; r < 3; r++) { /* best of three: the disk is shared with other work */
        double t = plain_copy();
        copy = r == 0 || t < copy ? t : copy;
    }
    printf("| %-44s | %9.3f | %9.1f | %8s |\n", "plain copy + fsync (baseline)", copy, mib / copy,
           "1.00");
    /* What no install can avoid: one SHA-256 pass over the image (libsodium). */
    {
        uint8_t h[32];
        size_t got = 0;
        char path[800];
        keel_image_error ie;
        uint8_t *file = NULL;
        snprintf(path, sizeof path, "%s/c256/image.kimg", site);
        if (keel_image_read_file(path, SLOT, &file, &got, &ie) != KEEL_IMAGE_OK) {
            die("read image");
        }
        double t0 = now_s();
        crypto_hash_sha256(h, file, got);
        double t = now_s() - t0;
        printf("| %-44s | %9.3f | %9.1f | %8.2f |\n", "one SHA-256 pass (libsodium), for scale", t,
               mib / t, copy / t);
        free(file);
    }
    {
        char iu[400];
        snprintf(iu, sizeof iu, "%s/c256/image.kimg", base);
        double t = 0;
        for (int r = 0; r < 3; r++) {
            double x = plain_fetch(iu);
            t = r == 0 || x < t ? x : t;
        }
        printf("| %-44s | %9.3f | %9.1f | %8.2f |\n", "HTTP fetch alone (libcurl, bytes dropped)", t,
               mib / t, copy / t);
    }
    double best_ratio = 0, boot = 0;
    for (int i = 0; i < 3; i++) {
        double t = 0;
        keel_update_fetch_stats st;
        for (int r = 0; r < 2; r++) {
            fresh_device(dir);
            snprintf(rel, sizeof rel, "%s/c%u", base, chunks[i] >> 10);
            double x = device_run(dir, rel, true, &st);
            t = r == 0 || x < t ? x : t;
            boot = (i == 0 && r == 0) || boot_seconds < boot ? boot_seconds : boot;
        }
        char what[64];
        snprintf(what, sizeof what, "install, %u KiB chunks", chunks[i] >> 10);
        printf("| %-44s | %9.3f | %9.1f | %8.2f |\n", what, t, mib / t, copy / t);
        best_ratio = copy / t > best_ratio ? copy / t : best_ratio;
    }
    printf("| %-44s | %9.3f | %9.1f | %8s |\n", "restart: trial boot (verifies) + confirm", boot,
           mib / boot, "-");
    printf("\ninstall = fetch manifest + fetch, SHA-256-check and store every chunk (2 fdatasync\n"
           "          each) + check the image's header and Ed25519 signature + arm the trial;\n"
           "restart = the bootloader's full SHA-256 + signature check of the slot + confirm\n");

    /* Interrupted: the device dies mid-chunk half-way (at the slot write of the chunk after
     * half of them), then a second power-on finishes. 256 KiB chunks. */
    uint32_t chunk = 256u << 10, count = (uint32_t)((v2_len + chunk - 1) / chunk);
    fresh_device(dir);
    snprintf(rel, sizeof rel, "%s/c256", base);
    int pfd[2];
    if (pipe(pfd) != 0) {
        die("pipe");
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 3);
        /* Per chunk: erase, write, sync of the slot; erase, write, sync of the record; plus 6
         * for begin. Die at the slot write of chunk count/2. */
        die_at = 6 + 6ull * (count / 2) + 2;
        keel_update_fetch_stats st;
        device_run(dir, rel, true, &st);
        _exit(0);
    }
    close(pfd[1]);
    char buf[64] = {0};
    ssize_t n = read(pfd[0], buf, sizeof buf - 1);
    close(pfd[0]);
    int status;
    waitpid(pid, &status, 0);
    if (n <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 9) {
        die("the interrupted run did not die where planned");
    }
    unsigned long long first = strtoull(buf, NULL, 10);
    keel_update_fetch_stats st;
    die_at = 0;
    device_run(dir, rel, true, &st);
    unsigned long long total = first + st.bytes_received;
    long long again = (long long)total - (long long)v2_len;
    printf("\ninterrupted install (256 KiB chunks, killed mid-chunk %u of %u, then resumed):\n",
           count / 2 + 1, count);
    printf("| %-44s | %12s |\n", "what", "bytes");
    printf("|----------------------------------------------|--------------|\n");
    printf("| %-44s | %12zu |\n", "image", v2_len);
    printf("| %-44s | %12llu |\n", "received before the kill", first);
    printf("| %-44s | %12llu |\n", "received after the restart", (unsigned long long)st.bytes_received);
    printf("| %-44s | %12lld |\n", "fetched again (goal: at most one chunk)", again);
    printf("\nratio: best install / plain copy = %.2f (goal >= 0.50); refetch = %.2f chunks "
           "(goal <= 1)\n",
           best_ratio, (double)again / chunk);
    kf_stop(&nginx, 2000);
    return 0;
}

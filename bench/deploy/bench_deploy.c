/* make bench-deploy: what a cloud deployment through keeld costs, measured against the bare
 * mechanism in the same run on this machine.
 *
 *  deployment download     `keel cloud deploy` of a 16 MiB signed package (64 KiB chunks) until
 *                          keeld reports it staged: the manifest fetched and checked, every
 *                          chunk fetched with a range request, hashed, stored and synced in the
 *                          update agent's inactive slot, the image verified in full. Baseline:
 *                          libcurl fetching the same image from the same nginx to a file, fsync.
 *  control socket RTT      `keel app list` round trips to keeld while that download runs, vs
 *                          idle: the download is on its own thread, so keeld's loop (and the
 *                          apps' SDK calls) should not wait for it.
 * Needs root (the sandbox), mosquitto and nginx; prints why and exits 0 when not root. */
#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "keel/image.h"
#include "nginx_site.h"
#include "world.h"

#define IMAGE_MB 16
#define IDLE_CALLS 200
#define MAX_CALLS 20000

static char out[64 * 1024];

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t pct(int64_t *v, int n, int p)
{
    qsort(v, (size_t)n, sizeof *v, cmp64);
    return v[(n - 1) * p / 100];
}

static size_t to_file(char *p, size_t s, size_t n, void *f) { return fwrite(p, s, n, f); }

/* The baseline: the image with libcurl into a file, synced. Nanoseconds, or -1. */
static int64_t plain_download(const char *url, const char *path)
{
    FILE *f = fopen(path, "wb");
    CURL *c = curl_easy_init();
    if (!f || !c) {
        return -1;
    }
    int64_t t0 = now_ns();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, to_file);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    CURLcode rc = curl_easy_perform(c);
    bool ok = rc == CURLE_OK && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int64_t t = now_ns() - t0;
    curl_easy_cleanup(c);
    fclose(f);
    return ok ? t : -1;
}

/* Whether keeld's log has `needle` now (the fixture's wait would print on every miss). */
static bool log_has(const sv_world *w, const char *needle)
{
    static char text[1 << 20];
    FILE *f = fopen(w->keeld.log, "r");
    if (!f) {
        return false;
    }
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    return strstr(text, needle) != NULL;
}

/* The time of day (ms) of keeld's first log line holding `needle` ("HH:MM:SS.mmm keeld: ..."),
 * or -1: splits the deployment into keeld's own phases. */
static int64_t log_time_ms(const sv_world *w, const char *needle)
{
    FILE *f = fopen(w->keeld.log, "r");
    char line[2048];
    int64_t t = -1;
    while (f && t < 0 && fgets(line, sizeof line, f)) {
        int h, m, sec, ms;
        if (strstr(line, needle) && sscanf(line, "%d:%d:%d.%d", &h, &m, &sec, &ms) == 4) {
            t = ((int64_t)h * 3600 + m * 60 + sec) * 1000 + ms;
        }
    }
    if (f) {
        fclose(f);
    }
    return t;
}

static int64_t ctl_rtt(sv_world *w)
{
    int64_t t0 = now_ns();
    if (sv_world_ctl(w, "list", out, sizeof out) != 0) {
        return -1;
    }
    return now_ns() - t0;
}

int main(void)
{
    if (geteuid() != 0) {
        printf("bench-deploy: needs root (keeld's sandbox); not run\n");
        return 0;
    }
    if (!getenv("KEEL_BUILD_DIR")) {
        setenv("KEEL_BUILD_DIR", KEEL_BENCH_BUILD_DIR, 1);
    }
    kb_broker B;
    char cfg[600];
    if (kb_init(&B, "keel", NULL) || kb_client(&B, "dev1") || kb_client(&B, "operator") ||
        kb_start(&B) || kb_device_config(&B, "dev1", NULL, cfg, sizeof cfg) < 0) {
        fprintf(stderr, "bench-deploy: cannot start mosquitto\n");
        return 1;
    }
    /* the "cloud" member of the device config the broker fixture wrote */
    static char text[2048];
    FILE *f = fopen(cfg, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) {
        fclose(f);
    }
    text[n] = '\0';
    char *open = strchr(text, '{'), *close = strrchr(text, '}');
    if (!open || !close) {
        return 1;
    }
    *close = '\0';
    const char *keys = kf_tmpdir("bench-deploy-keys");
    char pp[400], sp[400], extra[3000];
    keel_image_pubkey pub;
    keel_image_seckey sec;
    keel_image_error kerr;
    snprintf(pp, sizeof pp, "%s/rel.pub", keys);
    snprintf(sp, sizeof sp, "%s/rel.sec", keys);
    snprintf(extra, sizeof extra, "%s, \"trusted_keys\": [\"%s\"], \"hardware\": \"keel-gw\"",
             open + 1, pp);
    sv_world w;
    if (keel_image_keygen(&pub, &sec) != KEEL_IMAGE_OK ||
        keel_image_key_save(pp, sp, &pub, &sec, &kerr) != KEEL_IMAGE_OK ||
        sv_world_init(&w, "bench-deploy", extra) < 0) {
        fprintf(stderr, "bench-deploy: cannot set up the device\n");
        return 1;
    }
    /* 1.0.0 installed signed; 2.0.0 (IMAGE_MB of padding) released and served by nginx */
    char v1[600], v2[600], site[600], cmd[8192];
    snprintf(v1, sizeof v1, "%s/v1", w.root);
    snprintf(v2, sizeof v2, "%s/v2", w.root);
    snprintf(site, sizeof site, "%s/site", w.root);
    if (mkdir(v1, 0755) < 0 || mkdir(v2, 0755) < 0 || mkdir(site, 0755) < 0 ||
        sv_world_package_version(v1, "big", "sv_sample", "1.0.0", "") < 0 ||
        sv_world_package_version(v2, "big", "sv_sample", "2.0.0", "") < 0) {
        return 1;
    }
    snprintf(cmd, sizeof cmd,
             "head -c %d /dev/urandom > %s/big/padding.bin && "
             "%s/bin/keel app pack --key %s %s/big %s/big.kpkg >/dev/null && "
             "%s/bin/keel app pack --key %s %s/big %s/big.kpkg >/dev/null && "
             "%s/bin/keel release make --key %s --hardware keel-gw --out %s %s/big.kpkg "
             ">/dev/null",
             IMAGE_MB << 20, v2, kf_build_dir(), sp, v1, v1, kf_build_dir(), sp, v2, v2,
             kf_build_dir(), sp, site, v2);
    kf_proc nginx;
    uint16_t port;
    if (system(cmd) != 0 || nginx_site_start(&nginx, w.root, site, &port) < 0 ||
        sv_world_start(&w) < 0) {
        fprintf(stderr, "bench-deploy: cannot build the release or start nginx/keeld\n");
        return 1;
    }
    snprintf(cmd, sizeof cmd, "install %s/big.kpkg", v1);
    if (sv_world_ctl(&w, cmd, out, sizeof out) != 0 ||
        sv_world_ctl(&w, "start big", out, sizeof out) != 0 ||
        !sv_world_wait(&w, "list", "big 1.0.0 running", 10000) ||
        kf_wait_log(&w.keeld, "cloud: connected", 10000) != 0) {
        fprintf(stderr, "bench-deploy: keeld did not take 1.0.0: %s\n", out);
        kf_dump_log(&w.keeld, 20);
        return 1;
    }
    struct stat ist;
    char img[700], url[300];
    snprintf(img, sizeof img, "%s/big.kpkg", v2);
    if (stat(img, &ist) != 0) {
        return 1;
    }
    double mib = (double)ist.st_size / (1 << 20);
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("keeld %s, this machine: %ld cores online; image %.1f MiB\n\n", kf_build_dir(),
           sysconf(_SC_NPROCESSORS_ONLN), mib);

    /* baseline first (it also warms the page cache for nginx, as the deployment will find it) */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char dst[700];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/2.0.0-0.kimg", port);
    snprintf(dst, sizeof dst, "%s/plain.kimg", w.root);
    int64_t plain = plain_download(url, dst);

    static int64_t idle[IDLE_CALLS], busy[MAX_CALLS];
    for (int i = 0; i < IDLE_CALLS; i++) {
        idle[i] = ctl_rtt(&w);
    }
    snprintf(cmd, sizeof cmd,
             "%s/bin/keel cloud deploy --manifest http://127.0.0.1:%u/manifest.kman "
             "--device dev1 --host 127.0.0.1 --port %u --ca %s/ca.pem --cert %s/operator.pem "
             "--key %s/operator.key >/dev/null 2>&1",
             kf_build_dir(), port, B.port, B.dir, B.dir, B.dir);
    int64_t t0 = now_ns();
    if (system(cmd) != 0 || kf_wait_log(&w.keeld, "big: download started", 10000) != 0) {
        fprintf(stderr, "bench-deploy: the deployment did not start\n");
        kf_dump_log(&w.keeld, 20);
        return 1;
    }
    int nb = 0;
    char needle[64];
    snprintf(needle, sizeof needle, "downloaded: big 2.0.0 staged");
    /* control-socket round trips for as long as the download runs */
    while (nb < MAX_CALLS && !log_has(&w, needle)) {
        busy[nb++] = ctl_rtt(&w);
        struct timespec pace = {0, 5 * 1000000L}; /* a caller's pace, not a load generator */
        nanosleep(&pace, NULL);
    }
    if (kf_wait_log(&w.keeld, needle, 120000) != 0) {
        fprintf(stderr, "bench-deploy: the deployment did not finish\n");
        kf_dump_log(&w.keeld, 20);
        return 1;
    }
    int64_t deploy = now_ns() - t0;
    bool ran = sv_world_wait(&w, "list", "big 2.0.0 running", 20000);

    printf("%-44s %12s %12s %8s\n", "what", "measured", "baseline", "ratio");
    printf("%-44s %9.0f ms %9.0f ms %7.2fx\n", "deployment: deploy -> staged (keeld)",
           deploy / 1e6, plain / 1e6, plain > 0 ? (double)deploy / (double)plain : 0);
    printf("%-44s %7.1f MiB/s %7.1f MiB/s\n", "  throughput", mib / (deploy / 1e9),
           plain > 0 ? mib / (plain / 1e9) : 0);
    /* keeld's download alone (its log's timestamps): the rest is `keel cloud deploy` over TLS
     * MQTT, the desired-properties delivery and the manifest check */
    int64_t ts = log_time_ms(&w, "big: download started"), te = log_time_ms(&w, needle);
    if (ts >= 0 && te >= ts) {
        printf("%-44s %9lld ms %9.0f ms %7.2fx\n", "  of which download -> staged (keeld log)",
               (long long)(te - ts), plain / 1e6, plain > 0 ? (double)(te - ts) * 1e6 / plain : 0);
    }
    int64_t im = pct(idle, IDLE_CALLS, 50), i99 = pct(idle, IDLE_CALLS, 99);
    if (nb > 0) {
        int64_t bm = pct(busy, nb, 50), b99 = pct(busy, nb, 99), bmax = busy[nb - 1];
        printf("%-44s %9.0f us %9.0f us %7.2fx\n", "control socket RTT median (busy vs idle)",
               bm / 1e3, im / 1e3, (double)bm / (double)im);
        printf("%-44s %9.0f us %9.0f us %7.2fx\n", "control socket RTT p99 (busy vs idle)",
               b99 / 1e3, i99 / 1e3, (double)b99 / (double)i99);
        printf("%-44s %9.0f us\n", "control socket RTT max during the download", bmax / 1e3);
        printf("%-44s %12d\n", "round trips during the download", nb);
    }
    printf("%-44s %12s\n", "2.0.0 started on trial afterwards", ran ? "yes" : "NO");
    kf_stop(&w.keeld, 5000);
    kf_stop(&nginx, 2000);
    kb_stop(&B);
    return ran ? 0 : 1;
}

/* The update agent against a real nginx (started by the test on an ephemeral port).
 *
 * - resume: a relay between the device and nginx drops connections mid-chunk, and the device
 *   process kills itself at random storage operations (as kill -9 would); the device runs
 *   again and again until it runs v2 confirmed, and across all runs the image bytes received
 *   are at most the image plus one chunk per kill (a dropped connection costs nothing: the
 *   fetcher resumes the range where it stopped).
 * - attacks over HTTP: a tampered image, a truncated image, an expired and a rolled-back
 *   manifest are refused with their own error and the device keeps running v1.
 *
 * - HTTPS: the same over TLS, trusting only the CA the device is given.
 *
 * argv[1] is the update_device program.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "nginx_site.h"
#include "keel/image.h"

#define COMPONENT "6b65656c-0000-4000-8000-0000000000aa"
#define HW "keel-gw-test"
#define PAYLOAD (300u * 1024u)
#define CHUNK (16u * 1024u)

static const char *device_exe;
static char work[512], keypub[600], site[600];
static keel_image_seckey sec;
static uint16_t nginx_port, tls_port;
static kf_proc nginx, nginx_tls;
static char cert[700];
static size_t v2_image_len;

/* ---- releases ---- */

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    keel_image_error err;
    assert_int_equal(keel_image_write_file(path, p, n, &err), KEEL_IMAGE_OK);
}

/* Writes site/<dir>/manifest.kman and its image for version `major`; returns the image size.
 * `mangle` may damage the image after the manifest was made. */
static size_t make_release(const char *dir, uint16_t major, uint32_t counter, uint64_t expires,
                           void (*mangle)(uint8_t *img, size_t *len))
{
    uint8_t *payload = malloc(PAYLOAD);
    for (uint32_t i = 0; i < PAYLOAD; i++) {
        payload[i] = (uint8_t)(i * 13u + major + (i >> 11));
    }
    keel_image_header h = {.version = {major, 0, 0}, .security_counter = counter,
                           .payload_size = PAYLOAD};
    assert_true(keel_image_uuid_parse(COMPONENT, h.component));
    size_t cap = keel_image_size(PAYLOAD) + CHUNK, len;
    uint8_t *img = malloc(cap);
    assert_int_equal(keel_image_sign(&h, payload, &sec, img, cap, &len), KEEL_IMAGE_OK);
    keel_release m = {.version = h.version, .security_counter = counter, .serial = major,
                       .expires = expires, .chunk_size = CHUNK};
    memcpy(m.component, h.component, 16);
    strcpy(m.hardware, HW);
    strcpy(m.image_name, "image.kimg");
    size_t mcap = keel_release_size(64), mlen;
    uint8_t *man = malloc(mcap);
    assert_int_equal(keel_release_make(&m, img, len, &sec, man, mcap, &mlen), KEEL_IMAGE_OK);
    if (mangle) {
        mangle(img, &len);
    }
    char path[800];
    snprintf(path, sizeof path, "%s/%s", site, dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/manifest.kman", site, dir);
    write_file(path, man, mlen);
    snprintf(path, sizeof path, "%s/%s/image.kimg", site, dir);
    write_file(path, img, len);
    if (major == 1 && !mangle) {
        snprintf(path, sizeof path, "%s/v1.kimg", work);
        write_file(path, img, len);
    }
    free(payload);
    free(img);
    free(man);
    return len;
}

static void tamper(uint8_t *img, size_t *len)
{
    (void)len;
    img[5 * CHUNK + 100] ^= 0x01;
}
static void truncate_img(uint8_t *img, size_t *len)
{
    (void)img;
    *len -= CHUNK + 7;
}
static void swap_chunks(uint8_t *img, size_t *len)
{
    (void)len;
    uint8_t tmp[CHUNK];
    memcpy(tmp, img + 2 * CHUNK, CHUNK);
    memcpy(img + 2 * CHUNK, img + 3 * CHUNK, CHUNK);
    memcpy(img + 3 * CHUNK, tmp, CHUNK);
}

/* ---- the relay that drops connections ---- */

static int relay_listen_fd;
static uint16_t relay_port;
static volatile int relay_drops_left; /* connections still to cut short */
static volatile unsigned relay_dropped;
static unsigned relay_seed = 12345;

static int connect_port(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void relay_one(int client)
{
    int server = connect_port(nginx_port);
    if (server < 0) {
        close(client);
        return;
    }
    long budget = -1;
    if (relay_drops_left > 0) {
        relay_drops_left--;
        budget = 1 + (long)(rand_r(&relay_seed) % (2 * CHUNK));
    }
    struct pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    char buf[8192];
    for (;;) {
        if (poll(p, 2, 10000) <= 0) {
            break;
        }
        if (p[0].revents) {
            ssize_t n = read(client, buf, sizeof buf);
            if (n <= 0 || write(server, buf, (size_t)n) != n) {
                break;
            }
        }
        if (p[1].revents) {
            ssize_t n = read(server, buf, sizeof buf);
            if (n <= 0) {
                break;
            }
            if (budget >= 0 && n >= budget) {
                (void)!write(client, buf, (size_t)budget);
                relay_dropped++;
                break; /* cut mid-response */
            }
            if (write(client, buf, (size_t)n) != n) {
                break;
            }
            if (budget >= 0) {
                budget -= n;
            }
        }
    }
    close(server);
    close(client);
}

static void *relay_main(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept4(relay_listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR) {
                continue;
            }
            return NULL;
        }
        relay_one(c);
    }
}

static void relay_start(void)
{
    relay_listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(relay_listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(relay_listen_fd, (struct sockaddr *)&a, &al), 0);
    relay_port = ntohs(a.sin_port);
    assert_int_equal(listen(relay_listen_fd, 16), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, relay_main, NULL), 0);
    pthread_detach(t);
}

/* ---- nginx and the device ---- */

static int setup(void **state)
{
    (void)state;
    snprintf(work, sizeof work, "%s", kf_tmpdir("update-http"));
    chmod(work, 0755);
    snprintf(site, sizeof site, "%s/site", work);
    mkdir(site, 0755);
    keel_image_pubkey pub;
    assert_int_equal(keel_image_keygen(&pub, &sec), KEEL_IMAGE_OK);
    char secp[600];
    snprintf(keypub, sizeof keypub, "%s/release.pub", work);
    snprintf(secp, sizeof secp, "%s/release.sec", work);
    keel_image_error ie;
    assert_int_equal(keel_image_key_save(keypub, secp, &pub, &sec, &ie), KEEL_IMAGE_OK);

    make_release("v1", 1, 1, (uint64_t)time(NULL) + 3600, NULL);
    v2_image_len = make_release("v2", 2, 2, (uint64_t)time(NULL) + 3600, NULL);
    make_release("tampered", 3, 3, (uint64_t)time(NULL) + 3600, tamper);
    make_release("truncated", 3, 3, (uint64_t)time(NULL) + 3600, truncate_img);
    make_release("swapped", 3, 3, (uint64_t)time(NULL) + 3600, swap_chunks);
    make_release("expired", 3, 3, (uint64_t)time(NULL) - 10, NULL);
    make_release("old", 0, 0, (uint64_t)time(NULL) + 3600, NULL);

    if (nginx_site_start(&nginx, work, site, &nginx_port) != 0) {
        fail_msg("nginx did not start");
    }
    relay_start();

    /* HTTPS: a throwaway certificate for 127.0.0.1, made with the openssl command. */
    char key[700];
    snprintf(cert, sizeof cert, "%s/cert.pem", work);
    snprintf(key, sizeof key, "%s/key.pem", work);
    char *gen[] = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                   "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", NULL};
    static kf_proc ossl;
    assert_int_equal(kf_spawn(&ossl, "openssl", gen, NULL), 0);
    int st = kf_wait_exit(&ossl, 30000);
    assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char tlswork[700];
    snprintf(tlswork, sizeof tlswork, "%s/tls", work);
    mkdir(tlswork, 0755);
    if (nginx_site_start_tls(&nginx_tls, tlswork, site, cert, key, &tls_port) != 0) {
        fail_msg("nginx (TLS) did not start");
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kf_stop(&nginx, 2000);
    kf_stop(&nginx_tls, 2000);
    return 0;
}

/* Runs the device once; returns its exit status and leaves its output in `out`. */
static const char *extra_arg; /* one more device option for the next run, or NULL */

static int device_ca(const char *dir, const char *release, uint16_t port,
                     unsigned long long die_at, const char *ca, char *out, size_t cap)
{
    char url[300], die[32], log[700];
    snprintf(url, sizeof url, "%s://127.0.0.1:%u/%s/manifest.kman", port == tls_port ? "https" : "http",
             port, release);
    snprintf(die, sizeof die, "%llu", die_at);
    snprintf(log, sizeof log, "%s/device.log", work);
    unlink(log);
    char *argv[] = {(char *)device_exe, "--dir", (char *)dir, "--key", keypub, "--component",
                    COMPONENT, "--hardware", HW, "--url", url, "--die-after-ops", die,
                    ca ? "--ca" : (char *)extra_arg, ca ? (char *)ca : NULL, NULL};
    static kf_proc p; /* the fixture keeps a pointer to it */
    assert_int_equal(kf_spawn(&p, "device", argv, log), 0);
    int status = kf_wait_exit(&p, 60000);
    assert_int_not_equal(status, -1);
    FILE *f = fopen(log, "r");
    size_t n = f ? fread(out, 1, cap - 1, f) : 0;
    out[n] = '\0';
    if (f) {
        fclose(f);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static int device(const char *dir, const char *release, uint16_t port, unsigned long long die_at,
                  char *out, size_t cap)
{
    return device_ca(dir, release, port, die_at, NULL, out, cap);
}

static void provision(const char *dir)
{
    char img[700], slot[32], log[700];
    snprintf(img, sizeof img, "%s/v1.kimg", work);
    snprintf(slot, sizeof slot, "%u", 1u << 20);
    snprintf(log, sizeof log, "%s/provision.log", work);
    char *argv[] = {(char *)device_exe, "--dir", (char *)dir, "--provision", img, "--slot-size",
                    slot, NULL};
    static kf_proc p;
    assert_int_equal(kf_spawn(&p, "provision", argv, log), 0);
    int st = kf_wait_exit(&p, 20000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static unsigned long long field(const char *out, const char *key)
{
    const char *p = strstr(out, key);
    return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static void test_update_http_drops_and_kills_resume_at_most_one_chunk(void **state)
{
    (void)state;
    char dir[700], out[4096];
    snprintf(dir, sizeof dir, "%s/dev-resume", work);
    provision(dir);
    relay_drops_left = 12;
    unsigned kills = 0;
    unsigned long long received = 0;
    unsigned seed = 777;
    bool done = false;
    for (int run = 0; run < 60 && !done; run++) {
        /* Kill the first few runs at a random storage operation of the download. */
        unsigned long long die = kills < 5 ? 3 + (unsigned long long)(rand_r(&seed) % 40) : 0;
        int rc = device(dir, "v2", relay_port, die, out, sizeof out);
        if (strstr(out, "died at op")) {
            kills++;
            received += field(out, "received ");
            assert_int_equal(rc, 9);
            continue;
        }
        if (rc != 0) {
            fail_msg("device run %d failed: %s", run, out);
        }
        received += field(out, "received ");
        done = strstr(out, "confirmed 2.0.0") != NULL;
    }
    assert_true(done);
    printf("# %u kills, %u dropped connections; received %llu bytes for a %zu-byte image\n", kills,
           relay_dropped, received, v2_image_len);
    assert_true(relay_dropped > 0);
    assert_true(kills >= 3);
    assert_true(received >= v2_image_len);
    assert_true(received <= v2_image_len + (unsigned long long)kills * CHUNK);
    /* And it stays on v2. */
    assert_int_equal(device(dir, "v2", nginx_port, 0, out, sizeof out), 0);
    assert_non_null(strstr(out, "boot slot 1 version 2.0.0 trial 0"));
    assert_non_null(strstr(out, "up to date 2.0.0"));
}

static void refused(const char *release, const char *want_err)
{
    char dir[700], out[4096];
    snprintf(dir, sizeof dir, "%s/dev-%s", work, release);
    provision(dir);
    int rc = device(dir, release, nginx_port, 0, out, sizeof out);
    assert_int_equal(rc, 1);
    if (!strstr(out, want_err)) {
        fail_msg("%s: wanted %s, got: %s", release, want_err, out);
    }
    /* The device still boots v1, not on trial. */
    rc = device(dir, "v1", nginx_port, 0, out, sizeof out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "boot slot 0 version 1.0.0 trial 0"));
}

static void test_update_http_tampered_image_refused(void **state)
{
    (void)state;
    refused("tampered", "KEEL_UPDATE_ERR_CHUNK");
}

static void test_update_http_truncated_image_refused(void **state)
{
    (void)state;
    refused("truncated", "KEEL_UPDATE_ERR_FETCH");
}

static void test_update_http_chunk_for_wrong_index_refused(void **state)
{
    (void)state;
    refused("swapped", "KEEL_UPDATE_ERR_CHUNK");
}

static void test_update_http_expired_manifest_refused(void **state)
{
    (void)state;
    refused("expired", "KEEL_UPDATE_ERR_EXPIRED");
}

static void test_update_http_rollback_refused(void **state)
{
    (void)state;
    refused("old", "KEEL_UPDATE_ERR_ROLLBACK");
}

static void test_update_https_with_device_ca_installs(void **state)
{
    (void)state;
    char dir[700], out[4096];
    snprintf(dir, sizeof dir, "%s/dev-https", work);
    provision(dir);
    /* Without the CA the server's certificate is not trusted: nothing is fetched. */
    assert_int_equal(device_ca(dir, "v2", tls_port, 0, NULL, out, sizeof out), 1);
    assert_non_null(strstr(out, "KEEL_UPDATE_ERR_FETCH"));
    assert_int_equal(device_ca(dir, "v2", tls_port, 0, cert, out, sizeof out), 0);
    assert_non_null(strstr(out, "installed 2.0.0"));
    assert_int_equal(device_ca(dir, "v2", tls_port, 0, cert, out, sizeof out), 0);
    assert_non_null(strstr(out, "confirmed 2.0.0"));
}

static void test_update_http_cancel_keeps_chunks_and_resumes(void **state)
{
    (void)state;
    char dir[700], out[4096];
    snprintf(dir, sizeof dir, "%s/dev-cancel", work);
    provision(dir);
    extra_arg = "--cancel-after=3";
    assert_int_equal(device(dir, "v2", nginx_port, 0, out, sizeof out), 0);
    extra_arg = NULL;
    assert_non_null(strstr(out, "cancelled with 3 of 19 chunks"));
    unsigned long long first = field(out, "received ");
    assert_int_equal(device(dir, "v2", nginx_port, 0, out, sizeof out), 0);
    assert_non_null(strstr(out, "installed 2.0.0"));
    /* At most the chunk in flight when the flag rose is fetched again. */
    unsigned long long total = first + field(out, "received ");
    assert_true(total >= v2_image_len && total <= v2_image_len + CHUNK);
}

static void test_update_http_missing_manifest_fetch_error(void **state)
{
    (void)state;
    refused("nowhere", "KEEL_UPDATE_ERR_FETCH");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s UPDATE_DEVICE\n", argv[0]);
        return 2;
    }
    device_exe = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_update_http_drops_and_kills_resume_at_most_one_chunk),
        cmocka_unit_test(test_update_http_tampered_image_refused),
        cmocka_unit_test(test_update_http_truncated_image_refused),
        cmocka_unit_test(test_update_http_chunk_for_wrong_index_refused),
        cmocka_unit_test(test_update_http_expired_manifest_refused),
        cmocka_unit_test(test_update_http_rollback_refused),
        cmocka_unit_test(test_update_http_missing_manifest_fetch_error),
        cmocka_unit_test(test_update_https_with_device_ca_installs),
        cmocka_unit_test(test_update_http_cancel_keeps_chunks_and_resumes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

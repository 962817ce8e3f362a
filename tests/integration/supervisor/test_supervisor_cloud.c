/* keeld with its cloud link to a real TLS mosquitto (tests/fixture/broker.h): an app's
 * telemetry reaches the operator through keeld's durable outbox, and a crash report's summary
 * follows it. The operator listens with mosquitto_sub on a persistent session created before
 * keeld starts, so nothing published in between is missed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "broker.h"
#include "keel/image.h"
#include "nginx_site.h"
#include "world.h"

static sv_world W;
static kb_broker B;
static char sub_base[1200];
static char keydir[300];
static kf_proc nginx;
static uint16_t http_port;
static long v3_image_len; /* release 3.0.0 of deployee, in small chunks, behind the relay */

/* ---- a relay between keeld and nginx that can hold a transfer and drop connections ----
 * It counts the bytes it forwards from nginx; once relay_hold_at of them went through, it stops
 * forwarding (the download stalls mid-image, keeld still waiting) until relay_hold_at is -1.
 * relay_drops cuts that many responses short, at a random point. One connection at a time. */
static int relay_fd;
static uint16_t relay_port;
static atomic_long relay_bytes, relay_hold_at = -1;
static atomic_int relay_drops, relay_dropped;
static atomic_bool relay_held;
static unsigned relay_seed = 4242;

static void relay_one(int client)
{
    int server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(http_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(server, (struct sockaddr *)&a, sizeof a) != 0) {
        close(server);
        close(client);
        return;
    }
    long budget = -1;
    if (atomic_load(&relay_drops) > 0) {
        atomic_fetch_sub(&relay_drops, 1);
        budget = 1 + (long)(rand_r(&relay_seed) % 6000);
    }
    struct pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    char buf[4096];
    for (;;) {
        long hold = atomic_load(&relay_hold_at);
        bool stalled = hold >= 0 && atomic_load(&relay_bytes) >= hold;
        atomic_store(&relay_held, stalled);
        p[1].events = stalled ? 0 : POLLIN; /* while held, only notice the client leaving */
        int n = poll(p, 2, stalled ? 50 : 10000);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n == 0 && !stalled) {
            break;
        }
        if (p[0].revents) {
            ssize_t r = read(client, buf, sizeof buf);
            if (r <= 0 || write(server, buf, (size_t)r) != r) {
                break;
            }
        }
        if (!stalled && p[1].revents) {
            /* never past the hold point, so the stall lands where it was asked for */
            size_t want = sizeof buf;
            if (hold >= 0 && hold - atomic_load(&relay_bytes) < (long)want) {
                want = (size_t)(hold - atomic_load(&relay_bytes));
            }
            ssize_t r = read(server, buf, want);
            if (r <= 0) {
                break;
            }
            if (budget >= 0 && r >= budget) {
                (void)!write(client, buf, (size_t)budget);
                atomic_fetch_add(&relay_bytes, budget);
                atomic_fetch_add(&relay_dropped, 1);
                break; /* cut mid-response */
            }
            if (write(client, buf, (size_t)r) != r) {
                break;
            }
            atomic_fetch_add(&relay_bytes, r);
            if (budget >= 0) {
                budget -= r;
            }
        }
    }
    atomic_store(&relay_held, false);
    close(server);
    close(client);
}

static void *relay_main(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept4(relay_fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR) {
                continue;
            }
            return NULL;
        }
        relay_one(c);
    }
}

static int relay_start(void)
{
    relay_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    pthread_t t;
    if (bind(relay_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(relay_fd, (struct sockaddr *)&a, &al) != 0 || listen(relay_fd, 16) != 0 ||
        pthread_create(&t, NULL, relay_main, NULL) != 0) {
        return -1;
    }
    relay_port = ntohs(a.sin_port);
    pthread_detach(t);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        return 0; /* the tests skip themselves */
    }
    if (kb_init(&B, "keel", NULL) || kb_client(&B, "dev1") || kb_client(&B, "operator") ||
        kb_start(&B)) {
        return -1;
    }
    char cfg[600];
    if (kb_device_config(&B, "dev1", NULL, cfg, sizeof cfg) < 0) {
        return -1;
    }
    /* the "cloud" member of the file kb wrote, inside keeld's config */
    FILE *f = fopen(cfg, "r");
    static char text[2048];
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) {
        fclose(f);
    }
    text[n] = '\0';
    char *open = strchr(text, '{'), *close = strrchr(text, '}');
    if (!open || !close) {
        return -1;
    }
    *close = '\0';
    snprintf(sub_base, sizeof sub_base,
             "mosquitto_sub -h 127.0.0.1 -p %u --cafile %s/ca.pem --cert %s/operator.pem "
             "--key %s/operator.key -i keel-sv-op -c -q 1 -t 'keel/dev1/#'",
             B.port, B.dir, B.dir, B.dir);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "%s -E", sub_base); /* subscribe, keep the session, exit */
    if (system(cmd) != 0) {
        return -1;
    }
    snprintf(keydir, sizeof keydir, "%s", kf_tmpdir("sv-cloud-keys"));
    char pp[400], sp[400], extra[2600];
    keel_image_pubkey pub;
    keel_image_seckey sec;
    keel_image_error kerr;
    snprintf(pp, sizeof pp, "%s/dev.pub", keydir);
    snprintf(sp, sizeof sp, "%s/dev.sec", keydir);
    if (keel_image_keygen(&pub, &sec) != KEEL_IMAGE_OK ||
        keel_image_key_save(pp, sp, &pub, &sec, &kerr) != KEEL_IMAGE_OK) {
        return -1;
    }
    snprintf(extra, sizeof extra, "%s, \"trusted_keys\": [\"%s\"], \"hardware\": \"keel-gw\", "
             "\"method_timeout_ms\": 4000",
             open + 1, pp);
    if (sv_world_init(&W, "supervisor-cloud", extra) < 0) {
        return -1;
    }
    const char *st = sv_world_store(&W);
    if (sv_world_package(st, "reporter", "sv_sample",
                         "\"capabilities\": {\"cloud\": {\"telemetry\": true}}") < 0 ||
        sv_world_package(st, "crasher", "sv_evil", "\"args\": [\"abort\"], \"restart\": \"never\"") <
            0 ||
        sv_world_package(st, "methodist", "sv_sample",
                         "\"capabilities\": {\"cloud\": {\"methods\": true}}") < 0 ||
        sv_world_package(st, "mute", "sv_sample", "") < 0) {
        return -1;
    }
    /* release 2.0.0 of deployee, served by nginx as keel release make lays it out; 1.0.0 is
     * installed signed once keeld runs (a deployment goes into its update slots) */
    char pkgdir[600], site[600], cmd2[8192], v1dir[600];
    snprintf(pkgdir, sizeof pkgdir, "%s/v2", W.root);
    snprintf(v1dir, sizeof v1dir, "%s/v1", W.root);
    snprintf(site, sizeof site, "%s/site", W.root);
    if (mkdir(pkgdir, 0755) < 0 || mkdir(site, 0755) < 0 || mkdir(v1dir, 0755) < 0 ||
        sv_world_package_version(pkgdir, "deployee", "sv_sample", "2.0.0", "") < 0 ||
        sv_world_package_version(v1dir, "deployee", "sv_sample", "1.0.0", "") < 0) {
        return -1;
    }
    snprintf(cmd2, sizeof cmd2, "%s/bin/keel app pack --key %s %s/deployee %s/deployee.kpkg "
             ">/dev/null", kf_build_dir(), sp, v1dir, v1dir);
    if (system(cmd2) != 0) {
        return -1;
    }
    snprintf(cmd2, sizeof cmd2,
             "%s/bin/keel app pack --key %s %s/deployee %s/deployee.kpkg >/dev/null && "
             "%s/bin/keel release make --key %s --hardware keel-gw --out %s %s/deployee.kpkg "
             ">/dev/null",
             kf_build_dir(), sp, pkgdir, pkgdir, kf_build_dir(), sp, site, pkgdir);
    if (system(cmd2) != 0) {
        return -1;
    }
    /* the same package released for other hardware: a device must refuse it */
    snprintf(cmd2, sizeof cmd2,
             "mkdir -p %s/other && %s/bin/keel release make --key %s --hardware other-hw "
             "--serial 2 --out %s/other %s/deployee.kpkg >/dev/null",
             site, kf_build_dir(), sp, site, pkgdir);
    if (system(cmd2) != 0 || nginx_site_start(&nginx, W.root, site, &http_port) < 0) {
        return -1;
    }
    /* release 3.0.0 in 4 KiB chunks (a dozen or more), padded so the image spans many chunks */
    char v3dir[600];
    snprintf(v3dir, sizeof v3dir, "%s/v3", W.root);
    if (mkdir(v3dir, 0755) < 0 ||
        sv_world_package_version(v3dir, "deployee", "sv_sample", "3.0.0", "") < 0) {
        return -1;
    }
    snprintf(cmd2, sizeof cmd2,
             "head -c 200000 /dev/urandom > %s/deployee/padding.bin && "
             "%s/bin/keel app pack --key %s %s/deployee %s/deployee.kpkg >/dev/null && "
             "mkdir -p %s/v3 && %s/bin/keel release make --key %s --hardware keel-gw "
             "--chunk-size 4096 --serial 3 --out %s/v3 %s/deployee.kpkg >/dev/null",
             v3dir, kf_build_dir(), sp, v3dir, v3dir, site, kf_build_dir(), sp, site, v3dir);
    struct stat ist;
    char v3img[640];
    snprintf(v3img, sizeof v3img, "%s/deployee.kpkg", v3dir);
    if (system(cmd2) != 0 || stat(v3img, &ist) != 0 || relay_start() < 0) {
        return -1;
    }
    v3_image_len = (long)ist.st_size;
    /* releases 4.0.0 (its image held back at first: a network failure that heals) and 5.0.0
     * (one byte of its image changed after signing: a hash failure, final) */
    for (int v = 4; v <= 5; v++) {
        char vdir[600];
        snprintf(vdir, sizeof vdir, "%s/v%d", W.root, v);
        char ver[16];
        snprintf(ver, sizeof ver, "%d.0.0", v);
        if (mkdir(vdir, 0755) < 0 ||
            sv_world_package_version(vdir, "deployee", "sv_sample", ver, "") < 0) {
            return -1;
        }
        snprintf(cmd2, sizeof cmd2,
                 "%s/bin/keel app pack --key %s %s/deployee %s/deployee.kpkg >/dev/null && "
                 "mkdir -p %s/v%d && %s/bin/keel release make --key %s --hardware keel-gw "
                 "--chunk-size 4096 --serial %d --out %s/v%d %s/deployee.kpkg >/dev/null",
                 kf_build_dir(), sp, vdir, vdir, site, v, kf_build_dir(), sp, v, site, v, vdir);
        if (system(cmd2) != 0) {
            return -1;
        }
    }
    snprintf(cmd2, sizeof cmd2,
             "mkdir %s/v4-held && mv %s/v4/*.kimg %s/v4-held/ && "
             "printf 'X' | dd of=$(ls %s/v5/*.kimg) bs=1 seek=6000 conv=notrunc 2>/dev/null",
             W.root, site, W.root, site);
    if (system(cmd2) != 0) {
        return -1;
    }
    if (sv_world_start(&W) < 0) {
        return -1;
    }
    char req[800], out[1024];
    snprintf(req, sizeof req, "install %s/deployee.kpkg", v1dir);
    if (sv_world_ctl(&W, req, out, sizeof out) != 0 ||
        sv_world_ctl(&W, "start deployee", out, sizeof out) != 0) {
        fprintf(stderr, "installing deployee 1.0.0: %s\n", out);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        return 0;
    }
    kf_stop(&W.keeld, 5000);
    kb_stop(&B);
    return 0;
}

static void test_app_telemetry_and_crash_summary_reach_the_operator(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("skipped: the sandbox needs root\n");
        skip();
    }
    assert_true(sv_world_wait(&W, "logs reporter 50", "sample: telemetry KEEL_APP_OK", 10000));
    assert_true(sv_world_wait(&W, "crashes crasher 1", "SIGABRT", 10000));
    assert_int_equal(kf_wait_log(&W.keeld, "cloud: connected", 10000), 0);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "%s -C 2 -W 20 -v", sub_base);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    static char got[8192];
    size_t n = fread(got, 1, sizeof got - 1, p);
    got[n] = '\0';
    pclose(p);
    if (!strstr(got, "\"boot\":1") || !strstr(got, "keel_crash")) {
        kf_dump_log(&W.keeld, 40);
        fail_msg("operator got:\n%s", got);
    }
    assert_non_null(strstr(got, "\"app\":\"crasher\""));
    assert_non_null(strstr(got, "\"signal\":\"SIGABRT\""));
    assert_non_null(strstr(got, "keel/dev1/"));
}

/* `keel cloud deploy` of the release manifest at http://127.0.0.1:<http>/<dir>manifest.kman,
 * as the operator; the command's exit status. */
static int deploy(unsigned http, const char *dir)
{
    char cmd[2000];
    snprintf(cmd, sizeof cmd,
             "%s/bin/keel cloud deploy --manifest http://127.0.0.1:%u/%smanifest.kman "
             "--device dev1 --host 127.0.0.1 --port %u --ca %s/ca.pem --cert %s/operator.pem "
             "--key %s/operator.key >/dev/null 2>&1",
             kf_build_dir(), http, dir, B.port, B.dir, B.dir, B.dir);
    return system(cmd);
}

/* The operator watching dev1's reported properties: mosquitto_sub with the operator's
 * certificate, logging into the test's root (the fixture's tmpdirs are few) as sub-<n>.log. */
static int watch_reported(kf_proc *sub, const char *client_id, int n)
{
    char ca[400], cert[400], key[400], port[16], sublog[400];
    char topic[] = "keel/dev1/twin/PATCH/properties/reported/#";
    snprintf(ca, sizeof ca, "%s/ca.pem", B.dir);
    snprintf(cert, sizeof cert, "%s/operator.pem", B.dir);
    snprintf(key, sizeof key, "%s/operator.key", B.dir);
    snprintf(port, sizeof port, "%u", B.port);
    snprintf(sublog, sizeof sublog, "%s/sub-%d.log", W.root, n);
    char *argv[] = {"mosquitto_sub", "-h", "127.0.0.1", "-p", port, "--cafile", ca, "--cert",
                    cert, "--key", key, "-i", (char *)client_id, "-q", "1", "-t", topic, NULL};
    return kf_spawn(sub, "mosquitto_sub", argv, sublog);
}

static void test_cloud_deployment_installs_and_starts_the_new_version(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("skipped: the sandbox needs root\n");
        skip();
    }
    assert_true(sv_world_wait(&W, "list", "deployee 1.0.0 running", 10000));
    assert_int_equal(deploy(http_port, ""), 0);
    if (!sv_world_wait(&W, "list", "deployee 2.0.0 running", 20000)) {
        kf_dump_log(&W.keeld, 30);
        fail();
    }
    assert_true(sv_world_wait(&W, "logs deployee 50", "trial passed: health confirmed", 10000));
    assert_int_equal(kf_wait_log(&W.keeld, "manifest.kman: installed", 2000), 0);

    /* a release for another device's hardware is refused, and the app keeps running */
    assert_int_equal(deploy(http_port, "other/"), 0);
    assert_int_equal(kf_wait_log(&W.keeld, "refused: for hardware other-hw", 10000), 0);
    assert_true(sv_world_wait(&W, "list", "deployee 2.0.0 running", 2000));
}

/* The deployment downloads on its own thread (keeld answers meanwhile), survives dropped
 * connections and a keeld killed mid-download, and resumes from the chunk it had reached. */
static void test_deployment_resumes_after_drops_and_a_keeld_kill(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("skipped: the sandbox needs root\n");
        skip();
    }
    assert_true(sv_world_wait(&W, "list", "deployee 2.0.0 running", 10000));
    /* the operator watches the device's reported properties */
    kf_proc sub;
    assert_int_equal(watch_reported(&sub, "keel-sv-op-props", 0), 0);
    atomic_store(&relay_bytes, 0);
    atomic_store(&relay_hold_at, v3_image_len / 2); /* the manifest, then half the image */
    assert_int_equal(deploy(relay_port, "v3/"), 0);
    assert_int_equal(kf_wait_log(&W.keeld, "deployee: download started", 10000), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (atomic_load(&relay_held)) {
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (t1.tv_sec - t0.tv_sec > 30) {
            kf_dump_log(&W.keeld, 30);
            fail_msg("the download never reached the hold point (%ld bytes relayed)",
                     atomic_load(&relay_bytes));
        }
        assert_true(sv_world_wait(&W, "list", "deployee", 20)); /* keeld answers */
        struct timespec pause = {0, 20 * 1000000L};
        nanosleep(&pause, NULL); /* a poll interval, not a synchronisation */
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    print_message("hold point reached after %ld ms\n",
                  (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
    /* stalled mid-image: some chunks are stored; keeld and the app go on meanwhile */
    assert_int_equal(kf_wait_log(&W.keeld, " stored", 5000), 0);
    assert_true(sv_world_wait(&W, "list", "deployee 2.0.0 running", 200));
    assert_true(sv_world_wait(&W, "logs deployee 20", "sample: started", 200));

    /* SIGTERM mid-download: keeld cancels the download thread, joins it and exits promptly
     * (the relay holds the transfer: without the cancel the thread would wait on it) */
    assert_int_equal(kill(W.keeld.pid, SIGTERM), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_true(kf_wait_exit(&W.keeld, 10000) >= 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long exit_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    print_message("keeld exited %ld ms after SIGTERM mid-download\n", exit_ms);
    assert_int_equal(kf_wait_log(&W.keeld, "deploy: deployee: download stopped (cancelled)", 100),
                     0);
    assert_int_equal(kf_wait_log(&W.keeld, "exit", 100), 0);
    assert_true(exit_ms < 4000); /* the app's stop and one libcurl progress tick at most */

    /* it resumes at the next start, and is held again further on: then killed with -9 */
    long before = atomic_load(&relay_bytes);
    atomic_store(&relay_bytes, 0);
    atomic_store(&relay_hold_at, v3_image_len / 4);
    assert_int_equal(sv_world_start(&W), 0);
    assert_int_equal(kf_wait_log(&W.keeld, "deployee: resuming with ", 10000), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!atomic_load(&relay_held)) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        assert_true(t1.tv_sec - t0.tv_sec <= 30);
        assert_true(sv_world_wait(&W, "list", "deployee", 20)); /* keeld answers */
        struct timespec pause = {0, 20 * 1000000L};
        nanosleep(&pause, NULL); /* a poll interval, not a synchronisation */
    }
    assert_int_equal(kill(W.keeld.pid, SIGKILL), 0);
    assert_true(kf_wait_exit(&W.keeld, 5000) >= 0);
    before += atomic_load(&relay_bytes);
    atomic_store(&relay_bytes, 0);
    atomic_store(&relay_drops, 3); /* and the connection drops a few times on the way */
    atomic_store(&relay_hold_at, -1);
    assert_int_equal(sv_world_start(&W), 0);
    assert_int_equal(kf_wait_log(&W.keeld, "deployee: resuming with ", 10000), 0);
    if (kf_wait_log(&W.keeld, "deployee: version 3.0.0 confirmed healthy", 30000) != 0) {
        kf_dump_log(&W.keeld, 40);
        fail();
    }
    assert_true(sv_world_wait(&W, "list", "deployee 3.0.0 running", 5000));
    long after = atomic_load(&relay_bytes);
    print_message("image %ld bytes: %ld before the kill, %ld after (%d connections dropped)\n",
                  v3_image_len, before, after, atomic_load(&relay_dropped));
    assert_true(atomic_load(&relay_dropped) > 0);
    assert_true(after < v3_image_len * 2 / 3); /* resumed: not the whole image again */
    assert_true(before + after >= v3_image_len);
    /* progress and outcome reached the operator as reported properties */
    assert_int_equal(kf_wait_log(&sub, "\"state\":\"downloading\"", 10000), 0);
    char total[48]; /* 4 KiB chunks (keel release make --chunk-size 4096 above) */
    snprintf(total, sizeof total, "\"chunks_total\":%ld", (v3_image_len + 4095) / 4096);
    assert_int_equal(kf_wait_log(&sub, total, 1000), 0);
    assert_int_equal(kf_wait_log(&sub, "resuming with", 10000), 0);
    assert_int_equal(kf_wait_log(&sub, "deployee 3.0.0 started on trial", 10000), 0);
    kf_stop(&sub, 1000);
}

/* A deployment that fails for network reasons is tried again by keeld itself, with backoff,
 * reported as "retrying"; one whose image does not match its signed manifest is refused at
 * once and never retried. */
static void test_network_failure_is_retried_a_bad_hash_never(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("skipped: the sandbox needs root\n");
        skip();
    }
    assert_true(sv_world_wait(&W, "list", "deployee 3.0.0 running", 10000));
    char cmd[2400];
    kf_proc sub;
    assert_int_equal(watch_reported(&sub, "keel-sv-op-retry", 1), 0);

    /* 4.0.0's image is not on the server yet: the download fails, and is retried */
    assert_int_equal(deploy(http_port, "v4/"), 0);
    assert_int_equal(kf_wait_log(&W.keeld, "v4/manifest.kman: retrying: deployee:", 20000), 0);
    assert_true(sv_world_wait(&W, "status deployee", "deployment retrying attempt ", 5000));
    assert_int_equal(kf_wait_log(&sub, "\"state\":\"retrying\"", 10000), 0);
    assert_int_equal(kf_wait_log(&sub, "\"retry_in_ms\":", 1000), 0);
    /* a second failure: the pause grew (attempt 2) */
    assert_int_equal(kf_wait_log(&W.keeld, "attempt 2 of ", 10000), 0);
    assert_true(sv_world_wait(&W, "list", "deployee 3.0.0 running", 200)); /* untouched */
    /* the image appears: the next attempt, with no new announcement, installs it */
    snprintf(cmd, sizeof cmd, "mv %s/v4-held/*.kimg %s/site/v4/", W.root, W.root);
    assert_int_equal(system(cmd), 0);
    if (kf_wait_log(&W.keeld, "deployee: version 4.0.0 confirmed healthy", 30000) != 0) {
        kf_dump_log(&W.keeld, 40);
        fail();
    }
    assert_true(sv_world_wait(&W, "list", "deployee 4.0.0 running", 5000));
    assert_int_equal(kf_wait_log(&sub, "deployee 4.0.0 started on trial", 10000), 0);
    assert_true(sv_world_wait(&W, "status deployee", "deployment none", 5000));

    /* 5.0.0's image was changed after signing: a chunk fails its hash, final */
    assert_int_equal(deploy(http_port, "v5/"), 0);
    assert_int_equal(kf_wait_log(&W.keeld, "v5/manifest.kman: refused: deployee:", 20000), 0);
    assert_int_equal(kf_wait_log(&W.keeld, "KEEL_UPDATE_ERR_CHUNK", 100), 0);
    /* no retry comes, however long we look (a retry would be due within 1 s) */
    assert_false(sv_world_wait(&W, "status deployee", "deployment retrying", 2500));
    assert_int_not_equal(kf_wait_log(&W.keeld, "v5/manifest.kman: retrying", 10), 0);
    assert_true(sv_world_wait(&W, "list", "deployee 4.0.0 running", 1000));
    kf_stop(&sub, 1000);
}

/* `keel cloud call` as the operator: its output line into out, its exit code returned. */
static int cloud_call(const char *method, const char *body, char *out, size_t cap)
{
    char cmd[2000];
    snprintf(cmd, sizeof cmd,
             "%s/bin/keel cloud call --device dev1 --timeout 10 --host 127.0.0.1 --port %u "
             "--ca %s/ca.pem --cert %s/operator.pem --key %s/operator.key %s '%s' 2>&1",
             kf_build_dir(), B.port, B.dir, B.dir, B.dir, method, body);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_cloud_methods_reach_the_app_and_its_answer_returns(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("skipped: the sandbox needs root\n");
        skip();
    }
    assert_int_equal(kf_wait_log(&W.keeld, "cloud: connected", 10000), 0);
    assert_true(sv_world_wait(&W, "logs methodist 50", "sample: started", 10000));
    assert_true(sv_world_wait(&W, "logs mute 50", "sample: started", 10000));
    char out[4096];
    /* the app's own answer, body and status */
    int rc = cloud_call("methodist.echo", "{\"x\":42}", out, sizeof out);
    if (rc != 0 || !strstr(out, "200 {\"x\":42}")) {
        kf_dump_log(&W.keeld, 30);
        fail_msg("echo: rc %d: %s", rc, out);
    }
    assert_true(sv_world_wait(&W, "logs methodist 50", "method echo call", 2000));
    rc = cloud_call("methodist.nope", "{}", out, sizeof out);
    assert_int_equal(rc, 6);
    assert_non_null(strstr(out, "404 {\"error\":\"no such method\"}"));
    /* the app takes the call and never answers: keeld answers 504 after method_timeout_ms */
    rc = cloud_call("methodist.slow", "{}", out, sizeof out);
    assert_int_equal(rc, 6);
    assert_non_null(strstr(out, "504 "));
    /* keeld's own refusals */
    rc = cloud_call("ghost.echo", "{}", out, sizeof out);
    assert_int_equal(rc, 6);
    assert_non_null(strstr(out, "404 {\"error\":\"no such app\"}"));
    rc = cloud_call("echo", "{}", out, sizeof out);
    assert_int_equal(rc, 6);
    assert_non_null(strstr(out, "404 "));
    rc = cloud_call("mute.echo", "{}", out, sizeof out);
    assert_int_equal(rc, 6);
    assert_non_null(strstr(out, "403 "));
    assert_false(sv_world_wait(&W, "logs mute 50", "method", 200)); /* it never heard of it */
    /* the app still answers after a timed-out call */
    rc = cloud_call("methodist.echo", "[1,2]", out, sizeof out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "200 [1,2]"));
    /* the app ends with the call in hand: 503 at once, not a 504 later */
    rc = cloud_call("methodist.quit", "{}", out, sizeof out);
    assert_int_equal(rc, 6);
    assert_non_null(strstr(out, "503 {\"error\":\"the app stopped before answering\"}"));
    assert_true(sv_world_wait(&W, "list", "methodist 1.0.0 stopped", 5000));
    rc = cloud_call("methodist.echo", "{}", out, sizeof out); /* and while it is stopped */
    assert_int_equal(rc, 6);
    assert_non_null(strstr(out, "503 {\"error\":\"the app is not running\"}"));
}

/* How many "slow" calls methodist has logged taking, so far. */
static int slow_calls_seen(void)
{
    static char logs[65536];
    int n = 0;
    if (sv_world_ctl(&W, "logs methodist 200", logs, sizeof logs) == 0) {
        for (const char *p = logs; (p = strstr(p, "method slow call")); p++) {
            n++;
        }
    }
    return n;
}

/* A call the app took and keeld died before answering: the next keeld answers it 503 once
 * connected, and the caller hears that instead of timing out. */
static void test_call_pending_when_keeld_dies_is_answered_after_restart(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("skipped: the sandbox needs root\n");
        skip();
    }
    char out[4096];
    sv_world_ctl(&W, "start methodist", out, sizeof out); /* an earlier test stopped it */
    assert_true(sv_world_wait(&W, "list", "methodist 1.0.0 running", 10000));
    assert_int_equal(kf_wait_log(&W.keeld, "cloud: connected", 10000), 0);
    int before = slow_calls_seen();
    char cmd[2000];
    snprintf(cmd, sizeof cmd,
             "%s/bin/keel cloud call --device dev1 --timeout 20 --host 127.0.0.1 --port %u "
             "--ca %s/ca.pem --cert %s/operator.pem --key %s/operator.key methodist.slow '{}' "
             "2>&1; echo \"exit $?\"",
             kf_build_dir(), B.port, B.dir, B.dir, B.dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    /* the app has the call in hand (it never answers "slow"); keeld dies before its 504 */
    for (int i = 0; slow_calls_seen() == before; i++) {
        assert_true(i < 300);
        struct timespec pause = {0, 10 * 1000000L};
        nanosleep(&pause, NULL);
    }
    assert_int_equal(kill(W.keeld.pid, SIGKILL), 0);
    assert_true(kf_wait_exit(&W.keeld, 5000) >= 0);
    assert_int_equal(sv_world_start(&W), 0);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    pclose(p);
    if (!strstr(out, "503 {\"error\":\"supervisor restarted")) {
        kf_dump_log(&W.keeld, 20);
        fail_msg("the caller got: %s", out);
    }
    assert_non_null(strstr(out, "exit 6"));
    assert_int_equal(kf_wait_log(&W.keeld, "left open by the previous keeld answered 503", 2000),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_app_telemetry_and_crash_summary_reach_the_operator),
        cmocka_unit_test(test_cloud_deployment_installs_and_starts_the_new_version),
        cmocka_unit_test(test_cloud_methods_reach_the_app_and_its_answer_returns),
        cmocka_unit_test(test_deployment_resumes_after_drops_and_a_keeld_kill),
        cmocka_unit_test(test_network_failure_is_retried_a_bad_hash_never),
        cmocka_unit_test(test_call_pending_when_keeld_dies_is_answered_after_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* keeld against real apps in real sandboxes: one keeld, a store with the well-behaved sample
 * and the misbehaving suite (apps/evil.c). Each test asserts what keeld did (a report, a
 * restart, a refusal) and that keeld and the well-behaved app are still up.
 *
 * Namespaces, uid switches and cgroups need root: as another user the sandbox tests are
 * skipped with a message (keeld itself runs and says which protection is off). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <dirent.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keel/image.h"
#include "nginx_site.h"
#include "world.h"

static sv_world W;
static char out[65536];
static char keydir[256]; /* dev.pub/dev.sec (trusted by keeld), rogue.pub/rogue.sec (not) */
static kf_proc mosq, nginx;
static uint16_t mqtt_port, http_port;

/* A plain-MQTT mosquitto on loopback for the apps' tunnels (the cloud link has its own TLS
 * broker fixture; an app's tunnel carries whatever the app speaks). */
static int start_servers(void)
{
    const char *dir = kf_tmpdir("sv-servers");
    char conf[400], site[400], p[500];
    mqtt_port = kf_free_port();
    snprintf(conf, sizeof conf, "%s/mosquitto.conf", dir);
    FILE *f = fopen(conf, "w");
    if (!f) {
        return -1;
    }
    fprintf(f, "listener %u 127.0.0.1\nallow_anonymous true\nuser root\n", mqtt_port);
    fclose(f);
    char *argv[] = {"/usr/sbin/mosquitto", "-c", conf, NULL};
    if (kf_spawn(&mosq, "mosquitto", argv, NULL) != 0 || kf_wait_tcp(&mosq, mqtt_port, 10000)) {
        return -1;
    }
    snprintf(site, sizeof site, "%s/site", dir);
    snprintf(p, sizeof p, "%s/hello.txt", site);
    if (mkdir(site, 0755) < 0 || !(f = fopen(p, "w"))) {
        return -1;
    }
    fputs("served by nginx", f);
    fclose(f);
    return nginx_site_start(&nginx, dir, site, &http_port);
}

#define NEED_ROOT()                                                                              \
    do {                                                                                         \
        if (geteuid() != 0) {                                                                    \
            print_message("skipped: the sandbox needs root (namespaces, uids, cgroups)\n");     \
            skip();                                                                              \
        }                                                                                        \
    } while (0)

static void assert_keeld_up(void)
{
    assert_true(kf_running(&W.keeld));
    assert_int_equal(sv_world_ctl(&W, "list", out, sizeof out), 0);
    assert_non_null(strstr(out, "sample 1.0.0 running"));
}

static int setup(void **state)
{
    (void)state;
    snprintf(keydir, sizeof keydir, "%s", kf_tmpdir("sv-keys"));
    static const char *const names[] = {"dev", "rogue"};
    for (int i = 0; i < 2; i++) {
        keel_image_pubkey pub;
        keel_image_seckey sec;
        char pp[400], sp[400];
        keel_image_error err;
        snprintf(pp, sizeof pp, "%s/%s.pub", keydir, names[i]);
        snprintf(sp, sizeof sp, "%s/%s.sec", keydir, names[i]);
        if (keel_image_keygen(&pub, &sec) != KEEL_IMAGE_OK ||
            keel_image_key_save(pp, sp, &pub, &sec, &err) != KEEL_IMAGE_OK) {
            return -1;
        }
    }
    char extra[1024];
    snprintf(extra, sizeof extra,
             "\"max_crash_reports\": 3, \"backoff_initial_ms\": 10, \"backoff_max_ms\": 400, "
             "\"stop_grace_ms\": 1000, \"trusted_keys\": [\"%s/dev.pub\"]",
             keydir);
    if (start_servers() < 0) {
        return -1;
    }
    size_t el = strlen(extra);
    snprintf(extra + el, sizeof extra - el, ", \"broker\": \"127.0.0.1:%u\"", mqtt_port);
    if (sv_world_init(&W, "supervisor", extra) < 0) {
        return -1;
    }
    const char *st = sv_world_store(&W);
    char peek[1024];
    snprintf(peek, sizeof peek,
             "\"args\": [\"peek\", \"%s/data/other/boots\", \"/data/../other/boots\", "
             "\"/etc/shadow\", \"/proc/1/environ\", \"%s/device.json\"], \"restart\": \"never\"",
             W.state, W.root);
    char tun[600], tundeny[600];
    snprintf(tun, sizeof tun,
             "\"args\": [\"tunnel\", \"127.0.0.1:%u\", \"127.0.0.2:%u\"], \"restart\": \"never\", "
             "\"capabilities\": {\"cloud\": {\"mqtt\": true, \"http\": [\"127.0.0.1\"]}}",
             http_port, http_port);
    snprintf(tundeny, sizeof tundeny,
             "\"args\": [\"tunnel\", \"127.0.0.1:%u\"], \"restart\": \"never\"", http_port);
    /* pinger and ponger name each other; loner names ponger, who does not name it back */
    char ping[300], pong[300], lone[300], pinger_id[40], ponger_id[40], loner_id[40];
    snprintf(pinger_id, sizeof pinger_id, "%s", sv_world_id("pinger"));
    snprintf(ponger_id, sizeof ponger_id, "%s", sv_world_id("ponger00"));
    snprintf(loner_id, sizeof loner_id, "%s", sv_world_id("loner"));
    snprintf(ping, sizeof ping,
             "\"args\": [\"ping\", \"%s\"], \"capabilities\": {\"intercore\": [\"%s\"]}",
             ponger_id, ponger_id);
    snprintf(pong, sizeof pong,
             "\"args\": [\"pong\", \"%s\"], \"capabilities\": {\"intercore\": [\"%s\"]}",
             pinger_id, pinger_id);
    snprintf(lone, sizeof lone,
             "\"args\": [\"ping\", \"%s\"], \"capabilities\": {\"intercore\": [\"%s\"]}",
             ponger_id, ponger_id);
    (void)loner_id;
    /* rtping (an app) and rtpong (an RT loader, kind "rt") name each other */
    char rtping[300], rtpong[300], rtping_id[40], rtpong_id[40];
    snprintf(rtping_id, sizeof rtping_id, "%s", sv_world_id("rtping"));
    snprintf(rtpong_id, sizeof rtpong_id, "%s", sv_world_id("rtpong"));
    snprintf(rtping, sizeof rtping,
             "\"args\": [\"pingloop\", \"%s\"], \"capabilities\": {\"intercore\": [\"%s\"]}",
             rtpong_id, rtpong_id);
    snprintf(rtpong, sizeof rtpong,
             "\"args\": [\"rtpong\"], \"capabilities\": {\"intercore\": [\"%s\"]}",
             rtping_id);
    struct {
        const char *name, *exe, *json;
    } pkgs[] = {
        {"pinger", "sv_chat", ping},
        {"ponger00", "sv_chat", pong},
        {"loner", "sv_chat", lone},
        {"rtping", "sv_chat", rtping},
        {"rtpong", "sv_chat", rtpong},
        {"tunneler", "sv_evil", tun},
        {"walled", "sv_evil", tundeny},
        {"sample", "sv_sample", "\"heartbeat_ms\": 2000, \"capabilities\": {\"cloud\": "
                                "{\"telemetry\": true}}"},
        {"other", "sv_sample", ""},
        {"crashy", "sv_evil", "\"args\": [\"null\"]"},
        {"aborter", "sv_evil", "\"args\": [\"abort\"], \"restart\": \"never\""},
        {"looper", "sv_evil", "\"args\": [\"loop\"], \"heartbeat_ms\": 300, \"restart\": "
                              "\"never\""},
        {"forker", "sv_evil", "\"args\": [\"forkbomb\"], \"capabilities\": {\"limits\": {\"processes\": 6}}, "
                              "\"restart\": \"never\""},
        {"hog", "sv_evil", "\"args\": [\"memhog\"], \"capabilities\": {\"limits\": {\"memory_mb\": 32}}, "
                           "\"restart\": \"never\""},
        {"netter", "sv_evil", "\"args\": [\"socket\"], \"restart\": \"never\""},
        {"peeker", "sv_evil", peek},
        {"forger", "sv_evil", "\"args\": [\"forge\"], \"restart\": \"never\""},
        {"pointers", "sv_evil", "\"args\": [\"badptr\"], \"restart\": \"never\", "
                                "\"capabilities\": {\"cloud\": {\"properties\": true}}"},
    };
    for (size_t i = 0; i < sizeof pkgs / sizeof pkgs[0]; i++) {
        if (sv_world_package(st, pkgs[i].name, pkgs[i].exe, pkgs[i].json) < 0) {
            return -1;
        }
    }
    /* rtpong is an RT loader: same package, kind "rt" */
    char sedcmd[1200];
    snprintf(sedcmd, sizeof sedcmd,
             "sed -i 's/\"kind\": \"app\"/\"kind\": \"rt\"/' %s/rtpong/app_manifest.json", st);
    if (system(sedcmd) != 0) {
        return -1;
    }
    /* real-time firmware: the Cortex-M build under QEMU, loaded by a script in its package */
    char fw[600], cmd[2000];
    snprintf(fw, sizeof fw, "%s/build/fw/firmware/tests/hello/fw_hello.elf", kf_source_dir());
    if (access(fw, R_OK) == 0) {
        snprintf(cmd, sizeof cmd,
                 "mkdir -p %s/rtcore/bin && cp %s %s/rtcore/fw.elf && printf '%%s\\n' "
                 "'#!/bin/sh' 'exec qemu-system-arm -M mps2-an386 -nographic -monitor none "
                 "-serial stdio -kernel /app/fw.elf -semihosting-config enable=on,target=native' "
                 "> %s/rtcore/bin/run && chmod 755 %s/rtcore/bin/run && printf '%%s' "
                 "'{\"schema\":1,\"id\":\"00000000-0000-4000-8000-000000000777\",\"name\":"
                 "\"rtcore\",\"version\":\"1.0.0\",\"kind\":\"rt\",\"exec\":\"bin/run\","
                 "\"restart\":\"never\",\"capabilities\":{\"limits\":{\"memory_mb\":2048}}}' "
                 "> %s/rtcore/app_manifest.json",
                 st, fw, st, st, st, st);
        if (system(cmd) != 0) {
            return -1;
        }
    }
    if (sv_world_start(&W) < 0) {
        return -1;
    }
    if (!sv_world_wait(&W, "logs sample 50", "sample: started", 10000)) {
        kf_dump_log(&W.keeld, 60);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int st = kf_stop(&W.keeld, 5000);
    /* keeld exits 0 on SIGTERM after stopping its apps */
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        kf_dump_log(&W.keeld, 80);
        return -1;
    }
    return 0;
}

static void test_keeld_status_names_every_protection(void **state)
{
    (void)state;
    assert_int_equal(sv_world_ctl(&W, "status", out, sizeof out), 0);
    assert_non_null(strstr(out, "network namespace (no network): "));
    assert_non_null(strstr(out, "seccomp filter + no_new_privs: "));
    assert_non_null(strstr(out, "cgroup process limit: "));
    if (geteuid() == 0) {
        assert_non_null(strstr(out, "network namespace (no network): on"));
        assert_non_null(strstr(out, "private filesystem view (mount namespace + pivot_root): on"));
        assert_non_null(strstr(out, "own uid/gid per app: on"));
    }
}

static void test_sample_data_dir_telemetry_stdout_and_notification(void **state)
{
    (void)state;
    NEED_ROOT();
    assert_true(sv_world_wait(&W, "logs sample 50", "sample: started, boot 1, ring KEEL_APP_OK",
                              5000));
    assert_true(sv_world_wait(&W, "logs sample 50", "sample: telemetry KEEL_APP_OK", 5000));
    assert_true(sv_world_wait(&W, "logs sample 50", "out: sample: stdout works", 5000));
    /* "other" has no telemetry capability */
    assert_true(sv_world_wait(&W, "logs other 50", "telemetry KEEL_APP_ERR_DENIED", 5000));
    assert_int_equal(sv_world_ctl(&W, "notify sample 8 4242", out, sizeof out), 0);
    assert_true(sv_world_wait(&W, "logs sample 50", "notify type=8 seq=1 arg=4242", 5000));
    /* the telemetry went to the outbox, as written */
    char p[512];
    snprintf(p, sizeof p, "%s/outbox/sample.telemetry", W.state);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    char line[64] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "{\"boot\":1}\n");
    assert_keeld_up();
}

static void test_null_deref_symbolised_report_and_backoff_restarts(void **state)
{
    (void)state;
    NEED_ROOT();
    assert_true(sv_world_wait(&W, "crashes crashy 1", "SIGSEGV", 10000));
    assert_true(sv_world_wait(&W, "crashes crashy 1", "crash_null_deref+0x", 2000));
    sv_world_ctl(&W, "crashes crashy 1", out, sizeof out);
    assert_non_null(strstr(out, "reason: crashed"));
    assert_non_null(strstr(out, "fault address 0x0"));
    assert_non_null(strstr(out, "address not mapped"));
    assert_non_null(strstr(out, "rip "));
    assert_non_null(strstr(out, "main+0x"));
    assert_non_null(strstr(out, "app: evil: mode null"));
    /* restarted again and again, each time later: backoff 10, 20, 40 ... capped at 400 ms */
    assert_true(sv_world_wait(&W, "logs crashy 200", "restarting in 400 ms", 15000));
    assert_true(sv_world_wait(&W, "logs crashy 200", "restarting in 80 ms", 1000));
    assert_keeld_up();
}

static void test_crash_reports_keep_only_the_newest_n(void **state)
{
    (void)state;
    NEED_ROOT();
    /* max_crash_reports is 3; crashy has crashed more often than that by now */
    assert_true(sv_world_wait(&W, "logs crashy 200", "crash report 5", 15000));
    char dir[512];
    snprintf(dir, sizeof dir, "%s/crashes/crashy", W.state);
    DIR *dp = opendir(dir);
    assert_non_null(dp);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp))) {
        n += strstr(e->d_name, ".txt") != NULL;
    }
    closedir(dp);
    assert_in_range(n, 1, 3);
    assert_int_equal(sv_world_ctl(&W, "crashes crashy 10", out, sizeof out), 0);
    int reports = 0;
    for (const char *p = out; (p = strstr(p, "\nreason: ")); p++) {
        reports++;
    }
    assert_int_equal(reports, n);
    /* a crash-looping app is stopped by the operator, whatever state its backoff is in */
    assert_int_equal(sv_world_ctl(&W, "stop crashy", out, sizeof out), 0);
    assert_true(sv_world_wait(&W, "list", "crashy 1.0.0 stopped", 5000));
}

static void test_abort_reported_with_its_stack(void **state)
{
    (void)state;
    NEED_ROOT();
    assert_true(sv_world_wait(&W, "crashes aborter 1", "SIGABRT", 10000));
    sv_world_ctl(&W, "crashes aborter 1", out, sizeof out);
    assert_non_null(strstr(out, "raised by the app"));
    assert_non_null(strstr(out, "crash_abort+0x"));
    assert_non_null(strstr(out, "exit: killed by SIGABRT"));
    assert_true(sv_world_wait(&W, "list", "aborter 1.0.0 failed", 2000));
    assert_keeld_up();
}

static void test_infinite_loop_caught_by_heartbeat_with_stack(void **state)
{
    (void)state;
    NEED_ROOT();
    assert_true(sv_world_wait(&W, "crashes looper 1", "heartbeat missed", 15000));
    sv_world_ctl(&W, "crashes looper 1", out, sizeof out);
    if (!strstr(out, "spin_forever+0x")) {
        kf_dump_log(&W.keeld, 30);
        fail_msg("no stack of the loop in:\n%s", out);
    }
    assert_keeld_up();
}

/* Processes running as uid (from /proc). */
static int count_uid(unsigned uid)
{
    DIR *dp = opendir("/proc");
    int n = 0;
    struct dirent *e;
    while (dp && (e = readdir(dp))) {
        char p[300], line[256];
        if (e->d_name[0] < '0' || e->d_name[0] > '9') {
            continue;
        }
        snprintf(p, sizeof p, "/proc/%s/status", e->d_name);
        FILE *f = fopen(p, "r");
        if (!f) {
            continue;
        }
        while (fgets(line, sizeof line, f)) {
            unsigned r;
            if (sscanf(line, "Uid: %u", &r) == 1) {
                n += r == uid;
                break;
            }
        }
        fclose(f);
    }
    if (dp) {
        closedir(dp);
    }
    return n;
}

static void test_fork_bomb_contained_by_process_limit(void **state)
{
    (void)state;
    NEED_ROOT();
    assert_true(sv_world_wait(&W, "logs forker 50", "forkbomb: ", 10000));
    sv_world_ctl(&W, "logs forker 50", out, sizeof out);
    const char *p = strstr(out, "forkbomb: ");
    int forks = atoi(p + strlen("forkbomb: "));
    assert_in_range(forks, 1, 5); /* limit 6 processes, the app itself is one */
    assert_non_null(strstr(p, "then Resource temporarily unavailable"));
    /* the forker's uid: apps get base_uid + their index in name order */
    unsigned uid = W.base_uid + 3; /* aborter, crashy, forger, forker, ... */
    assert_in_range(count_uid(uid), 1, 6);
    assert_int_equal(sv_world_ctl(&W, "stop forker", out, sizeof out), 0);
    assert_true(sv_world_wait(&W, "list", "forker 1.0.0 stopped", 5000));
    /* every child went with it, wherever they were (SIGKILL is delivered asynchronously: the
     * last of them may still be on its way out) */
    int left = count_uid(uid);
    for (int waited = 0; left > 0 && waited < 5000; waited += 20) {
        poll(NULL, 0, 20);
        left = count_uid(uid);
    }
    assert_int_equal(left, 0);
    assert_keeld_up();
}

static void test_memory_hog_contained(void **state)
{
    (void)state;
    NEED_ROOT();
    assert_true(sv_world_wait(&W, "crashes hog 1", "app: hog", 20000));
    sv_world_ctl(&W, "crashes hog 1", out, sizeof out);
    /* either the cgroup's OOM killer or the address-space limit stops it, never the machine */
    assert_true(strstr(out, "memory limit reached") || strstr(out, "malloc refused") ||
                strstr(out, "SIGKILL"));
    assert_keeld_up();
}

static void test_socket_denied(void **state)
{
    (void)state;
    NEED_ROOT();
    assert_true(sv_world_wait(&W, "logs netter 50", "socket AF_NETLINK:", 10000));
    sv_world_ctl(&W, "logs netter 50", out, sizeof out);
    assert_non_null(strstr(out, "socket AF_INET: denied (Permission denied)"));
    assert_non_null(strstr(out, "socket AF_INET6: denied (Permission denied)"));
    assert_non_null(strstr(out, "socket AF_UNIX: denied (Permission denied)"));
    assert_null(strstr(out, "ALLOWED"));
}

static void test_other_apps_data_and_host_files_denied(void **state)
{
    (void)state;
    NEED_ROOT();
    assert_true(sv_world_wait(&W, "logs peeker 50", "evil: done", 10000));
    sv_world_ctl(&W, "logs peeker 50", out, sizeof out);
    assert_null(strstr(out, "READ"));
    int denied = 0;
    for (const char *p = out; (p = strstr(p, ": denied (")); p++) {
        denied++;
    }
    assert_int_equal(denied, 5);
}

static void test_forged_ring_and_messages_answered_with_status(void **state)
{
    (void)state;
    NEED_ROOT();
    assert_true(sv_world_wait(&W, "logs forger 50", "forge: tail corrupted; ready", 10000));
    sv_world_ctl(&W, "logs forger 50", out, sizeof out);
    assert_non_null(strstr(out, "ring at unmapped address -> KEEL_APP_ERR_BAD_POINTER"));
    assert_non_null(strstr(out, "misaligned ring -> KEEL_APP_ERR_INVALID_ARG"));
    assert_non_null(strstr(out, "ring without header -> KEEL_APP_ERR_INVALID_ARG"));
    assert_non_null(strstr(out, "unknown op -> KEEL_APP_ERR_UNSUPPORTED"));
    assert_non_null(strstr(out, "length beyond the message -> KEEL_APP_ERR_BAD_LENGTH"));
    assert_non_null(strstr(out, "real ring -> KEEL_APP_OK"));
    /* keeld refuses to write into the forged ring, and says so */
    assert_int_equal(sv_world_ctl(&W, "notify forger 8 1", out, sizeof out), 1);
    assert_int_equal(kf_wait_log(&W.keeld, "forger: notification ring rejected", 5000), 0);
    assert_keeld_up();
    assert_int_equal(sv_world_ctl(&W, "notify sample 8 77", out, sizeof out), 0);
    assert_true(sv_world_wait(&W, "logs sample 50", "arg=77", 5000));
}

static void test_bad_pointers_and_lengths_are_status_codes(void **state)
{
    (void)state;
    NEED_ROOT();
    assert_true(sv_world_wait(&W, "logs pointers 50", "badptr: alive", 10000));
    sv_world_ctl(&W, "logs pointers 50", out, sizeof out);
    static const char *const want[] = {
        "log(1) -> KEEL_APP_ERR_BAD_POINTER",
        "telemetry(NULL) -> KEEL_APP_ERR_BAD_POINTER",
        "telemetry(unmapped) -> KEEL_APP_ERR_BAD_POINTER",
        "log(1 MiB) -> KEEL_APP_ERR_BAD_LENGTH",
        "log(0) -> KEEL_APP_ERR_BAD_LENGTH",
        "desired(unmapped) -> KEEL_APP_ERR_BAD_POINTER",
        "desired(len unmapped) -> KEEL_APP_ERR_BAD_POINTER",
        "channel_open(unmapped) -> KEEL_APP_ERR_BAD_POINTER",
        "cloud_open(fd unmapped) -> KEEL_APP_ERR_BAD_POINTER",
        "serial_open(name unmapped) -> KEEL_APP_ERR_BAD_POINTER",
        "gpio_open(fd unmapped) -> KEEL_APP_ERR_BAD_POINTER",
        "serial_open(name too long) -> KEEL_APP_ERR_BAD_LENGTH",
        "notify_register(unmapped) -> KEEL_APP_ERR_BAD_POINTER",
        "notify_register(read-only) -> KEEL_APP_ERR_BAD_POINTER",
        "notify_take(no ring) -> KEEL_APP_ERR_NOT_FOUND",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (!strstr(out, want[i])) {
            fail_msg("missing '%s' in:\n%s", want[i], out);
        }
    }
    assert_int_equal(sv_world_ctl(&W, "list", out, sizeof out), 0);
    assert_non_null(strstr(out, "pointers 1.0.0 running"));
}

static void test_stop_start_install_via_control_socket(void **state)
{
    (void)state;
    NEED_ROOT();
    assert_int_equal(sv_world_ctl(&W, "stop other", out, sizeof out), 0);
    assert_true(sv_world_wait(&W, "list", "other 1.0.0 stopped", 5000));
    assert_int_equal(sv_world_ctl(&W, "start other", out, sizeof out), 0);
    assert_true(sv_world_wait(&W, "logs other 50", "boot 2", 5000));
    assert_int_equal(sv_world_ctl(&W, "start nosuch", out, sizeof out), 1);
    assert_non_null(strstr(out, "ERR notfound"));

    char pkgs[512];
    snprintf(pkgs, sizeof pkgs, "%s/incoming", W.root);
    assert_int_equal(mkdir(pkgs, 0755), 0);
    assert_int_equal(sv_world_package(pkgs, "newbie", "sv_sample", ""), 0);
    char req[900], cmd[2048];

    /* unsigned: refused by a production keeld */
    snprintf(req, sizeof req, "install %s/newbie", pkgs);
    assert_int_equal(sv_world_ctl(&W, req, out, sizeof out), 1);
    assert_non_null(strstr(out, "ERR verify"));
    assert_non_null(strstr(out, "unsigned"));

    /* signed with the trusted key: installed and runs */
    snprintf(cmd, sizeof cmd, "%s/bin/keel app pack --key %s/dev.sec %s/newbie %s/newbie.kpkg",
             kf_build_dir(), keydir, pkgs, pkgs);
    assert_int_equal(system(cmd), 0);
    snprintf(req, sizeof req, "install %s/newbie.kpkg", pkgs);
    assert_int_equal(sv_world_ctl(&W, req, out, sizeof out), 0);
    assert_non_null(strstr(out, "signature verified"));
    assert_int_equal(sv_world_ctl(&W, "start newbie", out, sizeof out), 0);
    assert_true(sv_world_wait(&W, "logs newbie 50", "sample: started", 5000));

    /* tampered: one byte of the payload flipped */
    char path[700];
    snprintf(path, sizeof path, "%s/newbie.kpkg", pkgs);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, 200, SEEK_SET), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, 200, SEEK_SET), 0);
    fputc(c ^ 0x40, f);
    fclose(f);
    assert_int_equal(sv_world_ctl(&W, "stop newbie", out, sizeof out), 0);
    assert_true(sv_world_wait(&W, "list", "newbie 1.0.0 stopped", 5000));
    assert_int_equal(sv_world_ctl(&W, req, out, sizeof out), 1);
    assert_non_null(strstr(out, "ERR verify"));
    assert_non_null(strstr(out, "KEEL_IMAGE_ERR_HASH"));

    /* signed, but by a key the device does not trust */
    snprintf(cmd, sizeof cmd, "%s/bin/keel app pack --key %s/rogue.sec %s/newbie %s/rogue.kpkg",
             kf_build_dir(), keydir, pkgs, pkgs);
    assert_int_equal(system(cmd), 0);
    snprintf(req, sizeof req, "install %s/rogue.kpkg", pkgs);
    assert_int_equal(sv_world_ctl(&W, req, out, sizeof out), 1);
    assert_non_null(strstr(out, "KEEL_IMAGE_ERR_UNKNOWN_KEY"));
    /* the refused installs changed nothing: the verified version is still there */
    assert_int_equal(sv_world_ctl(&W, "start newbie", out, sizeof out), 0);
    assert_true(sv_world_wait(&W, "logs newbie 50", "boot 2", 5000));

    /* a package whose manifest is wrong is refused, with where it is wrong */
    assert_int_equal(sv_world_package(pkgs, "broken", "sv_sample", "\"restart\": \"toaster\""), 0);
    snprintf(cmd, sizeof cmd,
             "%s/bin/keel app pack --key %s/dev.sec %s/broken %s/broken.kpkg 2>/dev/null",
             kf_build_dir(), keydir, pkgs, pkgs);
    assert_int_equal(WEXITSTATUS(system(cmd)), 5); /* keel app pack checks it first */
    assert_keeld_up();
}

static void test_app_mqtt_and_http_tunnelled_when_manifest_allows(void **state)
{
    (void)state;
    NEED_ROOT();
    assert_true(sv_world_wait(&W, "logs tunneler 50", "evil: done", 10000));
    sv_world_ctl(&W, "logs tunneler 50", out, sizeof out);
    assert_non_null(strstr(out, "tunnel: mqtt open -> KEEL_APP_OK"));
    assert_non_null(strstr(out, "tunnel: mqtt publish sent"));
    assert_non_null(strstr(out, "-> KEEL_APP_OK"));
    assert_non_null(strstr(out, "http status \"HTTP/1.1 200 OK\" body \"served by nginx\""));
    /* connect() on the tunnel: 0, no effect, the request above still reached nginx */
    assert_non_null(strstr(out, "tunnel: connect elsewhere -> 0, peer unchanged"));
    /* a host the manifest does not list */
    assert_non_null(strstr(out, "http open 127.0.0.2:"));
    assert_non_null(strstr(out, "-> KEEL_APP_ERR_DENIED"));
    /* the message reached the real broker: a subscriber gets the retained publish */
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mosquitto_sub -h 127.0.0.1 -p %u -t keel/tunnel -C 1 -W 5",
             mqtt_port);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[128] = "";
    char *got = fgets(line, sizeof line, p);
    pclose(p);
    assert_non_null(got);
    assert_string_equal(line, "hello from the sandbox\n");
}

static void test_app_tunnels_refused_without_capability(void **state)
{
    (void)state;
    NEED_ROOT();
    assert_true(sv_world_wait(&W, "logs walled 50", "evil: done", 10000));
    sv_world_ctl(&W, "logs walled 50", out, sizeof out);
    assert_non_null(strstr(out, "tunnel: mqtt open -> KEEL_APP_ERR_DENIED"));
    assert_non_null(strstr(out, "-> KEEL_APP_ERR_DENIED"));
    assert_null(strstr(out, "-> KEEL_APP_OK"));
    assert_null(strstr(out, "http status"));
}

static void test_realtime_firmware_runs_under_qemu_in_the_sandbox(void **state)
{
    (void)state;
    NEED_ROOT();
    char fw[600];
    snprintf(fw, sizeof fw, "%s/build/fw/firmware/tests/hello/fw_hello.elf", kf_source_dir());
    if (access(fw, R_OK) != 0) {
        print_message("skipped: %s missing (make fw)\n", fw);
        skip();
    }
    /* the firmware's UART is the component's log; its exit status is supervised */
    assert_true(sv_world_wait(&W, "logs rtcore 50", "out: keel: mps2-an386 booted", 20000));
    assert_true(sv_world_wait(&W, "logs rtcore 50", "out: PASS", 5000));
    assert_true(sv_world_wait(&W, "logs rtcore 50", "exited with status 0", 5000));
    assert_true(sv_world_wait(&W, "list", "rtcore 1.0.0 stopped", 2000));
}

static void test_partnered_apps_talk_over_a_paired_channel(void **state)
{
    (void)state;
    NEED_ROOT();
    assert_true(sv_world_wait(&W, "logs pinger 50", "chat: done", 15000));
    sv_world_ctl(&W, "logs pinger 50", out, sizeof out);
    assert_non_null(strstr(out, "chat: channel_open -> KEEL_APP_OK"));
    assert_non_null(strstr(out, "chat: icc open -> KEEL_ICC_OK"));
    assert_non_null(strstr(out, "chat: reply \"pong to ping 1\""));
    assert_non_null(strstr(out, "chat: reply \"pong to ping 3\""));
    assert_true(sv_world_wait(&W, "logs ponger00 50", "chat: served 3", 5000));
}

/* keeld pairs an app with an RT component when the RT loader starts, hands the loader its end
 * ($KEEL_RT_CHANNEL_FD) and the app its own (keel_app_channel_open); after the loader restarts
 * the app sees its peer gone, re-opens and is answered by the new loader. */
static void test_app_talks_to_rt_loader_and_reopens_after_its_restart(void **state)
{
    (void)state;
    NEED_ROOT();
    assert_true(sv_world_wait(&W, "logs rtping 50", "chat: done", 15000));
    sv_world_ctl(&W, "logs rtping 50", out, sizeof out);
    assert_non_null(strstr(out, "chat: icc open -> KEEL_ICC_OK"));
    assert_non_null(strstr(out, "chat: reply \"rt pong to ping 1\""));
    assert_non_null(strstr(out, "chat: reply \"rt pong to ping 3\""));
    assert_true(sv_world_wait(&W, "logs rtpong 50", "1 channel end handed to the RT loader", 2000));
    assert_true(sv_world_wait(&W, "logs rtpong 50", "chat: rt end -> KEEL_ICC_OK", 2000));
    assert_int_equal(sv_world_ctl(&W, "stop rtpong", out, sizeof out), 0);
    assert_true(sv_world_wait(&W, "list", "rtpong 1.0.0 stopped", 5000));
    assert_int_equal(sv_world_ctl(&W, "start rtpong", out, sizeof out), 0);
    assert_true(sv_world_wait(&W, "logs rtping 80", "chat: peer gone; re-opening", 10000));
    assert_true(sv_world_wait(&W, "logs rtping 80", "chat: reply after reopen \"rt pong to ping",
                              10000));
    /* the new loader instance answered: it logged its own first replies again */
    sv_world_ctl(&W, "logs rtpong 80", out, sizeof out);
    const char *second = strstr(out, "started rtpong");
    assert_non_null(second);
    assert_non_null(strstr(second + 1, "started rtpong"));
}

static void test_channel_refused_unless_both_manifests_name_each_other(void **state)
{
    (void)state;
    NEED_ROOT();
    /* loner names ponger00, ponger00 does not name loner */
    assert_true(sv_world_wait(&W, "logs loner 50", "chat: channel_open -> KEEL_APP_ERR_DENIED",
                              10000));
    sv_world_ctl(&W, "logs loner 50", out, sizeof out);
    assert_non_null(strstr(out, "does not name"));
    /* and an app whose own manifest names nobody */
    sv_world_ctl(&W, "logs pointers 50", out, sizeof out);
    assert_null(strstr(out, "chat:"));
}

/* Builds and signs a package with the trusted key; returns the image path. */
static const char *signed_package(const char *name, const char *exe, const char *version,
                                  const char *json)
{
    static char img[700];
    char dir[512], cmd[2048];
    snprintf(dir, sizeof dir, "%s/pkg-%s-%s", W.root, name, version);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(sv_world_package_version(dir, name, exe, version, json), 0);
    snprintf(img, sizeof img, "%s.kpkg", dir);
    snprintf(cmd, sizeof cmd, "%s/bin/keel app pack --key %s/dev.sec %s/%s %s >/dev/null",
             kf_build_dir(), keydir, dir, name, img);
    assert_int_equal(system(cmd), 0);
    return img;
}

static void test_update_that_crash_loops_reverts_to_previous_version(void **state)
{
    (void)state;
    NEED_ROOT();
    char req[800];
    snprintf(req, sizeof req, "install %s", signed_package("trialapp", "sv_sample", "1.0.0", ""));
    assert_int_equal(sv_world_ctl(&W, req, out, sizeof out), 0);
    assert_null(strstr(out, "on trial")); /* a first install has nothing to fall back to */
    assert_int_equal(sv_world_ctl(&W, "start trialapp", out, sizeof out), 0);
    assert_true(sv_world_wait(&W, "logs trialapp 50", "sample: started", 5000));
    assert_int_equal(sv_world_ctl(&W, "stop trialapp", out, sizeof out), 0);
    assert_true(sv_world_wait(&W, "list", "trialapp 1.0.0 stopped", 5000));

    /* version 2 dereferences NULL at start */
    snprintf(req, sizeof req, "install %s",
             signed_package("trialapp", "sv_evil", "2.0.0", "\"args\": [\"null\"]"));
    assert_int_equal(sv_world_ctl(&W, req, out, sizeof out), 0);
    assert_non_null(strstr(out, "on trial"));
    assert_int_equal(sv_world_ctl(&W, "start trialapp", out, sizeof out), 0);
    /* three crashes (device config trial_crashes, default 3), then 1.0.0 runs again */
    assert_true(sv_world_wait(&W, "logs trialapp 80", "trial of 2.0.0 failed", 10000));
    assert_true(sv_world_wait(&W, "logs trialapp 80", "reverted to 1.0.0", 1000));
    assert_true(sv_world_wait(&W, "list", "trialapp 1.0.0 running", 5000));
    assert_true(sv_world_wait(&W, "logs trialapp 80", "sample: started, boot 2", 5000));
    assert_int_equal(sv_world_ctl(&W, "crashes trialapp 1", out, sizeof out), 0);
    assert_non_null(strstr(out, "version: 2.0.0"));
    assert_non_null(strstr(out, "crash_null_deref"));

    /* a good update confirms its health and stays */
    assert_int_equal(sv_world_ctl(&W, "stop trialapp", out, sizeof out), 0);
    assert_true(sv_world_wait(&W, "list", "trialapp 1.0.0 stopped", 5000));
    snprintf(req, sizeof req, "install %s", signed_package("trialapp", "sv_sample", "3.0.0", ""));
    assert_int_equal(sv_world_ctl(&W, req, out, sizeof out), 0);
    assert_int_equal(sv_world_ctl(&W, "start trialapp", out, sizeof out), 0);
    assert_true(sv_world_wait(&W, "logs trialapp 80", "trial passed: health confirmed", 5000));
    assert_true(sv_world_wait(&W, "list", "trialapp 3.0.0 running", 2000));
    assert_keeld_up();
}

/* Runs `keel app ARGS --socket S`, captures stdout+stderr into out, returns the exit code. */
static int keel_app(const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/bin/keel app %s --socket %s 2>&1", kf_build_dir(), args,
             W.sock);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_keel_app_command(void **state)
{
    (void)state;
    NEED_ROOT();
    assert_int_equal(keel_app("list"), 0);
    assert_non_null(strstr(out, "NAME"));
    assert_non_null(strstr(out, "sample"));
    assert_non_null(strstr(out, "running"));
    assert_int_equal(keel_app("crashes crashy 2"), 0);
    assert_non_null(strstr(out, "crash_null_deref+0x"));
    assert_int_equal(keel_app("logs sample 5"), 0);
    assert_non_null(strstr(out, "sample"));
    assert_int_equal(keel_app("start nosuch"), 1);
    assert_non_null(strstr(out, "no app named 'nosuch'"));
    assert_int_equal(keel_app("stop"), 2);
    assert_int_equal(keel_app("status"), 0);
    assert_non_null(strstr(out, "seccomp"));
    char args[512];
    snprintf(args, sizeof args, "install %s/nonexistent", W.root);
    assert_int_equal(keel_app(args), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keeld_status_names_every_protection),
        cmocka_unit_test(test_sample_data_dir_telemetry_stdout_and_notification),
        cmocka_unit_test(test_null_deref_symbolised_report_and_backoff_restarts),
        cmocka_unit_test(test_crash_reports_keep_only_the_newest_n),
        cmocka_unit_test(test_abort_reported_with_its_stack),
        cmocka_unit_test(test_infinite_loop_caught_by_heartbeat_with_stack),
        cmocka_unit_test(test_fork_bomb_contained_by_process_limit),
        cmocka_unit_test(test_memory_hog_contained),
        cmocka_unit_test(test_socket_denied),
        cmocka_unit_test(test_other_apps_data_and_host_files_denied),
        cmocka_unit_test(test_forged_ring_and_messages_answered_with_status),
        cmocka_unit_test(test_bad_pointers_and_lengths_are_status_codes),
        cmocka_unit_test(test_stop_start_install_via_control_socket),
        cmocka_unit_test(test_keel_app_command),
        cmocka_unit_test(test_partnered_apps_talk_over_a_paired_channel),
        cmocka_unit_test(test_channel_refused_unless_both_manifests_name_each_other),
        cmocka_unit_test(test_app_talks_to_rt_loader_and_reopens_after_its_restart),
        cmocka_unit_test(test_realtime_firmware_runs_under_qemu_in_the_sandbox),
        cmocka_unit_test(test_app_mqtt_and_http_tunnelled_when_manifest_allows),
        cmocka_unit_test(test_app_tunnels_refused_without_capability),
        cmocka_unit_test(test_update_that_crash_loops_reverts_to_previous_version),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

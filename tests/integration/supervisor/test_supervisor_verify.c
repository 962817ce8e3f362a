/* keeld checks a package at every start, not only at install, and keeps an anti-rollback
 * floor per component: a package changed on disk after install (a file altered or added, the
 * kept signed image removed) does not run, and a signed package older than what the device
 * already ran (lower security counter) is refused, after a keeld restart too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keel/image.h"
#include "world.h"

static sv_world W;
static char keydir[300];
static char out[8192];

#define NEED_ROOT()                                                                              \
    do {                                                                                         \
        if (geteuid() != 0) {                                                                    \
            print_message("skipped: the sandbox needs root\n");                                 \
            skip();                                                                              \
        }                                                                                        \
    } while (0)

static int setup(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        return 0;
    }
    snprintf(keydir, sizeof keydir, "%s", kf_tmpdir("sv-verify-keys"));
    char pp[400], sp[400], extra[1000];
    keel_image_pubkey pub;
    keel_image_seckey sec;
    keel_image_error kerr;
    snprintf(pp, sizeof pp, "%s/dev.pub", keydir);
    snprintf(sp, sizeof sp, "%s/dev.sec", keydir);
    if (keel_image_keygen(&pub, &sec) != KEEL_IMAGE_OK ||
        keel_image_key_save(pp, sp, &pub, &sec, &kerr) != KEEL_IMAGE_OK) {
        return -1;
    }
    snprintf(extra, sizeof extra, "\"trusted_keys\": [\"%s\"]", pp);
    if (sv_world_init(&W, "supervisor-verify", extra) < 0) {
        return -1;
    }
    return sv_world_start(&W);
}

static int teardown(void **state)
{
    (void)state;
    if (geteuid() == 0) {
        kf_stop(&W.keeld, 5000);
    }
    return 0;
}

/* Builds and signs name@version with a security counter; returns the image path (one buffer
 * per call, kept for the test process's life). */
static const char *signed_package(const char *name, const char *version, unsigned counter)
{
    static char imgs[8][700];
    static int next;
    assert_true(next < 8);
    char *img = imgs[next++];
    char dir[512], cmd[2048];
    snprintf(dir, sizeof dir, "%s/pkg-%s-%s", W.root, name, version);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(sv_world_package_version(dir, name, "sv_sample", version, ""), 0);
    snprintf(img, sizeof imgs[0], "%s.kpkg", dir);
    snprintf(cmd, sizeof cmd,
             "%s/bin/keel app pack --key %s/dev.sec --counter %u %s/%s %s >/dev/null",
             kf_build_dir(), keydir, counter, dir, name, img);
    assert_int_equal(system(cmd), 0);
    return img;
}

static int ctl(const char *fmt, const char *arg)
{
    char req[1000];
    snprintf(req, sizeof req, fmt, arg);
    return sv_world_ctl(&W, req, out, sizeof out);
}

static void run_then_stop(const char *name, const char *version)
{
    char want[200];
    assert_int_equal(ctl("start %s", name), 0);
    snprintf(want, sizeof want, "%s %s running", name, version);
    assert_true(sv_world_wait(&W, "list", want, 5000));
    char logs[100];
    snprintf(logs, sizeof logs, "logs %s 50", name);
    assert_true(sv_world_wait(&W, logs, "sample: health confirmed", 5000));
    assert_int_equal(ctl("stop %s", name), 0);
    snprintf(want, sizeof want, "%s %s stopped", name, version);
    assert_true(sv_world_wait(&W, "list", want, 5000));
}

static void test_package_changed_on_disk_after_install_does_not_run(void **state)
{
    (void)state;
    NEED_ROOT();
    const char *img = signed_package("guard", "1.0.0", 1);
    assert_int_equal(ctl("install %s", img), 0);
    run_then_stop("guard", "1.0.0");

    /* one byte appended to the installed program */
    char path[900], cmd[2000];
    snprintf(path, sizeof path, "%s/guard/bin/sv_sample", sv_world_store(&W));
    FILE *f = fopen(path, "ab");
    assert_non_null(f);
    fputc(0x90, f);
    fclose(f);
    assert_int_equal(ctl("start %s", "guard"), 1);
    assert_non_null(strstr(out, "bin/sv_sample differs from the signed package"));
    assert_true(sv_world_wait(&W, "list", "guard 1.0.0 failed", 2000));
    assert_true(sv_world_wait(&W, "logs guard 20", "differs from the signed package", 2000));

    /* installing the signed package again repairs it */
    assert_int_equal(ctl("install %s", img), 0);
    run_then_stop("guard", "1.0.0");

    /* a file added next to the signed ones */
    snprintf(path, sizeof path, "%s/guard/bin/extra.so", sv_world_store(&W));
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("x", f);
    fclose(f);
    assert_int_equal(ctl("start %s", "guard"), 1);
    assert_non_null(strstr(out, "files added"));
    assert_int_equal(unlink(path), 0);
    run_then_stop("guard", "1.0.0"); /* as signed again: it runs */

    /* the manifest edited to ask for more */
    snprintf(cmd, sizeof cmd, "sed -i 's/\"exec\"/\"heartbeat_ms\": 0, \"exec\"/' %s/guard/app_manifest.json",
             sv_world_store(&W));
    assert_int_equal(system(cmd), 0);
    assert_int_equal(ctl("start %s", "guard"), 1);
    assert_non_null(strstr(out, "app_manifest.json differs"));

    /* the kept signed image removed, so nothing could be checked */
    if (ctl("install %s", img) != 0) {
        fail_msg("reinstall: %s", out);
    }
    snprintf(path, sizeof path, "%s/guard/.keel-image", sv_world_store(&W));
    assert_int_equal(unlink(path), 0);
    assert_int_equal(ctl("start %s", "guard"), 1);
    assert_non_null(strstr(out, "signed image"));
    assert_non_null(strstr(out, "is gone"));
    assert_true(kf_running(&W.keeld));
}

static void test_older_security_counter_refused_across_restart(void **state)
{
    (void)state;
    NEED_ROOT();
    const char *v2 = signed_package("roller", "2.0.0", 5);
    assert_int_equal(ctl("install %s", v2), 0);
    run_then_stop("roller", "2.0.0"); /* a first install, no trial: the floor goes to 5 */

    const char *v1 = signed_package("roller", "1.0.0", 4);
    assert_int_equal(ctl("install %s", v1), 1);
    assert_non_null(strstr(out, "security counter 4 is below this device's floor 5"));
    assert_true(sv_world_wait(&W, "list", "roller 2.0.0 stopped", 1000)); /* nothing lost */

    /* an update on trial raises the floor only once it confirms its health */
    const char *v3 = signed_package("roller", "3.0.0", 6);
    assert_int_equal(ctl("install %s", v3), 0);
    assert_non_null(strstr(out, "on trial"));
    assert_int_equal(ctl("start %s", "roller"), 0);
    assert_true(sv_world_wait(&W, "logs roller 50", "trial passed: health confirmed", 5000));
    assert_int_equal(ctl("stop %s", "roller"), 0);
    assert_true(sv_world_wait(&W, "list", "roller 3.0.0 stopped", 5000));

    /* the floor survives keeld */
    kf_stop(&W.keeld, 5000);
    assert_int_equal(sv_world_start(&W), 0);
    assert_true(sv_world_wait(&W, "list", "roller 3.0.0 running", 5000)); /* keeld starts it */
    assert_int_equal(ctl("stop %s", "roller"), 0);
    assert_true(sv_world_wait(&W, "list", "roller 3.0.0 stopped", 5000));
    if (ctl("install %s", v2) != 1) {
        kf_dump_log(&W.keeld, 60);
        fail_msg("%s", out);
    }
    assert_non_null(strstr(out, "security counter 5 is below this device's floor 6"));
    assert_int_equal(ctl("install %s", v1), 1);
    assert_non_null(strstr(out, "anti-rollback"));
    /* the same counter is no rollback */
    const char *v31 = signed_package("roller", "3.1.0", 6);
    assert_int_equal(ctl("install %s", v31), 0);
    assert_true(kf_running(&W.keeld));
}

/* One install past keeld's app limit is refused before anything is made for it: no update
 * slots on disk or in memory (keeld under ASan would report the leak at exit), no store
 * directory; the apps installed stay as they were. */
static void test_install_past_the_app_limit_leaves_nothing_behind(void **state)
{
    (void)state;
    NEED_ROOT();
    assert_int_equal(sv_world_ctl(&W, "list", out, sizeof out), 0);
    int have = strncmp(out, "OK\n", 3) == 0 ? -1 : 0; /* one line per app */
    for (const char *p = out; (p = strchr(p, '\n')); p++) {
        have++;
    }
    assert_true(have >= 1 && have < 32);
    /* fill keeld up to its limit (32) with signed apps, and make one more */
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd %s && for i in $(seq %d 32); do mkdir -p fill/f$i/bin && "
             "cp %s/tests/integration/supervisor/apps/sv_sample fill/f$i/bin/ && "
             "printf '{\"schema\": 1, \"kind\": \"app\", \"id\": "
             "\"00000000-0000-4000-8000-0000000f%%04d\", \"name\": \"f%%d\", "
             "\"version\": \"1.0.0\", \"exec\": \"bin/sv_sample\"}' $i $i "
             "> fill/f$i/app_manifest.json && "
             "%s/bin/keel app pack --key %s/dev.sec fill/f$i fill/f$i.kpkg >/dev/null || exit 1; "
             "done",
             W.root, have, kf_build_dir(), kf_build_dir(), keydir);
    assert_int_equal(system(cmd), 0);
    char req[800], path[800];
    for (int i = have + 1; i <= 32; i++) {
        snprintf(req, sizeof req, "install %s/fill/f%d.kpkg", W.root, i);
        if (sv_world_ctl(&W, req, out, sizeof out) != 0) {
            fail_msg("f%d: %s", i, out);
        }
    }
    snprintf(req, sizeof req, "install %s/fill/f%d.kpkg", W.root, have);
    assert_int_equal(sv_world_ctl(&W, req, out, sizeof out), 1);
    assert_non_null(strstr(out, "at most 32 apps"));
    snprintf(path, sizeof path, "%s/slots/f%d", W.state, have);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof path, "%s/f%d", sv_world_store(&W), have);
    assert_int_equal(access(path, F_OK), -1);
    assert_true(sv_world_wait(&W, "list", "f32 1.0.0 stopped", 1000));
    /* keeld exits cleanly, and (in the ASan tree) reports no leak */
    kf_stop(&W.keeld, 5000);
    assert_int_equal(kf_wait_log(&W.keeld, "keeld: exit", 1000), 0);
    FILE *f = fopen(W.keeld.log, "r");
    assert_non_null(f);
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "LeakSanitizer")) {
            kf_dump_log(&W.keeld, 30);
            fail_msg("keeld leaked");
        }
    }
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_package_changed_on_disk_after_install_does_not_run),
        cmocka_unit_test(test_older_security_counter_refused_across_restart),
        cmocka_unit_test(test_install_past_the_app_limit_leaves_nothing_behind),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* keel image and keel release as a user runs them: exit codes and messages for good and bad
 * input. argv[1] is the keel binary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "fixture.h"
#include "keel/image.h"

static const char *keel;
static char dir[512], out[8192];

/* Runs keel with the given arguments (NULL-terminated); returns the exit code, output in out. */
static int run(const char *first, ...)
{
    char *argv[24] = {(char *)keel};
    int n = 1;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 23; a = va_arg(ap, const char *)) {
        argv[n++] = (char *)a;
    }
    va_end(ap);
    argv[n] = NULL;
    char log[700];
    snprintf(log, sizeof log, "%s/out.log", dir);
    remove(log);
    static kf_proc p;
    assert_int_equal(kf_spawn(&p, "keel", argv, log), 0);
    int st = kf_wait_exit(&p, 30000);
    assert_true(st != -1 && WIFEXITED(st));
    FILE *f = fopen(log, "r");
    size_t got = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[got] = '\0';
    if (f) {
        fclose(f);
    }
    return WEXITSTATUS(st);
}

static char *path(const char *name)
{
    static char bufs[8][700];
    static int i;
    char *b = bufs[i++ % 8];
    snprintf(b, 700, "%s/%s", dir, name);
    return b;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s", kf_tmpdir("image-cli"));
    uint8_t payload[3000];
    for (size_t i = 0; i < sizeof payload; i++) {
        payload[i] = (uint8_t)i;
    }
    keel_image_error err;
    assert_int_equal(keel_image_write_file(path("app.bin"), payload, sizeof payload, &err),
                     KEEL_IMAGE_OK);
    assert_int_equal(run("image", "keygen", "--out", path("rel"), NULL), 0);
    assert_int_equal(run("image", "keygen", "--out", path("other"), NULL), 0);
    return 0;
}

static void test_image_sign_verify_inspect_ok(void **state)
{
    (void)state;
    assert_int_equal(run("image", "sign", "--key", path("rel.sec"), "--component",
                         "0c7e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b", "--version", "1.4.0", "--counter",
                         "3", path("app.bin"), path("app.kimg"), NULL),
                     0);
    assert_int_equal(run("image", "verify", "--key", path("rel.pub"), path("app.kimg"), NULL), 0);
    assert_non_null(strstr(out, "ok (version 1.4.0, counter 3)"));
    assert_int_equal(run("image", "inspect", path("app.kimg"), NULL), 0);
    assert_non_null(strstr(out, "0c7e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"));
    assert_non_null(strstr(out, "payload    3000 bytes"));
}

static void test_image_verify_wrong_key_exit_5(void **state)
{
    (void)state;
    assert_int_equal(run("image", "verify", "--key", path("other.pub"), path("app.kimg"), NULL), 5);
    assert_non_null(strstr(out, "not trusted"));
}

static void test_image_verify_not_an_image_exit_5(void **state)
{
    (void)state;
    assert_int_equal(run("image", "verify", "--key", path("rel.pub"), path("app.bin"), NULL), 5);
    assert_non_null(strstr(out, "bad magic"));
    assert_int_equal(run("image", "inspect", path("app.bin"), NULL), 5);
}

static void test_image_missing_file_exit_3(void **state)
{
    (void)state;
    assert_int_equal(run("image", "verify", "--key", path("rel.pub"), path("nope.kimg"), NULL), 3);
    assert_int_equal(run("image", "sign", "--key", path("nope.sec"), "--component",
                         "0c7e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b", "--version", "1.0.0",
                         path("app.bin"), path("x.kimg"), NULL),
                     3);
}

static void test_image_sign_bad_arguments_exit_2(void **state)
{
    (void)state;
    assert_int_equal(run("image", "sign", "--key", path("rel.sec"), "--component", "not-a-uuid",
                         "--version", "1.0.0", path("app.bin"), path("x.kimg"), NULL),
                     2);
    assert_non_null(strstr(out, "not a UUID"));
    assert_int_equal(run("image", "sign", "--key", path("rel.sec"), "--component",
                         "0c7e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b", "--version", "1.0", path("app.bin"),
                         path("x.kimg"), NULL),
                     2);
    /* A public key where a secret key belongs: a clear size message. */
    assert_int_equal(run("image", "sign", "--key", path("rel.pub"), "--component",
                         "0c7e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b", "--version", "1.0.0",
                         path("app.bin"), path("x.kimg"), NULL),
                     5);
    assert_non_null(strstr(out, "secret key file has 64"));
}

static void test_release_make_writes_verifiable_manifest(void **state)
{
    (void)state;
    assert_int_equal(run("release", "make", "--key", path("rel.sec"), "--hardware", "keel-gw-1",
                         "--chunk-size", "1024", "--out", path("site"), path("app.kimg"), NULL),
                     0);
    uint8_t *m;
    size_t len;
    keel_image_error err;
    assert_int_equal(keel_image_read_file(path("site/manifest.kman"), 1 << 20, &m, &len, &err),
                     KEEL_IMAGE_OK);
    keel_image_pubkey pub;
    assert_int_equal(keel_image_pubkey_load(path("rel.pub"), &pub, &err), KEEL_IMAGE_OK);
    keel_image_keys keys = {&pub, 1};
    keel_release man;
    assert_int_equal(keel_release_verify(m, len, &keys, &man, &err), KEEL_IMAGE_OK);
    assert_string_equal(man.hardware, "keel-gw-1");
    assert_string_equal(man.image_name, "1.4.0-3.kimg");
    assert_int_equal(man.chunk_count, 4);
    assert_int_equal(man.security_counter, 3);
    free(m);
    assert_int_equal(run("image", "verify", "--key", path("rel.pub"), path("site/1.4.0-3.kimg"),
                         NULL),
                     0);
}

static void test_release_make_bad_input_refused(void **state)
{
    (void)state;
    assert_int_equal(run("release", "make", "--key", path("rel.sec"), "--hardware", "hw",
                         "--chunk-size", "1000", "--out", path("s2"), path("app.kimg"), NULL),
                     2);
    assert_int_equal(run("release", "make", "--key", path("rel.sec"), "--hardware", "hw", "--out",
                         path("s2"), path("app.bin"), NULL),
                     5);
    assert_int_equal(run("release", "make", "--key", path("rel.sec"), "--hardware",
                         "a-hardware-name-longer-than-16", "--out", path("s2"), path("app.kimg"),
                         NULL),
                     2);
}

static void test_help_every_verb_exit_0(void **state)
{
    (void)state;
    const char *verbs[][2] = {{"image", "keygen"}, {"image", "sign"}, {"image", "verify"},
                              {"image", "inspect"}, {"release", "make"}};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(run(verbs[i][0], verbs[i][1], "--help", NULL), 0);
        assert_non_null(strstr(out, "usage: keel"));
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        return 2;
    }
    keel = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image_sign_verify_inspect_ok),
        cmocka_unit_test(test_image_verify_wrong_key_exit_5),
        cmocka_unit_test(test_image_verify_not_an_image_exit_5),
        cmocka_unit_test(test_image_missing_file_exit_3),
        cmocka_unit_test(test_image_sign_bad_arguments_exit_2),
        cmocka_unit_test(test_release_make_writes_verifiable_manifest),
        cmocka_unit_test(test_release_make_bad_input_refused),
        cmocka_unit_test(test_help_every_verb_exit_0),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}

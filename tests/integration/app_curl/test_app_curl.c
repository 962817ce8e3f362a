/* integration.app_curl: keel_app_curl (include/keel/app_curl.h) lends a connected socket to
 * libcurl, as an app does with a tunnel keeld opened, against a real nginx over TLS.
 *
 * Each transfer runs in a child process that first connects the "tunnel" itself (keeld's role)
 * and then loads a seccomp filter answering as keeld's does: socket() EACCES (curl cannot open
 * a connection of its own, so a success proves the tunnel carried it) and connect() 0 with no
 * effect (libcurl 7.88 calls it on the handed-over socket, curl#10626). Checked: an https GET
 * with the certificate verified against the CA given and the URL's name checked; a certificate
 * from another CA refused; a name the certificate does not carry refused although the tunnel
 * reaches the right server; the tunnel closed after each transfer (no fd leak); URLs other than
 * http(s) refused with the fd closed; keel_app_curl_target's "host:port".
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "keel/app_curl.h"
#include "nginx_site.h"

static kf_proc good, rogue;
static uint16_t good_port, rogue_port;
static char ca[600];

static int setup(void **state)
{
    (void)state;
    const char *work = kf_tmpdir("app_curl");
    char cmd[2000], site[600], path[700], gw[700], rw[700];
    snprintf(cmd, sizeof cmd,
             "%s/scripts/cloud-certs.sh %s/pki >/dev/null && "
             "%s/scripts/cloud-certs.sh %s/rogue --ca-name rogue-ca >/dev/null",
             kf_source_dir(), work, kf_source_dir(), work);
    if (system(cmd) != 0) {
        return -1;
    }
    snprintf(ca, sizeof ca, "%s/pki/ca.pem", work);
    snprintf(site, sizeof site, "%s/site", work);
    mkdir(site, 0755);
    snprintf(path, sizeof path, "%s/hello.txt", site);
    FILE *f = fopen(path, "w");
    if (!f) {
        return -1;
    }
    fputs("hello through the tunnel\n", f);
    fclose(f);
    snprintf(gw, sizeof gw, "%s/good", work);
    snprintf(rw, sizeof rw, "%s/rogue-nginx", work);
    mkdir(gw, 0755);
    mkdir(rw, 0755);
    char cert[700], key[700], rcert[700], rkey[700];
    snprintf(cert, sizeof cert, "%s/pki/server.pem", work);
    snprintf(key, sizeof key, "%s/pki/server.key", work);
    snprintf(rcert, sizeof rcert, "%s/rogue/server.pem", work);
    snprintf(rkey, sizeof rkey, "%s/rogue/server.key", work);
    if (nginx_site_start_tls(&good, gw, site, cert, key, &good_port) != 0 ||
        nginx_site_start_tls(&rogue, rw, site, rcert, rkey, &rogue_port) != 0) {
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kf_stop(&good, 2000);
    kf_stop(&rogue, 2000);
    return 0;
}

typedef struct result {
    int curl_rc;      /* CURLcode, or -1 if the child could not get that far */
    int attach_st;    /* keel_app_status of keel_app_curl_attach */
    int fd_open;      /* the tunnel still open after cleanup + release (a leak) */
    int socket_errno; /* what socket() gave under the filter: EACCES expected */
    size_t len;
    char body[256];
} result;

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    result *r = arg;
    size_t add = size * n;
    size_t room = sizeof r->body - 1 - r->len;
    memcpy(r->body + r->len, p, add < room ? add : room);
    r->len += add < room ? add : room;
    return add;
}

/* keeld's answers to socket() and connect(), everything else allowed */
static int keeld_like_filter(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    int rc = !ctx ? -1 : seccomp_rule_add(ctx, SCMP_ACT_ERRNO(0), SCMP_SYS(connect), 0);
    if (rc == 0) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 0);
    }
    if (rc == 0) {
        rc = seccomp_load(ctx);
    }
    seccomp_release(ctx);
    return rc;
}

/* GET url over a socket connected to 127.0.0.1:port, in a child under keeld_like_filter. */
static result fetch(const char *url, uint16_t port, const char *cafile)
{
    result r = {.curl_rc = -1, .attach_st = -1};
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons(port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
            keeld_like_filter() == 0) {
            int probe = socket(AF_INET, SOCK_STREAM, 0);
            r.socket_errno = probe < 0 ? errno : 0;
            CURL *c = curl_easy_init();
            keel_app_curl t;
            r.attach_st = (int)keel_app_curl_attach(&t, c, url, fd);
            curl_easy_setopt(c, CURLOPT_CAINFO, cafile);
            curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
            curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
            curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
            curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
            if (r.attach_st == KEEL_APP_OK) {
                r.curl_rc = (int)curl_easy_perform(c);
            }
            curl_easy_cleanup(c);
            keel_app_curl_release(&t);
            r.fd_open = fcntl(fd, F_GETFD) != -1;
        }
        ssize_t w = write(p[1], &r, sizeof r);
        _exit(w == (ssize_t)sizeof r ? 0 : 1);
    }
    close(p[1]);
    ssize_t got = read(p[0], &r, sizeof r);
    close(p[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(got, (ssize_t)sizeof r);
    return r;
}

static void test_https_over_a_handed_over_socket(void **state)
{
    (void)state;
    char url[200];
    snprintf(url, sizeof url, "https://localhost:%u/hello.txt", good_port);
    result r = fetch(url, good_port, ca);
    assert_int_equal(r.socket_errno, EACCES); /* curl had no way out but the tunnel */
    assert_int_equal(r.attach_st, KEEL_APP_OK);
    assert_int_equal(r.curl_rc, CURLE_OK);
    assert_string_equal(r.body, "hello through the tunnel\n");
    assert_false(r.fd_open);
}

static void test_certificate_from_another_ca_refused(void **state)
{
    (void)state;
    char url[200];
    snprintf(url, sizeof url, "https://localhost:%u/hello.txt", rogue_port);
    result r = fetch(url, rogue_port, ca);
    assert_int_equal(r.attach_st, KEEL_APP_OK);
    assert_int_equal(r.curl_rc, CURLE_PEER_FAILED_VERIFICATION);
    assert_int_equal(r.len, 0);
    assert_false(r.fd_open);
}

static void test_name_the_certificate_lacks_refused(void **state)
{
    (void)state;
    /* the tunnel reaches the right server (127.0.0.1), but the URL names 127.0.0.2, which the
     * certificate does not carry: the name checked is the URL's */
    char url[200];
    snprintf(url, sizeof url, "https://127.0.0.2:%u/hello.txt", good_port);
    result r = fetch(url, good_port, ca);
    assert_int_equal(r.attach_st, KEEL_APP_OK);
    assert_int_equal(r.curl_rc, CURLE_PEER_FAILED_VERIFICATION);
    assert_int_equal(r.len, 0);
    assert_false(r.fd_open);
}

static void test_other_schemes_refused_and_fd_closed(void **state)
{
    (void)state;
    result r = fetch("ftp://localhost/hello.txt", good_port, ca);
    assert_int_equal(r.attach_st, KEEL_APP_ERR_INVALID_ARG);
    assert_int_equal(r.curl_rc, -1);
    assert_false(r.fd_open);
}

static void test_target(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(keel_app_curl_target("https://updates.example.com/fw.kimg", out, sizeof out),
                     KEEL_APP_OK);
    assert_string_equal(out, "updates.example.com:443");
    assert_int_equal(keel_app_curl_target("http://10.0.0.7/x", out, sizeof out), KEEL_APP_OK);
    assert_string_equal(out, "10.0.0.7:80");
    assert_int_equal(keel_app_curl_target("http://[::1]:8080/x", out, sizeof out), KEEL_APP_OK);
    assert_string_equal(out, "[::1]:8080");
    assert_int_equal(keel_app_curl_target("ftp://host/x", out, sizeof out),
                     KEEL_APP_ERR_INVALID_ARG);
    assert_int_equal(keel_app_curl_target("not a url", out, sizeof out), KEEL_APP_ERR_INVALID_ARG);
    assert_int_equal(keel_app_curl_target("https://updates.example.com/", out, 8),
                     KEEL_APP_ERR_NO_SPACE);
    assert_int_equal(keel_app_curl_target(NULL, out, sizeof out), KEEL_APP_ERR_INVALID_ARG);
    keel_app_curl t;
    assert_int_equal(keel_app_curl_attach(&t, NULL, "https://h/", -1), KEEL_APP_ERR_INVALID_ARG);
    keel_app_curl_release(&t);
    keel_app_curl_release(&t); /* twice is safe */
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_target),
        cmocka_unit_test(test_https_over_a_handed_over_socket),
        cmocka_unit_test(test_certificate_from_another_ca_refused),
        cmocka_unit_test(test_name_the_certificate_lacks_refused),
        cmocka_unit_test(test_other_schemes_refused_and_fd_closed),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    kf_cleanup();
    return rc;
}

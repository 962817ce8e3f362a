/* The HTTP response head parser the gateway uses over keeld's tunnel: a normal nginx head,
 * heads arriving in pieces, error statuses, and the heads it must refuse (chunked bodies,
 * conflicting or malformed lengths, folded lines, oversized heads, not HTTP at all). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "http_head.h"

static http_head_err parse(const char *s, http_head *h)
{
    return http_head_parse(s, strlen(s), h);
}

static void test_nginx_head(void **state)
{
    (void)state;
    const char *r = "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: "
                    "application/octet-stream\r\ncontent-length: 60216\r\nConnection: close\r\n"
                    "\r\nBODY";
    http_head h;
    assert_int_equal(parse(r, &h), HTTP_HEAD_OK);
    assert_int_equal(h.status, 200);
    assert_true(h.has_length);
    assert_int_equal(h.content_length, 60216);
    assert_int_equal(h.head_len, strlen(r) - 4);
    assert_memory_equal(r + h.head_len, "BODY", 4);
}

static void test_head_in_pieces(void **state)
{
    (void)state;
    const char *r = "HTTP/1.0 404 Not Found\nContent-Length: 5\n\nnope!";
    http_head h;
    size_t head = strlen(r) - 5;
    for (size_t n = 0; n < head; n++) {
        assert_int_equal(http_head_parse(r, n, &h), HTTP_HEAD_AGAIN);
    }
    assert_int_equal(http_head_parse(r, head, &h), HTTP_HEAD_OK);
    assert_int_equal(h.status, 404);
    assert_int_equal(h.content_length, 5);
}

static void test_no_length_means_until_the_end(void **state)
{
    (void)state;
    http_head h;
    assert_int_equal(parse("HTTP/1.1 200\r\n\r\n", &h), HTTP_HEAD_OK);
    assert_false(h.has_length);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n", &h),
                     HTTP_HEAD_OK);
}

static void test_refusals(void **state)
{
    (void)state;
    http_head h;
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &h),
                     HTTP_HEAD_ERR_CHUNKED);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", &h),
                     HTTP_HEAD_ERR_SYNTAX);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", &h),
                     HTTP_HEAD_OK);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", &h),
                     HTTP_HEAD_ERR_SYNTAX);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", &h),
                     HTTP_HEAD_ERR_SYNTAX);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", &h), HTTP_HEAD_ERR_SYNTAX);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", &h), HTTP_HEAD_ERR_SYNTAX);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nno colon\r\n\r\n", &h), HTTP_HEAD_ERR_SYNTAX);
    assert_int_equal(parse("HTTP/2 200\r\n\r\n", &h), HTTP_HEAD_ERR_SYNTAX);
    assert_int_equal(parse("HTTP/1.1 600 Nope\r\n\r\n", &h), HTTP_HEAD_ERR_SYNTAX);
    assert_int_equal(parse("SSH-2.0-OpenSSH_9.2\r\n\r\n", &h), HTTP_HEAD_ERR_SYNTAX);
    static char big[HTTP_HEAD_MAX + 100];
    memset(big, 'a', sizeof big);
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    assert_int_equal(http_head_parse(big, sizeof big, &h), HTTP_HEAD_ERR_TOO_BIG);
}

static void test_request_line(void **state)
{
    (void)state;
    char out[256];
    size_t n = http_get_request("127.0.0.1:8080", "/fw/1.2.0.kimg?x=1", out, sizeof out);
    assert_true(n > 0);
    assert_string_equal(out,
                        "GET /fw/1.2.0.kimg?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
                        "User-Agent: keel-gateway\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    /* a path or host that would split the request is refused, not sent */
    assert_int_equal(http_get_request("h", "/a b", out, sizeof out), 0);
    assert_int_equal(http_get_request("h\r\nX: y", "/", out, sizeof out), 0);
    assert_int_equal(http_get_request("h", "nopath", out, sizeof out), 0);
    assert_int_equal(http_get_request("h", "/", out, 10), 0);
    assert_string_equal(http_head_err_name(HTTP_HEAD_ERR_CHUNKED), "HTTP_HEAD_ERR_CHUNKED");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nginx_head),
        cmocka_unit_test(test_head_in_pieces),
        cmocka_unit_test(test_no_length_means_until_the_end),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_request_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

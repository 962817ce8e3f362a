/* HTTP/1.x response heads; see http_head.h. Lines end in CRLF (a bare LF is accepted, as
 * servers in the wild send it); header names are case-insensitive; a Content-Length given
 * twice with different values, or with anything but digits, is a syntax error (a smuggling
 * guard rather than a guess). */
#include "http_head.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *http_head_err_name(http_head_err e)
{
    static const char *const names[HTTP_HEAD_ERR_COUNT] = {
        [HTTP_HEAD_OK] = "HTTP_HEAD_OK",
        [HTTP_HEAD_AGAIN] = "HTTP_HEAD_AGAIN",
        [HTTP_HEAD_ERR_SYNTAX] = "HTTP_HEAD_ERR_SYNTAX",
        [HTTP_HEAD_ERR_TOO_BIG] = "HTTP_HEAD_ERR_TOO_BIG",
        [HTTP_HEAD_ERR_CHUNKED] = "HTTP_HEAD_ERR_CHUNKED",
    };
    return (unsigned)e < HTTP_HEAD_ERR_COUNT ? names[e] : "HTTP_HEAD_ERR_UNKNOWN";
}

/* The end of the head: the index after the blank line, or 0 if not there yet. */
static size_t head_end(const char *b, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (b[i] != '\n') {
            continue;
        }
        if (i + 1 < len && b[i + 1] == '\n') {
            return i + 2;
        }
        if (i + 2 < len && b[i + 1] == '\r' && b[i + 2] == '\n') {
            return i + 3;
        }
    }
    return 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

http_head_err http_head_parse(const char *buf, size_t len, http_head *out)
{
    size_t end = head_end(buf, len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX);
    if (end == 0) {
        return len >= HTTP_HEAD_MAX ? HTTP_HEAD_ERR_TOO_BIG : HTTP_HEAD_AGAIN;
    }
    http_head h = {.head_len = end};
    /* status line: HTTP/1.x SP ddd [SP reason] */
    if (end < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') ||
        buf[8] != ' ' || buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' ||
        buf[11] < '0' || buf[11] > '9' || (buf[12] != ' ' && buf[12] != '\r' && buf[12] != '\n')) {
        return HTTP_HEAD_ERR_SYNTAX;
    }
    h.status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    size_t p = 12;
    while (p < end && buf[p] != '\n') {
        p++;
    }
    p++; /* the first header line */
    while (p < end) {
        size_t e = p;
        while (e < end && buf[e] != '\n') {
            e++;
        }
        size_t l = e; /* line without CR LF */
        if (l > p && buf[l - 1] == '\r') {
            l--;
        }
        if (l == p) {
            break; /* the blank line */
        }
        const char *colon = memchr(buf + p, ':', l - p);
        if (!colon || colon == buf + p || is_space(buf[p])) {
            return HTTP_HEAD_ERR_SYNTAX; /* no name, or an obsolete folded line */
        }
        size_t name_len = (size_t)(colon - (buf + p));
        size_t v = (size_t)(colon - buf) + 1;
        while (v < l && is_space(buf[v])) {
            v++;
        }
        size_t ve = l;
        while (ve > v && is_space(buf[ve - 1])) {
            ve--;
        }
        if (name_len == 14 && strncasecmp(buf + p, "Content-Length", 14) == 0) {
            if (ve == v || ve - v > 19) {
                return HTTP_HEAD_ERR_SYNTAX;
            }
            uint64_t n = 0;
            for (size_t i = v; i < ve; i++) {
                if (buf[i] < '0' || buf[i] > '9') {
                    return HTTP_HEAD_ERR_SYNTAX;
                }
                n = n * 10u + (uint64_t)(buf[i] - '0');
            }
            if (h.has_length && h.content_length != n) {
                return HTTP_HEAD_ERR_SYNTAX;
            }
            h.has_length = true;
            h.content_length = n;
        } else if (name_len == 17 && strncasecmp(buf + p, "Transfer-Encoding", 17) == 0) {
            if (!(ve - v == 8 && strncasecmp(buf + v, "identity", 8) == 0)) {
                return HTTP_HEAD_ERR_CHUNKED;
            }
        }
        p = e + 1;
    }
    *out = h;
    return HTTP_HEAD_OK;
}

static bool clean(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s <= ' ' || *s == 0x7f) {
            return false;
        }
    }
    return true;
}

size_t http_get_request(const char *host, const char *path, char *out, size_t cap)
{
    if (!clean(host) || !clean(path) || path[0] != '/') {
        return 0;
    }
    int n = snprintf(out, cap,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: keel-gateway\r\n"
                     "Accept: */*\r\nConnection: close\r\n\r\n",
                     path, host);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

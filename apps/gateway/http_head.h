/* The head of an HTTP/1.x response, parsed without I/O (fuzzed): what the gateway needs to
 * take an image over keeld's http tunnel without libcurl (libcurl 7.88 calls connect() on a
 * socket it is handed even when told it is connected, curl/curl#10626, and keeld's seccomp
 * allow list traps connect: an app's sockets all come from keeld). Status code, and how the
 * body ends: Content-Length, or the end of the stream. Chunked bodies are refused: the image
 * servers Keel talks to (nginx, object stores) send a length for a static file. */
#ifndef KEEL_GATEWAY_HTTP_HEAD_H
#define KEEL_GATEWAY_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum http_head_err {
    HTTP_HEAD_OK = 0,
    HTTP_HEAD_AGAIN,       /* the head is not complete yet: read more */
    HTTP_HEAD_ERR_SYNTAX,  /* not an HTTP/1.x response head */
    HTTP_HEAD_ERR_TOO_BIG, /* the head is over HTTP_HEAD_MAX bytes */
    HTTP_HEAD_ERR_CHUNKED, /* a chunked (or otherwise encoded) body */
    HTTP_HEAD_ERR_COUNT
} http_head_err;

#define HTTP_HEAD_MAX 8192u

const char *http_head_err_name(http_head_err e);

typedef struct http_head {
    int status;      /* 100..599 */
    bool has_length; /* Content-Length was given */
    uint64_t content_length;
    size_t head_len; /* bytes of the head, including the blank line */
} http_head;

/* Parses the response head at the start of buf (len bytes read so far). */
http_head_err http_head_parse(const char *buf, size_t len, http_head *out);

/* Writes "GET path HTTP/1.1" with Host and Connection: close into out; 0 if it does not fit
 * or host/path hold characters a request line cannot carry. */
size_t http_get_request(const char *host, const char *path, char *out, size_t cap);

#endif

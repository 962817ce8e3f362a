/* Fuzzes the HTTP response head parser with what a server (or whoever is behind keeld's
 * tunnel) could send: a parsed head must lie inside the input and have a real status; a
 * complete head stays the same when more bytes follow it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    http_head h, again;
    http_head_err e = http_head_parse((const char *)data, size, &h);
    if (e == HTTP_HEAD_OK) {
        if (h.head_len > size || h.head_len > HTTP_HEAD_MAX || h.status < 100 || h.status > 599) {
            abort();
        }
        /* a body after the head never changes what the head said */
        char *more = malloc(size + 16);
        if (!more) {
            return 0;
        }
        memcpy(more, data, size);
        memcpy(more + size, "0123456789abcdef", 16);
        if (http_head_parse(more, size + 16, &again) != HTTP_HEAD_OK || again.status != h.status ||
            again.head_len != h.head_len || again.has_length != h.has_length ||
            again.content_length != h.content_length) {
            abort();
        }
        free(more);
    } else if ((unsigned)e >= HTTP_HEAD_ERR_COUNT) {
        abort();
    }
    return 0;
}

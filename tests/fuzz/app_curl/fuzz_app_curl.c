/* fuzz.app_curl: any bytes as a URL to keel_app_curl_target and keel_app_curl_attach.
 * Invariants: target is OK only with a "host:port" that fits, and then attach accepts the URL
 * too; attach never leaves the fd open after release, whatever the URL. */
#include <assert.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keel/app_curl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static CURL *c;
    if (!c) {
        c = curl_easy_init();
    }
    char *url = malloc(size + 1);
    if (!url || !c) {
        free(url);
        return 0;
    }
    memcpy(url, data, size);
    url[size] = '\0';
    char out[300];
    size_t cap = size > 0 ? 1 + data[0] % sizeof out : sizeof out;
    keel_app_status st = keel_app_curl_target(url, out, cap);
    assert(st == KEEL_APP_OK || st == KEEL_APP_ERR_INVALID_ARG || st == KEEL_APP_ERR_NO_SPACE);
    if (st == KEEL_APP_OK) {
        assert(strlen(out) < cap && strrchr(out, ':') != NULL);
    }
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert(fd >= 0);
    keel_app_curl t;
    keel_app_status at = keel_app_curl_attach(&t, c, url, fd);
    if (st == KEEL_APP_OK) {
        assert(at == KEEL_APP_OK);
    }
    curl_easy_reset(c); /* drops the callbacks pointing at t */
    keel_app_curl_release(&t);
    assert(fcntl(fd, F_GETFD) == -1); /* closed, by attach's refusal or by release */
    free(url);
    return 0;
}

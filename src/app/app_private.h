/* libkeel internals shared by its files: the handle, the call primitive, safe copies and the
 * crash handler. */
#ifndef KEEL_APP_PRIVATE_H
#define KEEL_APP_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "keel/app.h"

struct keel_app {
    int fd;           /* the socket to keeld; 0 when the handle is closed */
    uint32_t seq;
    char name[64];
    keel_app_ring *ring; /* the registered notification ring, or NULL */
    int wake_fd;
};

/* Sends op with the payload parts (at most 3) and waits for the answer; the answer's payload
 * goes to out (cap bytes), its length to *out_len, an fd it carries to *out_fd. */
keel_app_status keel_app_call(keel_app *app, uint16_t op, const struct iovec *parts, int nparts,
                              void *out, size_t cap, size_t *out_len, int *out_fd);
/* memcpy that reports an unmapped src or dst as false instead of faulting. */
bool keel_app_copy_safe(void *dst, const void *src, size_t n);

void keel_app_crash_install(keel_app *app);
void keel_app_crash_uninstall(void);

#endif

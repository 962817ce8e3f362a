/* The app's side of the notification ring (keel/app.h): the app lends keeld a piece of its own
 * memory; keeld appends 16-byte records and bumps `head`, the app consumes and bumps `tail`.
 * keeld keeps its own copy of head and trusts nothing it reads back from the app, so all the
 * checks here protect the app from itself only. */
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "app_private.h"
#include "wire.h"

keel_app_status keel_app_notify_register(keel_app *app, void *mem, size_t size, int *wake_fd)
{
    if (!app || app->fd <= 0) {
        return KEEL_APP_ERR_NOT_CONNECTED;
    }
    if (!mem || !wake_fd) {
        return KEEL_APP_ERR_BAD_POINTER;
    }
    if (((uintptr_t)mem & 7u) != 0) {
        return KEEL_APP_ERR_INVALID_ARG; /* the header's words must be naturally aligned */
    }
    if (size < sizeof(keel_app_ring) + 2 * sizeof(keel_app_notification) ||
        size > (64u << 20)) {
        return KEEL_APP_ERR_BAD_LENGTH;
    }
    uint32_t cap = 1;
    while ((size_t)cap * 2 * sizeof(keel_app_notification) <= size - sizeof(keel_app_ring)) {
        cap *= 2;
    }
    keel_app_ring hdr = {KEEL_APP_RING_MAGIC, cap, 0, 0};
    /* Writing the header through the kernel both initialises the ring and proves the memory
     * is the app's and writable; then the records' last byte, for the end of the range. */
    uint8_t zero = 0;
    if (!keel_app_copy_safe(mem, &hdr, sizeof hdr) ||
        !keel_app_copy_safe((uint8_t *)mem + sizeof hdr + (size_t)cap * 16 - 1, &zero, 1)) {
        return KEEL_APP_ERR_BAD_POINTER;
    }
    keel_wire_ring r = {(uint64_t)(uintptr_t)mem, sizeof hdr + (size_t)cap * 16};
    struct iovec part = {&r, sizeof r};
    int fd = -1;
    keel_app_status st =
        keel_app_call(app, KEEL_WIRE_NOTIFY_REGISTER, &part, 1, NULL, 0, NULL, &fd);
    if (st != KEEL_APP_OK) {
        return st;
    }
    if (!keel_app_copy_safe(wake_fd, &fd, sizeof fd)) {
        close(fd);
        return KEEL_APP_ERR_BAD_POINTER;
    }
    if (app->wake_fd >= 0) {
        close(app->wake_fd);
    }
    app->ring = mem;
    app->wake_fd = fd;
    return KEEL_APP_OK;
}

keel_app_status keel_app_notify_take(keel_app *app, keel_app_notification *out, size_t max,
                                     size_t *n)
{
    if (!app || app->fd <= 0) {
        return KEEL_APP_ERR_NOT_CONNECTED;
    }
    if (!app->ring) {
        return KEEL_APP_ERR_NOT_FOUND;
    }
    if (!out || !n) {
        return KEEL_APP_ERR_BAD_POINTER;
    }
    if (app->wake_fd >= 0) {
        uint64_t v;
        /* Clear the wake-up before reading head: a record that lands after this read raises
         * it again, so none is left unannounced. */
        ssize_t ignored = read(app->wake_fd, &v, sizeof v);
        (void)ignored;
    }
    keel_app_ring *r = app->ring;
    uint32_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
    uint32_t tail = __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
    uint32_t cap = r->capacity;
    if (r->magic != KEEL_APP_RING_MAGIC || cap == 0 || (cap & (cap - 1)) != 0 ||
        head - tail > cap) {
        return KEEL_APP_ERR_FORGED;
    }
    keel_app_notification *recs = (keel_app_notification *)(r + 1);
    size_t got = 0;
    while (got < max && tail != head) {
        if (!keel_app_copy_safe(&out[got], &recs[tail & (cap - 1)], sizeof *out)) {
            return KEEL_APP_ERR_BAD_POINTER;
        }
        got++;
        tail++;
    }
    __atomic_store_n(&r->tail, tail, __ATOMIC_RELEASE);
    if (!keel_app_copy_safe(n, &got, sizeof got)) {
        return KEEL_APP_ERR_BAD_POINTER;
    }
    return KEEL_APP_OK;
}

/* The file backend of the update storage: one file per area in a directory.
 *
 * Files can be overwritten in place, so erase is a no-op; durability is fdatasync per area,
 * which is what the agent's ordering relies on. The files are created at their full size
 * once, so a slot's blocks are allocated up front and a full disk shows at provisioning, not
 * halfway through an update ("bounded disk use": an update never needs more than the slots).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "update_priv.h"

static const char *const area_names[KEEL_UPDATE_AREA_COUNT] = {"slot-a", "slot-b", "manifest",
                                                                "state"};

struct file_store {
    int fd[KEEL_UPDATE_AREA_COUNT];
};

static int fs_read(void *ctx, keel_update_area a, uint32_t off, void *buf, uint32_t len)
{
    struct file_store *fs = ctx;
    uint32_t done = 0;
    while (done < len) {
        ssize_t n = pread(fs->fd[a], (uint8_t *)buf + done, len - done, (off_t)off + done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        done += (uint32_t)n;
    }
    return 0;
}

static int fs_write(void *ctx, keel_update_area a, uint32_t off, const void *buf, uint32_t len)
{
    struct file_store *fs = ctx;
    uint32_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fs->fd[a], (const uint8_t *)buf + done, len - done, (off_t)off + done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        done += (uint32_t)n;
    }
    return 0;
}

static int fs_erase(void *ctx, keel_update_area a, uint32_t off, uint32_t len)
{
    (void)ctx, (void)a, (void)off, (void)len;
    return 0;
}

static int fs_sync(void *ctx, keel_update_area a)
{
    struct file_store *fs = ctx;
    return fdatasync(fs->fd[a]);
}

void keel_update_file_slot_path(const char *dir, int slot, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", dir, area_names[slot ? KEEL_UPDATE_SLOT_B : KEEL_UPDATE_SLOT_A]);
}

keel_update_err keel_update_file_storage_open(const char *dir, uint32_t slot_size,
                                              keel_update_storage *out, keel_update_error *err)
{
    /* Files have no erase blocks; 256 only sets the unit chunk sizes must be a multiple of,
     * the same unit `keel release make` enforces. */
    const uint32_t erase = 256;
    if (!dir || !out || slot_size == 0 || slot_size % erase != 0) {
        return ku_fail(err, KEEL_UPDATE_ERR_ARG, "slot size must be a positive multiple of %u",
                       erase);
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        return ku_fail(err, KEEL_UPDATE_ERR_STORAGE, "%s: %s", dir, strerror(errno));
    }
    struct file_store *fs = calloc(1, sizeof *fs);
    if (!fs) {
        return ku_fail(err, KEEL_UPDATE_ERR_STORAGE, "out of memory");
    }
    memset(out, 0, sizeof *out);
    out->size[KEEL_UPDATE_SLOT_A] = out->size[KEEL_UPDATE_SLOT_B] = slot_size;
    out->size[KEEL_UPDATE_AREA_MANIFEST] =
        (keel_release_size(KEEL_RELEASE_MAX_CHUNKS) + erase - 1) / erase * erase;
    out->size[KEEL_UPDATE_AREA_STATE] = 2 * ((KU_RECORD_SIZE + erase - 1) / erase * erase);
    for (int i = 0; i < KEEL_UPDATE_AREA_COUNT; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, area_names[i]);
        fs->fd[i] = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        struct stat st;
        if (fs->fd[i] < 0 || fstat(fs->fd[i], &st) != 0 ||
            ((uint64_t)st.st_size < out->size[i] &&
             posix_fallocate(fs->fd[i], 0, out->size[i]) != 0)) {
            int e = errno;
            for (int j = 0; j <= i; j++) {
                if (fs->fd[j] >= 0) {
                    close(fs->fd[j]);
                }
            }
            free(fs);
            return ku_fail(err, KEEL_UPDATE_ERR_STORAGE, "%s: %s", path, strerror(e));
        }
    }
    /* The files' names must survive a power cut too, not only their contents. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    out->ctx = fs;
    out->read = fs_read;
    out->write = fs_write;
    out->erase = fs_erase;
    out->sync = fs_sync;
    out->erase_size = erase;
    out->write_size = 1;
    return KEEL_UPDATE_OK;
}

void keel_update_file_storage_close(keel_update_storage *s)
{
    struct file_store *fs = s ? s->ctx : NULL;
    if (!fs) {
        return;
    }
    for (int i = 0; i < KEEL_UPDATE_AREA_COUNT; i++) {
        close(fs->fd[i]);
    }
    free(fs);
    s->ctx = NULL;
}

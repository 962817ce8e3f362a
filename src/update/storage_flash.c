/* A model of NOR flash for the simulator, the sensors and the power-cut tests.
 *
 * It enforces what real flash enforces: erase in blocks, program in units of the write size,
 * program only erased bytes. And it models power loss the way the tests need it: each area
 * keeps its current contents and its durable contents; sync() makes the current contents
 * durable; a cut throws away everything since the last sync, in every area, not only the
 * operation it lands on. Operations are counted so a test can cut before any one of them.
 * A second mode, TORN, models the other half of the truth about flash: what was programmed or
 * erased is physically there, synced or not, and the operation the cut lands on is left half
 * done (half the bytes written, half the block erased). The sweep runs both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "update_priv.h"

struct keel_update_flash {
    keel_update_flash_geometry g;
    uint32_t size[KEEL_UPDATE_AREA_COUNT];
    uint8_t *cur[KEEL_UPDATE_AREA_COUNT];
    uint8_t *dur[KEEL_UPDATE_AREA_COUNT];
    uint32_t dirty_lo[KEEL_UPDATE_AREA_COUNT], dirty_hi[KEEL_UPDATE_AREA_COUNT];
    uint64_t ops, cut_at;
    keel_update_cut_mode mode;
    bool powered;
};

keel_update_flash *keel_update_flash_create(const keel_update_flash_geometry *g)
{
    keel_update_flash *f = calloc(1, sizeof *f);
    if (!f) {
        return NULL;
    }
    f->g = *g;
    f->size[KEEL_UPDATE_SLOT_A] = f->size[KEEL_UPDATE_SLOT_B] = g->slot_size;
    f->size[KEEL_UPDATE_AREA_MANIFEST] = g->manifest_size;
    uint32_t stride = (KU_RECORD_SIZE + g->erase_size - 1) / g->erase_size * g->erase_size;
    f->size[KEEL_UPDATE_AREA_STATE] = 2 * stride;
    for (int i = 0; i < KEEL_UPDATE_AREA_COUNT; i++) {
        f->cur[i] = malloc(f->size[i]);
        f->dur[i] = malloc(f->size[i]);
        if (!f->cur[i] || !f->dur[i]) {
            keel_update_flash_destroy(f);
            return NULL;
        }
        memset(f->cur[i], 0xff, f->size[i]);
        memset(f->dur[i], 0xff, f->size[i]);
        f->dirty_lo[i] = UINT32_MAX;
    }
    f->powered = true;
    return f;
}

void keel_update_flash_destroy(keel_update_flash *f)
{
    if (!f) {
        return;
    }
    for (int i = 0; i < KEEL_UPDATE_AREA_COUNT; i++) {
        free(f->cur[i]);
        free(f->dur[i]);
    }
    free(f);
}

static void power_loss(keel_update_flash *f)
{
    for (int i = 0; i < KEEL_UPDATE_AREA_COUNT; i++) {
        if (f->dirty_lo[i] != UINT32_MAX) {
            memcpy(f->cur[i] + f->dirty_lo[i], f->dur[i] + f->dirty_lo[i],
                   f->dirty_hi[i] - f->dirty_lo[i]);
            f->dirty_lo[i] = UINT32_MAX;
            f->dirty_hi[i] = 0;
        }
    }
    f->powered = false;
}

/* The torn mode's cut: everything done so far reached the chip, sync or not. */
static void power_loss_keep(keel_update_flash *f)
{
    for (int i = 0; i < KEEL_UPDATE_AREA_COUNT; i++) {
        if (f->dirty_lo[i] != UINT32_MAX) {
            memcpy(f->dur[i] + f->dirty_lo[i], f->cur[i] + f->dirty_lo[i],
                   f->dirty_hi[i] - f->dirty_lo[i]);
            f->dirty_lo[i] = UINT32_MAX;
            f->dirty_hi[i] = 0;
        }
    }
    f->powered = false;
}

/* Counts an operation. Returns 1 to carry it out, 0 if power is off, -1 if the cut lands on
 * it: in LOSE mode the power is already gone; in TORN mode the caller applies the first half
 * of the operation and then calls power_loss_keep. */
static int op(keel_update_flash *f)
{
    if (!f->powered) {
        return 0;
    }
    f->ops++;
    if (f->cut_at && f->ops == f->cut_at) {
        if (f->mode == KEEL_UPDATE_CUT_LOSE) {
            power_loss(f);
            return 0;
        }
        return -1;
    }
    return 1;
}

static bool in_area(const keel_update_flash *f, keel_update_area a, uint32_t off, uint32_t len)
{
    return (unsigned)a < KEEL_UPDATE_AREA_COUNT && off <= f->size[a] && len <= f->size[a] - off;
}

static void mark(keel_update_flash *f, keel_update_area a, uint32_t off, uint32_t len)
{
    if (off < f->dirty_lo[a]) {
        f->dirty_lo[a] = off;
    }
    if (off + len > f->dirty_hi[a]) {
        f->dirty_hi[a] = off + len;
    }
}

static int fl_read(void *ctx, keel_update_area a, uint32_t off, void *buf, uint32_t len)
{
    keel_update_flash *f = ctx;
    if (!f->powered || !in_area(f, a, off, len)) {
        return -1;
    }
    memcpy(buf, f->cur[a] + off, len);
    return 0;
}

static int fl_write(void *ctx, keel_update_area a, uint32_t off, const void *buf, uint32_t len)
{
    keel_update_flash *f = ctx;
    int go = op(f);
    if (!go || !in_area(f, a, off, len) || off % f->g.write_size || len % f->g.write_size) {
        return -1;
    }
    for (uint32_t i = 0; i < len; i++) {
        if (f->cur[a][off + i] != 0xff) {
            return -1; /* programming a byte that was not erased */
        }
    }
    if (go < 0) {
        uint32_t half = len / 2 / f->g.write_size * f->g.write_size;
        memcpy(f->cur[a] + off, buf, half);
        mark(f, a, off, half ? half : 1);
        power_loss_keep(f);
        return -1;
    }
    memcpy(f->cur[a] + off, buf, len);
    mark(f, a, off, len);
    return 0;
}

static int fl_erase(void *ctx, keel_update_area a, uint32_t off, uint32_t len)
{
    keel_update_flash *f = ctx;
    int go = op(f);
    if (!go || !in_area(f, a, off, len) || off % f->g.erase_size || len % f->g.erase_size) {
        return -1;
    }
    if (go < 0) {
        /* A torn erase: the first half of the range is erased, the rest still holds data. */
        memset(f->cur[a] + off, 0xff, len / 2);
        mark(f, a, off, len / 2 ? len / 2 : 1);
        power_loss_keep(f);
        return -1;
    }
    memset(f->cur[a] + off, 0xff, len);
    mark(f, a, off, len);
    return 0;
}

static int fl_sync(void *ctx, keel_update_area a)
{
    keel_update_flash *f = ctx;
    int go = op(f);
    if (go < 0) {
        power_loss_keep(f);
    }
    if (go <= 0 || (unsigned)a >= KEEL_UPDATE_AREA_COUNT) {
        return -1;
    }
    if (f->dirty_lo[a] != UINT32_MAX) {
        memcpy(f->dur[a] + f->dirty_lo[a], f->cur[a] + f->dirty_lo[a],
               f->dirty_hi[a] - f->dirty_lo[a]);
        f->dirty_lo[a] = UINT32_MAX;
        f->dirty_hi[a] = 0;
    }
    return 0;
}

void keel_update_flash_storage(keel_update_flash *f, keel_update_storage *out)
{
    memset(out, 0, sizeof *out);
    out->ctx = f;
    out->read = fl_read;
    out->write = fl_write;
    out->erase = fl_erase;
    out->sync = fl_sync;
    memcpy(out->size, f->size, sizeof out->size);
    out->erase_size = f->g.erase_size;
    out->write_size = f->g.write_size;
}

uint64_t keel_update_flash_ops(const keel_update_flash *f) { return f->ops; }
void keel_update_flash_cut_at(keel_update_flash *f, uint64_t op_index) { f->cut_at = op_index; }
void keel_update_flash_cut_mode(keel_update_flash *f, keel_update_cut_mode m) { f->mode = m; }
bool keel_update_flash_powered(const keel_update_flash *f) { return f->powered; }

void keel_update_flash_power_on(keel_update_flash *f)
{
    if (f->powered) {
        power_loss(f); /* a power cycle also drops what was never synced */
    }
    f->powered = true;
}

/* File layout: "KFLS", then the four durable areas in order (sizes from the geometry). */
int keel_update_flash_save(const keel_update_flash *f, const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        return -1;
    }
    bool ok = fwrite("KFLS", 1, 4, fp) == 4;
    for (int i = 0; ok && i < KEEL_UPDATE_AREA_COUNT; i++) {
        ok = fwrite(f->dur[i], 1, f->size[i], fp) == f->size[i];
    }
    ok = fflush(fp) == 0 && ok;
    ok = fclose(fp) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

int keel_update_flash_load(keel_update_flash *f, const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        return -1;
    }
    char magic[4];
    bool ok = fread(magic, 1, 4, fp) == 4 && memcmp(magic, "KFLS", 4) == 0;
    for (int i = 0; ok && i < KEEL_UPDATE_AREA_COUNT; i++) {
        ok = fread(f->dur[i], 1, f->size[i], fp) == f->size[i];
        if (ok) {
            memcpy(f->cur[i], f->dur[i], f->size[i]);
            f->dirty_lo[i] = UINT32_MAX;
            f->dirty_hi[i] = 0;
        }
    }
    ok = ok && fgetc(fp) == EOF;
    fclose(fp);
    return ok ? 0 : -1;
}

/* The simulated sensor's bootloader and update profile (see sensor_boot.h). */
#include "sensor_boot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERASE 1024u
#define WRITE 8u
#define FW_OK "KEEL-SENSOR-FW"
#define MAX_RESETS 8

enum { EXC_ADDRESS = 2, EXC_VALUE = 3, EXC_FAILURE = 4 };

struct sensor_boot {
    sensor_boot_config cfg;
    char path[512];
    char hw[KEEL_RELEASE_HW_SIZE + 1];
    keel_update_flash *flash;
    keel_update_storage raw, store;  /* store = raw + save the file after every sync */
    keel_update_agent *agent;
    uint16_t shadow[KEEL_UPDATE_SENSOR_REGS];
    uint16_t error;                  /* keel_update_err of the last refusal */
    bool restart;                    /* a commit asked for a restart */
    bool trial;
    char version[32];
};

static keel_update_flash_geometry geometry(const sensor_boot_config *cfg)
{
    return (keel_update_flash_geometry){cfg->slot_size, ERASE, ERASE, WRITE};
}

static int st_read(void *c, keel_update_area a, uint32_t o, void *b, uint32_t l)
{
    sensor_boot *s = c;
    return s->raw.read(s->raw.ctx, a, o, b, l);
}
static int st_write(void *c, keel_update_area a, uint32_t o, const void *b, uint32_t l)
{
    sensor_boot *s = c;
    return s->raw.write(s->raw.ctx, a, o, b, l);
}
static int st_erase(void *c, keel_update_area a, uint32_t o, uint32_t l)
{
    sensor_boot *s = c;
    return s->raw.erase(s->raw.ctx, a, o, l);
}
/* What is synced is on the chip: the file is the chip. */
static int st_sync(void *c, keel_update_area a)
{
    sensor_boot *s = c;
    if (s->raw.sync(s->raw.ctx, a) != 0) {
        return -1;
    }
    return keel_update_flash_save(s->flash, s->path);
}

int sensor_boot_provision(const sensor_boot_config *cfg, const uint8_t *image, size_t len)
{
    keel_update_flash_geometry g = geometry(cfg);
    keel_update_flash *f = keel_update_flash_create(&g);
    if (!f) {
        return -1;
    }
    keel_update_storage st;
    keel_update_flash_storage(f, &st);
    keel_update_error err;
    int rc = keel_update_provision(&st, image, len, &err) == KEEL_UPDATE_OK &&
                     keel_update_flash_save(f, cfg->flash_path) == 0
                 ? 0
                 : -1;
    keel_update_flash_destroy(f);
    return rc;
}

/* Does the firmware in `slot` start? (Its self-test: the payload's first bytes.) */
static bool firmware_starts(sensor_boot *s, int slot)
{
    char head[sizeof FW_OK - 1];
    keel_update_area a = slot ? KEEL_UPDATE_SLOT_B : KEEL_UPDATE_SLOT_A;
    return s->store.read(s->store.ctx, a, KEEL_IMAGE_HEADER_SIZE, head, sizeof head) == 0 &&
           memcmp(head, FW_OK, sizeof head) == 0;
}

/* The bootloader: boot, start the firmware, reset when it does not start. */
static bool boot(sensor_boot *s, char *why, size_t cap)
{
    for (int reset = 0; reset < MAX_RESETS; reset++) {
        keel_update_error err;
        keel_update_close(s->agent);
        s->agent = NULL;
        keel_update_config cfg = {.storage = &s->store, .keys = s->cfg.keys};
        memcpy(cfg.component, s->cfg.component, KEEL_IMAGE_UUID_SIZE);
        snprintf(cfg.hardware, sizeof cfg.hardware, "%s", s->hw);
        keel_update_boot_info b;
        if (keel_update_open(&cfg, &s->agent, &err) != KEEL_UPDATE_OK ||
            keel_update_boot(s->agent, 0, &b, &err) != KEEL_UPDATE_OK) {
            snprintf(why, cap, "%s", err.msg);
            return false;
        }
        if (!firmware_starts(s, b.slot)) {
            continue; /* the watchdog resets the sensor */
        }
        if (b.trial && keel_update_confirm(s->agent, &err) != KEEL_UPDATE_OK) {
            snprintf(why, cap, "confirm: %s", err.msg);
            return false;
        }
        snprintf(s->version, sizeof s->version, "%u.%u.%u", b.image.header.version.major,
                 b.image.header.version.minor, b.image.header.version.patch);
        s->trial = false;
        s->restart = false;
        s->error = 0;
        return true;
    }
    snprintf(why, cap, "no firmware starts");
    return false;
}

sensor_boot *sensor_boot_power_on(const sensor_boot_config *cfg, char *why, size_t cap)
{
    sensor_boot *s = calloc(1, sizeof *s);
    if (!s) {
        return NULL;
    }
    s->cfg = *cfg;
    snprintf(s->path, sizeof s->path, "%s", cfg->flash_path);
    snprintf(s->hw, sizeof s->hw, "%s", cfg->hardware ? cfg->hardware : "");
    s->cfg.flash_path = s->path;
    if (!s->cfg.base) {
        s->cfg.base = KEEL_UPDATE_SENSOR_BASE;
    }
    keel_update_flash_geometry g = geometry(cfg);
    s->flash = keel_update_flash_create(&g);
    if (!s->flash || keel_update_flash_load(s->flash, s->path) != 0) {
        snprintf(why, cap, "%s: no flash image (provision the sensor first)", s->path);
        sensor_boot_power_off(s);
        return NULL;
    }
    keel_update_flash_storage(s->flash, &s->raw);
    s->store = s->raw;
    s->store.ctx = s;
    s->store.read = st_read;
    s->store.write = st_write;
    s->store.erase = st_erase;
    s->store.sync = st_sync;
    if (!boot(s, why, cap)) {
        sensor_boot_power_off(s);
        return NULL;
    }
    return s;
}

void sensor_boot_power_off(sensor_boot *s)
{
    if (s) {
        keel_update_close(s->agent);
        keel_update_flash_destroy(s->flash);
        free(s);
    }
}

bool sensor_boot_poll(sensor_boot **sp, char *why, size_t cap)
{
    sensor_boot *s = *sp;
    if (!s->restart) {
        return true;
    }
    sensor_boot_config cfg = s->cfg;
    char path[512];
    snprintf(path, sizeof path, "%s", s->path);
    cfg.flash_path = path;
    char hw[KEEL_RELEASE_HW_SIZE + 1];
    snprintf(hw, sizeof hw, "%s", s->hw);
    cfg.hardware = hw;
    sensor_boot_power_off(s);
    *sp = sensor_boot_power_on(&cfg, why, cap);
    return *sp != NULL;
}

bool sensor_boot_restart_pending(const sensor_boot *s) { return s->restart; }
const char *sensor_boot_version(const sensor_boot *s) { return s->version; }
bool sensor_boot_on_trial(const sensor_boot *s) { return s->trial; }
keel_update_flash *sensor_boot_flash(sensor_boot *s) { return s->flash; }

static uint16_t state_reg(const sensor_boot *s)
{
    keel_update_status st;
    keel_update_get_status(s->agent, &st);
    if (st.state == KEEL_UPDATE_DOWNLOADING && keel_update_push_length(s->agent)) {
        return KEEL_UPDATE_SENSOR_RECEIVING;
    }
    if (st.state == KEEL_UPDATE_TRIAL) {
        return st.reboot_pending ? KEEL_UPDATE_SENSOR_ARMED : KEEL_UPDATE_SENSOR_TRIAL;
    }
    return s->error ? KEEL_UPDATE_SENSOR_ERROR_STATE : KEEL_UPDATE_SENSOR_IDLE;
}

uint8_t sensor_boot_read_regs(void *ctx, int table, uint16_t addr, uint16_t count, uint16_t *regs)
{
    sensor_boot *s = ctx;
    if (table != 2 /* holding */ || addr < s->cfg.base ||
        addr + count > s->cfg.base + KEEL_UPDATE_SENSOR_REGS) {
        return EXC_ADDRESS;
    }
    uint16_t v[KEEL_UPDATE_SENSOR_REGS];
    memcpy(v, s->shadow, sizeof v);
    v[KEEL_UPDATE_SENSOR_STATE] = state_reg(s);
    uint32_t len = keel_update_push_length(s->agent);
    if (len) {
        v[KEEL_UPDATE_SENSOR_LENGTH] = (uint16_t)(len >> 16);
        v[KEEL_UPDATE_SENSOR_LENGTH + 1] = (uint16_t)len;
    }
    uint32_t next = (keel_update_push_next(s->agent) + 1) / 2;
    v[KEEL_UPDATE_SENSOR_NEXT] = (uint16_t)(next >> 16);
    v[KEEL_UPDATE_SENSOR_NEXT + 1] = (uint16_t)next;
    v[KEEL_UPDATE_SENSOR_COMMIT] = 0;
    v[KEEL_UPDATE_SENSOR_ERROR] = s->error;
    memcpy(regs, v + (addr - s->cfg.base), count * sizeof *regs);
    return 0;
}

uint8_t sensor_boot_write_regs(void *ctx, uint16_t addr, uint16_t count, const uint16_t *regs)
{
    sensor_boot *s = ctx;
    if (addr < s->cfg.base || addr + count > s->cfg.base + KEEL_UPDATE_SENSOR_REGS) {
        return EXC_ADDRESS;
    }
    uint16_t first = (uint16_t)(addr - s->cfg.base), end = (uint16_t)(first + count);
    for (uint16_t r = first; r < end; r++) {
        if ((r >= KEEL_UPDATE_SENSOR_LENGTH && r < KEEL_UPDATE_SENSOR_LENGTH + 2) ||
            (r >= KEEL_UPDATE_SENSOR_SHA256 && r < KEEL_UPDATE_SENSOR_SHA256 + 16)) {
            s->shadow[r] = regs[r - first];
        }
    }
    keel_update_error err;
    keel_update_err e = KEEL_UPDATE_OK;
    if (first <= KEEL_UPDATE_SENSOR_STATE && end > KEEL_UPDATE_SENSOR_STATE) {
        uint16_t cmd = regs[KEEL_UPDATE_SENSOR_STATE - first];
        if (cmd == KEEL_UPDATE_SENSOR_RECEIVING) {
            uint8_t h[KEEL_IMAGE_HASH_SIZE];
            for (int i = 0; i < 16; i++) {
                h[2 * i] = (uint8_t)(s->shadow[KEEL_UPDATE_SENSOR_SHA256 + i] >> 8);
                h[2 * i + 1] = (uint8_t)s->shadow[KEEL_UPDATE_SENSOR_SHA256 + i];
            }
            uint32_t len = ((uint32_t)s->shadow[KEEL_UPDATE_SENSOR_LENGTH] << 16) |
                           s->shadow[KEEL_UPDATE_SENSOR_LENGTH + 1];
            e = keel_update_push_begin(s->agent, len, h, &err);
        } else if (cmd == KEEL_UPDATE_SENSOR_IDLE) {
            keel_update_status st;
            keel_update_get_status(s->agent, &st);
            if (st.state == KEEL_UPDATE_DOWNLOADING) {
                e = keel_update_abandon(s->agent, &err);
            }
        } else {
            return EXC_VALUE;
        }
        s->error = (uint16_t)e;
        if (e != KEEL_UPDATE_OK) {
            return e == KEEL_UPDATE_ERR_STORAGE ? EXC_FAILURE : EXC_VALUE;
        }
    }
    if (first <= KEEL_UPDATE_SENSOR_COMMIT && end > KEEL_UPDATE_SENSOR_COMMIT) {
        if (regs[KEEL_UPDATE_SENSOR_COMMIT - first] != KEEL_UPDATE_SENSOR_MAGIC) {
            return EXC_VALUE;
        }
        e = keel_update_push_commit(s->agent, &err);
        s->error = (uint16_t)e;
        if (e == KEEL_UPDATE_ERR_STORAGE) {
            return EXC_FAILURE;
        }
        if (e != KEEL_UPDATE_OK) {
            return EXC_VALUE; /* the reason is in the ERROR register */
        }
        s->restart = true; /* after this reply */
    }
    return 0;
}

static uint8_t exc_for(keel_update_err e)
{
    switch (e) {
    case KEEL_UPDATE_OK: return 0;
    case KEEL_UPDATE_ERR_STORAGE: return EXC_FAILURE;
    case KEEL_UPDATE_ERR_CHUNK:
    case KEEL_UPDATE_ERR_TOO_BIG: return EXC_ADDRESS;
    default: return EXC_VALUE;
    }
}

uint8_t sensor_boot_write_file(void *ctx, uint16_t file, uint16_t record, uint16_t count,
                               const uint16_t *regs)
{
    sensor_boot *s = ctx;
    uint32_t len = keel_update_push_length(s->agent);
    if (file == 0 || record >= KEEL_UPDATE_SENSOR_RECORDS || !len) {
        return EXC_ADDRESS;
    }
    uint64_t off = ((uint64_t)(file - 1) * KEEL_UPDATE_SENSOR_RECORDS + record) * 2;
    if (off >= len || count > 125 || off + 2u * count > (uint64_t)len + 1) {
        return EXC_ADDRESS;
    }
    uint8_t bytes[250];
    for (uint16_t i = 0; i < count; i++) {
        bytes[2 * i] = (uint8_t)(regs[i] >> 8);
        bytes[2 * i + 1] = (uint8_t)regs[i];
    }
    uint32_t n = (uint32_t)(off + 2u * count > len ? len - off : 2u * count);
    keel_update_error err;
    keel_update_err e = keel_update_push_write(s->agent, (uint32_t)off, bytes, n, &err);
    if (e != KEEL_UPDATE_OK && e != KEEL_UPDATE_ERR_CHUNK) {
        s->error = (uint16_t)e;
    }
    return exc_for(e);
}

uint8_t sensor_boot_read_file(void *ctx, uint16_t file, uint16_t record, uint16_t count,
                              uint16_t *regs)
{
    sensor_boot *s = ctx;
    if (file == 0 || record >= KEEL_UPDATE_SENSOR_RECORDS) {
        return EXC_ADDRESS;
    }
    /* Only what is stored in the receiving slot can be read back. */
    uint64_t off = ((uint64_t)(file - 1) * KEEL_UPDATE_SENSOR_RECORDS + record) * 2;
    uint32_t held = keel_update_push_next(s->agent) / ERASE * ERASE;
    if (count > 125 || off + 2u * count > held) {
        return EXC_ADDRESS;
    }
    keel_update_status st;
    keel_update_get_status(s->agent, &st);
    keel_update_area a = st.running_slot ? KEEL_UPDATE_SLOT_A : KEEL_UPDATE_SLOT_B;
    uint8_t bytes[250];
    if (s->store.read(s->store.ctx, a, (uint32_t)off, bytes, 2u * count) != 0) {
        return EXC_FAILURE;
    }
    for (uint16_t i = 0; i < count; i++) {
        regs[i] = (uint16_t)((bytes[2 * i] << 8) | bytes[2 * i + 1]);
    }
    return 0;
}

const char *sensor_boot_device_id(void *ctx, uint8_t id)
{
    sensor_boot *s = ctx;
    switch (id) {
    case 0: return "Keel";
    case 1: return "keel-sim-sensor";
    case 2: return s->version;
    default: return NULL;
    }
}

/* The update agent behind keeld's signed packages (include/keel/update.h).
 *
 * Each app installed from a signed image keeps its versions in the agent's A/B slots, with the
 * agent's durable state record, under <state>/slots/<name>/ (the file storage backend). The
 * agent is the single source of truth for which version runs: the confirmed one, or the other
 * one on trial. The store directory <store>/<name> is only the unpacked copy of the version
 * chosen at the last start; before every start the agent's boot decision is taken and, when it
 * chose another image, that image is unpacked beside the store and swapped in whole
 * (RENAME_EXCHANGE), so whatever moment keeld is killed at, the store holds one complete
 * package and the slots say which one must run.
 *
 * Trial rules, all durable so that they survive a keeld restart (kill -9 included):
 * - every start on trial counts one trial boot in the agent's record before the app runs; once
 *   device config trial_crashes starts have crashed, the agent's next boot decision reverts;
 * - the confirm deadline (trial_ms) counts from the trial's first start, kept as wall-clock
 *   time in <state>/slots/<name>/trial-since; a keeld started after it passed reverts at once;
 * - keel_app_confirm_health confirms through the agent, which raises its security floor.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keel/update.h"
#include "package.h"
#include "supervisor.h"

#define SV_SLOT_UNIT (64u << 10) /* slot files grow in these steps */

struct sv_slots {
    char dir[PATH_MAX];
    keel_update_storage store;
    bool store_open;
    keel_update_agent *agent;
    uint32_t slot_size;
    bool busy; /* a deployment thread owns the agent (deploy.c) */
    /* the agent's status as last seen on keeld's loop thread: what `keel app list` shows
     * while a deployment thread owns the agent (reading it then would race) */
    keel_update_status seen;
    char reverted[32]; /* the version last given up (a failed trial), for `keel app list` */
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool slots_dir(const sv_daemon *d, const char *name, char *out, size_t cap)
{
    return sv_fmt(out, cap, "%s/slots/%s", d->cfg.state_dir, name);
}

static void close_agent(struct sv_slots *s)
{
    keel_update_close(s->agent);
    s->agent = NULL;
    if (s->store_open) {
        keel_update_file_storage_close(&s->store);
        s->store_open = false;
    }
}

void sv_slots_close(sv_app *a)
{
    if (a->slots) {
        close_agent(a->slots);
        free(a->slots);
        a->slots = NULL;
    }
}

/* Opens storage (grown to hold `need` bytes per slot) and the agent. With `image` set and no
 * valid state record, provisions the slots with it first (*provisioned). */
static sv_err slots_open(sv_daemon *d, struct sv_slots *s, const uint8_t comp[KEEL_IMAGE_UUID_SIZE],
                         uint32_t need, const uint8_t *image, size_t len, bool *provisioned,
                         char *msg, size_t msglen)
{
    char path[PATH_MAX + 16];
    keel_update_file_slot_path(s->dir, 0, path, sizeof path);
    struct stat st;
    uint64_t have = stat(path, &st) == 0 ? (uint64_t)st.st_size / 256 * 256 : 0;
    uint64_t size = have;
    if (size < need || size == 0) {
        size = ((uint64_t)need + need / 2 + SV_SLOT_UNIT - 1) / SV_SLOT_UNIT * SV_SLOT_UNIT;
        if (size == 0) {
            size = SV_SLOT_UNIT;
        }
    }
    if (size > UINT32_MAX / 2) {
        snprintf(msg, msglen, "image of %u bytes: too big for a slot", need);
        return SV_ERR_CONFIG;
    }
    if (s->agent && s->slot_size == size) {
        return SV_OK;
    }
    close_agent(s);
    keel_update_error err = {{0}};
    if (keel_update_file_storage_open(s->dir, (uint32_t)size, &s->store, &err) != KEEL_UPDATE_OK) {
        snprintf(msg, msglen, "update slots %s: %s", s->dir, err.msg);
        return SV_ERR_IO;
    }
    s->store_open = true;
    s->slot_size = (uint32_t)size;
    keel_update_config cfg = {.storage = &s->store, .keys = {d->keys, d->nkeys}};
    memcpy(cfg.component, comp, KEEL_IMAGE_UUID_SIZE);
    snprintf(cfg.hardware, sizeof cfg.hardware, "%.*s", (int)sizeof cfg.hardware - 1,
             d->cfg.hardware);
    cfg.max_trial_boots = (uint8_t)(d->cfg.trial_crashes > 255 ? 255 : d->cfg.trial_crashes);
    cfg.trial_timeout_ms = d->cfg.trial_ms;
    keel_update_err e = keel_update_open(&cfg, &s->agent, &err);
    if (e == KEEL_UPDATE_ERR_NO_IMAGE && image) {
        e = keel_update_provision(&s->store, image, len, &err);
        if (e == KEEL_UPDATE_OK) {
            *provisioned = true;
            e = keel_update_open(&cfg, &s->agent, &err);
        }
    }
    if (e != KEEL_UPDATE_OK) {
        close_agent(s);
        snprintf(msg, msglen, "update slots %s: %s (%s)", s->dir, err.msg,
                 keel_update_err_name(e));
        return e == KEEL_UPDATE_ERR_STORAGE ? SV_ERR_IO : SV_ERR_CONFIG;
    }
    return SV_OK;
}

sv_err sv_slots_attach(sv_daemon *d, sv_app *a, char *msg, size_t msglen)
{
    if (a->slots || d->nkeys == 0) {
        return SV_OK;
    }
    struct sv_slots *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(msg, msglen, "out of memory");
        return SV_ERR_IO;
    }
    struct stat st;
    uint8_t comp[KEEL_IMAGE_UUID_SIZE];
    if (!slots_dir(d, a->m.name, s->dir, sizeof s->dir) || stat(s->dir, &st) != 0 ||
        !keel_image_uuid_parse(a->m.id, comp)) {
        free(s); /* no slots: a package placed by hand, or unsigned */
        return SV_OK;
    }
    sv_err e = slots_open(d, s, comp, 0, NULL, 0, NULL, msg, msglen);
    if (e) {
        free(s);
        return e;
    }
    a->slots = s;
    return SV_OK;
}

/* ---- the trial's confirm deadline, in wall-clock time ---- */

static void since_path(const struct sv_slots *s, char *out, size_t cap)
{
    (void)sv_fmt(out, cap, "%s/trial-since", s->dir);
}

static void since_forget(const struct sv_slots *s)
{
    char p[PATH_MAX + 16];
    since_path(s, p, sizeof p);
    (void)unlink(p);
}

/* When the trial of `version` started; now (and recorded) if it had not. */
static int64_t since_get(const struct sv_slots *s, const char *version)
{
    char p[PATH_MAX + 16], tmp[PATH_MAX + 24], ver[40];
    long long t;
    since_path(s, p, sizeof p);
    FILE *f = fopen(p, "r");
    if (f) {
        int n = fscanf(f, "%39s %lld", ver, &t);
        fclose(f);
        if (n == 2 && strcmp(ver, version) == 0) {
            return t;
        }
    }
    int64_t now = wall_ms();
    (void)sv_fmt(tmp, sizeof tmp, "%s.tmp", p);
    f = fopen(tmp, "w");
    if (f) {
        fprintf(f, "%s %lld\n", version, (long long)now);
        bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
        if (fclose(f) == 0 && ok) {
            (void)rename(tmp, p);
        }
    }
    return now;
}

/* ---- install ---- */

sv_err sv_slots_install(sv_daemon *d, const char *name, const uint8_t *image, size_t len,
                        struct sv_slots **slots, bool *trial, char *msg, size_t msglen)
{
    *trial = false;
    keel_image_info info;
    keel_image_error ie;
    if (keel_image_inspect(image, len, &info, &ie) != KEEL_IMAGE_OK) {
        snprintf(msg, msglen, "%s", ie.msg);
        return SV_ERR_CONFIG;
    }
    struct sv_slots *s = *slots;
    bool fresh = !s;
    if (fresh) {
        char parent[PATH_MAX];
        s = calloc(1, sizeof *s);
        if (!s || !sv_fmt(parent, sizeof parent, "%s/slots", d->cfg.state_dir) ||
            !slots_dir(d, name, s->dir, sizeof s->dir)) {
            free(s);
            snprintf(msg, msglen, "out of memory or path too long");
            return SV_ERR_IO;
        }
        (void)mkdir(parent, 0700);
    } else if (s->busy) {
        snprintf(msg, msglen, "%s: a deployment is downloading: wait for it", name);
        return SV_ERR_STATE;
    }
    bool provisioned = false;
    sv_err e = slots_open(d, s, info.header.component, (uint32_t)len, image, len, &provisioned,
                          msg, msglen);
    keel_update_error err = {{0}};
    keel_update_err ue = KEEL_UPDATE_OK;
    if (!e && !provisioned) {
        keel_update_status stt;
        keel_update_get_status(s->agent, &stt);
        if (stt.state == KEEL_UPDATE_TRIAL) {
            /* a new install replaces a trial still under way: the fallback stays the version
             * last confirmed */
            ue = keel_update_revert(s->agent, &err);
            since_forget(s);
            keel_update_get_status(s->agent, &stt);
        }
        if (!ue && (stt.running_slot < 0 || stt.reboot_pending)) {
            keel_update_boot_info bi;
            ue = keel_update_boot(s->agent, (uint64_t)sv_now_ms(), &bi, &err);
        }
        if (!ue) {
            ue = keel_update_stage(s->agent, image, len, &err);
        }
        if (ue) {
            snprintf(msg, msglen, "%s: %s (%s)", name, err.msg, keel_update_err_name(ue));
            e = ue == KEEL_UPDATE_ERR_STORAGE ? SV_ERR_IO : SV_ERR_CONFIG;
        } else {
            since_forget(s);
            s->reverted[0] = '\0'; /* a new version on trial: the last revert is history */
            *trial = true;
        }
    }
    if (e && fresh) {
        close_agent(s);
        free(s);
        return e;
    }
    *slots = s;
    return e;
}

/* ---- start ---- */

static bool read_all(const char *path, size_t cap, uint8_t **out, size_t *len)
{
    keel_image_error ie;
    return keel_image_read_file(path, cap, out, len, &ie) == KEEL_IMAGE_OK;
}

/* Makes the store directory hold exactly the image in `slot` (unpacked, verified, swapped in
 * whole), and reloads the app's manifest from it. */
static sv_err materialize(sv_daemon *d, sv_app *a, int slot, const keel_image_info *info,
                          char *msg, size_t msglen)
{
    struct sv_slots *s = a->slots;
    size_t len = info->image_size;
    uint8_t *img = malloc(len ? len : 1), *kept = NULL;
    size_t kept_len = 0;
    char kp[PATH_MAX + 32];
    if (!img || s->store.read(s->store.ctx, slot ? KEEL_UPDATE_SLOT_B : KEEL_UPDATE_SLOT_A, 0,
                              img, (uint32_t)len) != 0) {
        free(img);
        snprintf(msg, msglen, "reading update slot %c failed", 'A' + slot);
        return SV_ERR_IO;
    }
    (void)sv_fmt(kp, sizeof kp, "%s/%s", a->pkg_dir, SV_PKG_IMAGE);
    bool have = read_all(kp, SV_PKG_MAX_BYTES + 4096, &kept, &kept_len);
    struct stat st;
    if ((have && kept_len == len && memcmp(kept, img, len) == 0) ||
        (!have && stat(a->pkg_dir, &st) == 0)) {
        /* the store holds this version (every file is checked next, sv_package_verify_dir),
         * or its kept image went missing: that is refused there, not repaired silently */
        free(kept);
        free(img);
        return SV_OK;
    }
    free(kept);
    char stage[PATH_MAX + 80];
    (void)sv_fmt(stage, sizeof stage, "%s/.stage-%s", d->cfg.store_dir, a->m.name);
    sv_rm_tree(stage);
    sv_err e = SV_OK;
    if (mkdir(stage, 0755) < 0) {
        snprintf(msg, msglen, "%s: %s", stage, strerror(errno));
        e = SV_ERR_IO;
    }
    if (!e) {
        e = sv_package_open_buf(d, img, len, "update slot", stage, msg, msglen);
    }
    free(img);
    if (!e && renameat2(AT_FDCWD, stage, AT_FDCWD, a->pkg_dir, RENAME_EXCHANGE) != 0) {
        /* no directory yet, or a filesystem without exchange: two renames (the slots still
         * say what must run, so a cut between them is repaired at the next start) */
        char old[PATH_MAX + 80];
        (void)sv_fmt(old, sizeof old, "%s/.old-%s", d->cfg.store_dir, a->m.name);
        sv_rm_tree(old);
        if ((rename(a->pkg_dir, old) != 0 && errno != ENOENT) || rename(stage, a->pkg_dir) != 0) {
            snprintf(msg, msglen, "%s: %s", a->pkg_dir, strerror(errno));
            e = SV_ERR_IO;
        }
        sv_rm_tree(old);
    }
    sv_rm_tree(stage); /* the version swapped out, or a failed unpacking */
    if (e) {
        return e;
    }
    sv_package_seal_mark(d, a->m.name, true);
    char pkg[PATH_MAX];
    snprintf(pkg, sizeof pkg, "%s", a->pkg_dir);
    return sv_app_add(d, pkg, NULL, msg, msglen);
}

sv_err sv_slots_boot(sv_daemon *d, sv_app *a, char *msg, size_t msglen)
{
    struct sv_slots *s = a->slots;
    if (!s || s->busy) {
        /* no slots; or a deployment downloads into the inactive slot, so no trial can be armed
         * and the confirmed version in the store runs (verified as every start) */
        return SV_OK;
    }
    keel_update_err ue;
    keel_update_error err = {{0}};
    keel_update_boot_info bi;
    for (int pass = 0;; pass++) {
        ue = keel_update_boot(s->agent, (uint64_t)sv_now_ms(), &bi, &err);
        if (ue) {
            snprintf(msg, msglen, "no bootable version in the update slots: %s (%s)", err.msg,
                     keel_update_err_name(ue));
            return ue == KEEL_UPDATE_ERR_STORAGE ? SV_ERR_IO : SV_ERR_CONFIG;
        }
        if (bi.reverted && !a->reverted_from[0]) {
            /* the agent gave the trial up: its starts were used up by crashes (before a
             * keeld restart, perhaps), or its image no longer verifies */
            snprintf(a->reverted_from, sizeof a->reverted_from, "%s", a->m.version);
            snprintf(a->revert_why, sizeof a->revert_why, "crashed during its trial");
            snprintf(s->reverted, sizeof s->reverted, "%s", a->m.version);
        }
        if (!bi.trial || pass > 0) {
            break;
        }
        char ver[40];
        snprintf(ver, sizeof ver, "%u.%u.%u", bi.image.header.version.major,
                 bi.image.header.version.minor, bi.image.header.version.patch);
        int64_t elapsed = wall_ms() - since_get(s, ver);
        elapsed = elapsed < 0 ? 0 : elapsed; /* the clock went back: the trial starts over */
        if (elapsed < (int64_t)d->cfg.trial_ms) {
            a->trial_deadline_ms = sv_now_ms() + ((int64_t)d->cfg.trial_ms - elapsed);
            break;
        }
        /* keeld was down while the deadline passed: the revert completes now */
        snprintf(a->reverted_from, sizeof a->reverted_from, "%.31s", ver);
        snprintf(a->revert_why, sizeof a->revert_why, "no health confirmation in time");
        snprintf(s->reverted, sizeof s->reverted, "%.31s", ver);
        ue = keel_update_revert(s->agent, &err);
        since_forget(s);
        if (ue) {
            snprintf(msg, msglen, "revert: %s", err.msg);
            return SV_ERR_IO;
        }
    }
    a->trial = bi.trial;
    if (!bi.trial) {
        since_forget(s);
    }
    return materialize(d, a, bi.slot, &bi.image, msg, msglen);
}

void sv_slots_confirm(sv_daemon *d, sv_app *a)
{
    (void)d;
    struct sv_slots *s = a->slots;
    if (!s || s->busy) {
        return;
    }
    keel_update_status st;
    keel_update_get_status(s->agent, &st);
    if (!st.running_trial) {
        return;
    }
    keel_update_error err = {{0}};
    if (keel_update_confirm(s->agent, &err) != KEEL_UPDATE_OK) {
        sv_logf("%s: confirm in the update agent failed: %s (the trial goes on)", a->m.name,
                err.msg);
        return;
    }
    since_forget(s);
}

void sv_slots_revert(sv_daemon *d, sv_app *a, const char *why)
{
    (void)d;
    struct sv_slots *s = a->slots;
    snprintf(a->reverted_from, sizeof a->reverted_from, "%s", a->m.version);
    snprintf(a->revert_why, sizeof a->revert_why, "%s", why);
    a->trial = false;
    if (!s) {
        return;
    }
    snprintf(s->reverted, sizeof s->reverted, "%s", a->m.version);
    keel_update_error err = {{0}};
    if (keel_update_revert(s->agent, &err) != KEEL_UPDATE_OK) {
        /* not on trial in the agent (already reverted by its boot decision): nothing to do */
        sv_logf("%s: revert: %s", a->m.name, err.msg);
    }
    since_forget(s);
}

bool sv_slots_trial_used_up(const sv_app *a)
{
    if (!a->slots || a->slots->busy) {
        return false;
    }
    keel_update_status st;
    keel_update_get_status(a->slots->agent, &st);
    return st.state == KEEL_UPDATE_TRIAL && st.trial_boots >= st.max_trial_boots;
}

sv_err sv_slots_reserve(sv_daemon *d, sv_app *a, uint32_t image_size, char *msg, size_t msglen)
{
    struct sv_slots *s = a->slots;
    uint8_t comp[KEEL_IMAGE_UUID_SIZE];
    if (!s || s->busy || !keel_image_uuid_parse(a->m.id, comp)) {
        snprintf(msg, msglen, "%s: no update slots to grow", a->m.name);
        return SV_ERR_STATE;
    }
    /* reopening resets the agent's boot (it is booted again before a download) */
    return slots_open(d, s, comp, image_size, NULL, 0, NULL, msg, msglen);
}

struct keel_update_agent *sv_slots_agent(sv_app *a) { return a->slots ? a->slots->agent : NULL; }

void sv_slots_busy(sv_app *a, bool busy)
{
    if (a->slots) {
        if (busy) {
            keel_update_get_status(a->slots->agent, &a->slots->seen);
        }
        a->slots->busy = busy;
    }
}

/* ---- what `keel app list` and `keel app status NAME` show ---- */

void sv_slots_describe(const sv_daemon *d, const sv_app *a, sv_trial_view *v)
{
    memset(v, 0, sizeof *v);
    v->slot = '-';
    v->confirmed = !a->trial;
    v->trial_allowed = d->cfg.trial_crashes;
    const struct sv_slots *s = a->slots;
    if (s) {
        keel_update_status st;
        if (s->busy) {
            st = s->seen; /* the download thread owns the agent */
        } else {
            keel_update_get_status(s->agent, &st);
        }
        if (st.running_slot >= 0) {
            v->slot = (char)('A' + st.running_slot);
        }
        v->confirmed = !st.running_trial && !a->trial;
        v->trial_used = st.trial_boots;
        v->trial_allowed = st.max_trial_boots;
        snprintf(v->reverted_from, sizeof v->reverted_from, "%s", s->reverted);
    } else {
        v->trial_used = a->trial ? a->trial_crashes : 0;
    }
    if (!v->reverted_from[0] && a->reverted_from[0]) {
        snprintf(v->reverted_from, sizeof v->reverted_from, "%s", a->reverted_from);
    }
    v->on_trial = a->trial;
    if (a->trial && !a->confirmed && a->state == SV_RUNNING) {
        int64_t left = a->trial_deadline_ms - sv_now_ms();
        v->left_ms = left > 0 ? left : 0;
    } else {
        v->left_ms = -1; /* no deadline counting */
    }
}

/* Package archives and signed package images (package.h). */
#include "package.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keel/image.h"
#include "keel/manifest.h"

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- build ---- */

static struct {
    uint8_t *buf;
    size_t len, cap;
    uint32_t count;
    size_t root_len;
    bool failed;
    char why[160];
} g_b;

static bool grow(size_t more)
{
    if (g_b.len + more > SV_PKG_MAX_BYTES) {
        snprintf(g_b.why, sizeof g_b.why, "package larger than %u MiB", SV_PKG_MAX_BYTES >> 20);
        return false;
    }
    if (g_b.len + more > g_b.cap) {
        size_t cap = g_b.cap ? g_b.cap : 65536;
        while (cap < g_b.len + more) {
            cap *= 2;
        }
        uint8_t *n = realloc(g_b.buf, cap);
        if (!n) {
            snprintf(g_b.why, sizeof g_b.why, "out of memory");
            return false;
        }
        g_b.buf = n;
        g_b.cap = cap;
    }
    return true;
}

static int add_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag != FTW_F || !S_ISREG(st->st_mode)) {
        return 0;
    }
    const char *rel = path + g_b.root_len;
    while (*rel == '/') {
        rel++;
    }
    size_t pl = strlen(rel);
    if (pl == 0 || pl > 255 || g_b.count >= SV_PKG_MAX_ENTRIES ||
        (uint64_t)st->st_size > SV_PKG_MAX_BYTES) {
        snprintf(g_b.why, sizeof g_b.why, "%s: path too long, file too big or too many files",
                 rel);
        return -1;
    }
    if (!grow(10 + pl + (size_t)st->st_size)) {
        return -1;
    }
    uint8_t *h = g_b.buf + g_b.len;
    put32(h, (st->st_mode & 0111) ? 0755 : 0644);
    put32(h + 4, (uint32_t)st->st_size);
    h[8] = (uint8_t)pl;
    h[9] = (uint8_t)(pl >> 8);
    memcpy(h + 10, rel, pl);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t got = 0;
    while (fd >= 0 && got < (size_t)st->st_size) {
        ssize_t r = read(fd, h + 10 + pl + got, (size_t)st->st_size - got);
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
    }
    if (fd >= 0) {
        close(fd);
    }
    if (got != (size_t)st->st_size) {
        snprintf(g_b.why, sizeof g_b.why, "%s: cannot read", rel);
        return -1;
    }
    g_b.len += 10 + pl + got;
    g_b.count++;
    return 0;
}

sv_err sv_package_build(const char *dir, uint8_t **out, size_t *len, char *msg, size_t msglen)
{
    memset(&g_b, 0, sizeof g_b);
    g_b.root_len = strlen(dir);
    if (!grow(8)) {
        snprintf(msg, msglen, "%s", g_b.why);
        return SV_ERR_IO;
    }
    memcpy(g_b.buf, "KPKG", 4);
    g_b.len = 8;
    if (nftw(dir, add_entry, 16, FTW_PHYS) != 0) {
        snprintf(msg, msglen, "%s: %s", dir, g_b.why[0] ? g_b.why : strerror(errno));
        free(g_b.buf);
        return SV_ERR_IO;
    }
    put32(g_b.buf + 4, g_b.count);
    *out = g_b.buf;
    *len = g_b.len;
    return SV_OK;
}

/* ---- extract ---- */

static bool path_ok(const char *p, size_t n)
{
    if (n == 0 || p[0] == '/' || memchr(p, 0, n)) {
        return false;
    }
    /* every part non-empty and not "." or ".." */
    size_t s = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || p[i] == '/') {
            size_t k = i - s;
            if (k == 0 || (k == 1 && p[s] == '.') || (k == 2 && p[s] == '.' && p[s + 1] == '.')) {
                return false;
            }
            s = i + 1;
        }
    }
    return true;
}

/* Walks the archive; with dest NULL it only checks. */
static sv_err walk(const uint8_t *p, size_t len, const char *dest, char *msg, size_t msglen)
{
    if (len < 8 || memcmp(p, "KPKG", 4) != 0) {
        snprintf(msg, msglen, "not a Keel package archive (no KPKG magic)");
        return SV_ERR_CONFIG;
    }
    uint32_t count = get32(p + 4);
    if (count > SV_PKG_MAX_ENTRIES) {
        snprintf(msg, msglen, "package: %u entries, at most %u", count, SV_PKG_MAX_ENTRIES);
        return SV_ERR_CONFIG;
    }
    size_t off = 8;
    for (uint32_t i = 0; i < count; i++) {
        if (len - off < 10) {
            snprintf(msg, msglen, "package: entry %u truncated", i);
            return SV_ERR_CONFIG;
        }
        uint32_t mode = get32(p + off), size = get32(p + off + 4);
        size_t pl = (size_t)p[off + 8] | (size_t)p[off + 9] << 8;
        if ((mode != 0755 && mode != 0644) || pl > 255 || len - off - 10 < pl ||
            len - off - 10 - pl < size) {
            snprintf(msg, msglen, "package: entry %u has a bad mode or length", i);
            return SV_ERR_CONFIG;
        }
        const char *path = (const char *)p + off + 10;
        if (pl == sizeof SV_PKG_IMAGE - 1 && memcmp(path, SV_PKG_IMAGE, pl) == 0) {
            snprintf(msg, msglen, "package: entry %u: \"%s\" is keeld's own name", i,
                     SV_PKG_IMAGE);
            return SV_ERR_CONFIG;
        }
        if (!path_ok(path, pl)) {
            snprintf(msg, msglen, "package: entry %u: path \"%.*s\" leaves the package", i,
                     (int)(pl < 64 ? pl : 64), path);
            return SV_ERR_CONFIG;
        }
        if (dest) {
            char full[PATH_MAX];
            if (!sv_fmt(full, sizeof full, "%s/%.*s", dest, (int)pl, path)) {
                snprintf(msg, msglen, "package: path too long");
                return SV_ERR_IO;
            }
            /* parent directories, one part at a time under dest */
            for (char *s = full + strlen(dest) + 1; (s = strchr(s, '/')); s++) {
                *s = '\0';
                if (mkdir(full, 0755) < 0 && errno != EEXIST) {
                    snprintf(msg, msglen, "%s: %s", full, strerror(errno));
                    return SV_ERR_IO;
                }
                *s = '/';
            }
            int fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                          (mode_t)mode);
            if (fd < 0 || write(fd, p + off + 10 + pl, size) != (ssize_t)size || fsync(fd) < 0) {
                snprintf(msg, msglen, "%s: %s", full, strerror(errno));
                if (fd >= 0) {
                    close(fd);
                }
                return SV_ERR_IO;
            }
            close(fd);
            (void)chmod(full, (mode_t)mode);
        }
        off += 10 + pl + size;
    }
    if (off != len) {
        snprintf(msg, msglen, "package: %zu bytes after the last entry", len - off);
        return SV_ERR_CONFIG;
    }
    return SV_OK;
}

sv_err sv_package_extract(const uint8_t *p, size_t len, const char *dest, char *msg,
                          size_t msglen)
{
    sv_err e = walk(p, len, NULL, msg, msglen); /* all of it checked before any file is written */
    return e ? e : walk(p, len, dest, msg, msglen);
}

/* ---- signed images ---- */

static sv_err write_file(const char *dir, const char *name, const uint8_t *p, size_t len,
                         char *msg, size_t msglen)
{
    char path[PATH_MAX];
    if (!sv_fmt(path, sizeof path, "%s/%s", dir, name)) {
        snprintf(msg, msglen, "%s: path too long", dir);
        return SV_ERR_IO;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    size_t done = 0;
    while (fd >= 0 && done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w <= 0) {
            break;
        }
        done += (size_t)w;
    }
    if (fd < 0 || done != len || fsync(fd) < 0) {
        snprintf(msg, msglen, "%s: %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return SV_ERR_IO;
    }
    close(fd);
    return SV_OK;
}

sv_err sv_package_open_image(const sv_daemon *d, const char *image, const char *dest,
                             char *msg, size_t msglen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    keel_image_error ierr = {{0}};
    if (keel_image_read_file(image, SV_PKG_MAX_BYTES + 4096, &buf, &len, &ierr) != KEEL_IMAGE_OK) {
        snprintf(msg, msglen, "%s", ierr.msg);
        return SV_ERR_IO;
    }
    sv_err e = sv_package_open_buf(d, buf, len, image, dest, msg, msglen);
    free(buf);
    return e;
}

sv_err sv_package_open_buf(const sv_daemon *d, const uint8_t *buf, size_t len, const char *image,
                           const char *dest, char *msg, size_t msglen)
{
    if (d->nkeys == 0) {
        snprintf(msg, msglen, "%s: no trusted keys configured (device config \"trusted_keys\")",
                 image);
        return SV_ERR_CONFIG;
    }
    keel_image_error ierr = {{0}};
    keel_image_keys keys = {d->keys, d->nkeys};
    keel_image_info info;
    keel_image_err ie = keel_image_verify(buf, len, &keys, &info, &ierr);
    if (ie != KEEL_IMAGE_OK) {
        snprintf(msg, msglen, "%s: refused: %s (%s)", image, ierr.msg, keel_image_err_name(ie));
        return SV_ERR_CONFIG;
    }
    char comp[37];
    keel_image_uuid_format(info.header.component, comp);
    uint32_t floor = sv_package_floor(d, comp);
    if (info.header.security_counter < floor) {
        snprintf(msg, msglen,
                 "%s: refused: security counter %u is below this device's floor %u for %s "
                 "(anti-rollback: an older, possibly vulnerable release)",
                 image, info.header.security_counter, floor, comp);
        return SV_ERR_CONFIG;
    }
    sv_err e = sv_package_extract(buf + KEEL_IMAGE_HEADER_SIZE, info.header.payload_size, dest,
                                  msg, msglen);
    if (!e) {
        e = write_file(dest, SV_PKG_IMAGE, buf, len, msg, msglen);
    }
    if (e) {
        return e;
    }
    /* The signature covers the header; the manifest inside must agree with it, or a signed
     * image of one app could carry another app's identity. */
    sv_manifest m;
    e = sv_manifest_load(dest, &m, msg, msglen);
    if (e) {
        return e;
    }
    char ver[48];
    snprintf(ver, sizeof ver, "%u.%u.%u", info.header.version.major, info.header.version.minor,
             info.header.version.patch);
    if (strcmp(comp, m.id) != 0 || strcmp(ver, m.version) != 0) {
        snprintf(msg, msglen, "%s: the image is %s %s but its manifest says %s %s", image, comp,
                 ver, m.id, m.version);
        return SV_ERR_CONFIG;
    }
    return SV_OK;
}

/* ---- verification at every start ---- */

static bool seal_path(const sv_daemon *d, const char *name, char *out, size_t cap)
{
    return sv_fmt(out, cap, "%s/sealed/%s", d->cfg.state_dir, name);
}

void sv_package_seal_mark(const sv_daemon *d, const char *name, bool sealed)
{
    char path[PATH_MAX], dir[PATH_MAX];
    if (!seal_path(d, name, path, sizeof path) ||
        !sv_fmt(dir, sizeof dir, "%s/sealed", d->cfg.state_dir)) {
        return;
    }
    if (!sealed) {
        (void)unlink(path);
        return;
    }
    (void)mkdir(dir, 0700);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        sv_logf("%s: %s: %s (the package is still verified while its image is there)", name,
                path, strerror(errno));
        return;
    }
    (void)fsync(fd);
    close(fd);
}

/* Files under the package directory other than the kept image, counted by nftw. */
static size_t g_nfiles;
static size_t g_root_len;
static int count_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_F || flag == FTW_SL || flag == FTW_NS) {
        const char *rel = path + g_root_len;
        while (*rel == '/') {
            rel++;
        }
        g_nfiles += strcmp(rel, SV_PKG_IMAGE) != 0; /* links and oddities count: none allowed */
    }
    return 0;
}

/* Every archive entry against the file of the same path: mode and bytes. The archive was
 * walked (checked) first, so its lengths are trusted here. */
static sv_err compare(const uint8_t *p, const char *dir, char *msg, size_t msglen)
{
    uint32_t count = get32(p + 4);
    size_t off = 8;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t mode = get32(p + off), size = get32(p + off + 4);
        size_t pl = (size_t)p[off + 8] | (size_t)p[off + 9] << 8;
        const char *path = (const char *)p + off + 10;
        const uint8_t *data = p + off + 10 + pl;
        char full[PATH_MAX];
        if (!sv_fmt(full, sizeof full, "%s/%.*s", dir, (int)pl, path)) {
            snprintf(msg, msglen, "package: path too long");
            return SV_ERR_IO;
        }
        int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        struct stat st;
        bool same = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
                    (uint64_t)st.st_size == size && ((st.st_mode & 0777) == mode);
        uint8_t chunk[8192];
        for (size_t at = 0; same && at < size;) {
            size_t want = size - at < sizeof chunk ? size - at : sizeof chunk;
            ssize_t r = read(fd, chunk, want);
            same = r == (ssize_t)want && memcmp(chunk, data + at, want) == 0;
            at += want;
        }
        if (fd >= 0) {
            close(fd);
        }
        if (!same) {
            snprintf(msg, msglen, "%.*s differs from the signed package (changed on disk)",
                     (int)(pl < 100 ? pl : 100), path);
            return SV_ERR_CONFIG;
        }
        off += 10 + pl + size;
    }
    g_nfiles = 0;
    g_root_len = strlen(dir);
    if (nftw(dir, count_entry, 16, FTW_PHYS) != 0) {
        snprintf(msg, msglen, "%s: %s", dir, strerror(errno));
        return SV_ERR_IO;
    }
    if (g_nfiles != count) {
        snprintf(msg, msglen, "%zu files where the signed package has %u (files added on disk)",
                 g_nfiles, count);
        return SV_ERR_CONFIG;
    }
    return SV_OK;
}

sv_err sv_package_verify_dir(const sv_daemon *d, const char *name, const char *pkg_dir,
                             bool *sealed, uint32_t *counter, char *msg, size_t msglen)
{
    char image[PATH_MAX], mark[PATH_MAX];
    *sealed = false;
    *counter = 0;
    if (!sv_fmt(image, sizeof image, "%s/%s", pkg_dir, SV_PKG_IMAGE) ||
        !seal_path(d, name, mark, sizeof mark)) {
        snprintf(msg, msglen, "%s: path too long", pkg_dir);
        return SV_ERR_IO;
    }
    if (access(image, F_OK) != 0) {
        if (access(mark, F_OK) == 0) {
            snprintf(msg, msglen, "refused: installed signed, but its signed image %s is gone",
                     image);
            return SV_ERR_CONFIG;
        }
        return SV_OK; /* placed by hand: the caller says it runs unverified */
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    keel_image_error ierr = {{0}};
    if (keel_image_read_file(image, SV_PKG_MAX_BYTES + 4096, &buf, &len, &ierr) != KEEL_IMAGE_OK) {
        snprintf(msg, msglen, "refused: %s", ierr.msg);
        return SV_ERR_IO;
    }
    keel_image_keys keys = {d->keys, d->nkeys};
    keel_image_info info;
    keel_image_err ie = keel_image_verify(buf, len, &keys, &info, &ierr);
    sv_err e = SV_OK;
    if (ie != KEEL_IMAGE_OK) {
        snprintf(msg, msglen, "refused: its signed image no longer verifies: %s (%s)", ierr.msg,
                 keel_image_err_name(ie));
        e = SV_ERR_CONFIG;
    }
    char comp[37];
    keel_image_uuid_format(info.header.component, comp);
    uint32_t floor = e ? 0 : sv_package_floor(d, comp);
    if (!e && info.header.security_counter < floor) {
        snprintf(msg, msglen, "refused: security counter %u is below this device's floor %u",
                 info.header.security_counter, floor);
        e = SV_ERR_CONFIG;
    }
    const uint8_t *payload = buf + KEEL_IMAGE_HEADER_SIZE;
    if (!e) {
        /* the same archive checks as at install, then file by file */
        e = sv_package_extract(payload, info.header.payload_size, NULL, msg, msglen);
    }
    if (!e) {
        char why[200];
        e = compare(payload, pkg_dir, why, sizeof why);
        if (e) {
            snprintf(msg, msglen, "refused: %s", why);
        }
    }
    free(buf);
    *sealed = e == SV_OK;
    *counter = e == SV_OK ? info.header.security_counter : 0;
    return e;
}

/* ---- anti-rollback floors ---- */

static bool floor_path(const sv_daemon *d, const char *component, char *out, size_t cap)
{
    return sv_fmt(out, cap, "%s/floors/%s", d->cfg.state_dir, component);
}

uint32_t sv_package_floor(const sv_daemon *d, const char *component)
{
    char path[PATH_MAX];
    unsigned long v = 0;
    if (!floor_path(d, component, path, sizeof path)) {
        return 0;
    }
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%lu", &v) != 1 || v > UINT32_MAX) {
            v = UINT32_MAX; /* unreadable: accept nothing rather than anything */
            sv_logf("floor %s unreadable: refusing every version until fixed", path);
        }
        fclose(f);
    }
    return (uint32_t)v;
}

void sv_package_floor_raise(const sv_daemon *d, const char *component, uint32_t counter)
{
    if (counter <= sv_package_floor(d, component)) {
        return;
    }
    char dir[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX + 8];
    if (!sv_fmt(dir, sizeof dir, "%s/floors", d->cfg.state_dir) ||
        !floor_path(d, component, path, sizeof path) ||
        !sv_fmt(tmp, sizeof tmp, "%s.tmp", path)) {
        return;
    }
    (void)mkdir(dir, 0700);
    /* written whole and renamed: a power cut leaves the old floor or the new one */
    char text[16];
    int n = snprintf(text, sizeof text, "%u\n", counter);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, text, (size_t)n) != n || fsync(fd) < 0 || close(fd) < 0 ||
        rename(tmp, path) < 0) {
        sv_logf("floor %s: %s: not raised to %u", path, strerror(errno), counter);
        return;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    sv_logf("anti-rollback floor of %s raised to %u", component, counter);
}

/* Packages: a package is a signed Keel image (include/keel/image.h) whose payload is a small
 * archive of the app's files, app_manifest.json among them. The archive format ("KPKG"):
 *
 *   "KPKG" u32 count, then count entries of   u32 mode  u32 size  u16 path_len  path  data
 *
 * little-endian; paths are relative, '/'-separated, no "..", no empty parts, under 256 bytes;
 * at most 1024 entries; modes keep only the 0755/0644 distinction. Shared by keeld (install)
 * and `keel app pack`. Extraction never writes outside the destination directory. */
#ifndef KEEL_SUPERVISOR_PACKAGE_H
#define KEEL_SUPERVISOR_PACKAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "supervisor.h"

#define SV_PKG_MAX_ENTRIES 1024u
#define SV_PKG_MAX_BYTES (64u << 20)

/* Archives the regular files under dir into *out (malloc'd, *len bytes). */
sv_err sv_package_build(const char *dir, uint8_t **out, size_t *len, char *msg, size_t msglen);
/* Checks the whole archive, then writes its files under dest (which must exist and be empty). */
sv_err sv_package_extract(const uint8_t *p, size_t len, const char *dest, char *msg,
                          size_t msglen);
/* Reads `image`, verifies it against the device's trusted keys and the anti-rollback floor
 * of its component (sv_package_floor), extracts it into dest, checks that the manifest inside
 * names the image's component and version, and keeps the signed image itself as
 * dest/SV_PKG_IMAGE so every start can verify the package again. */
sv_err sv_package_open_image(const sv_daemon *d, const char *image, const char *dest,
                             char *msg, size_t msglen);

/* The same for an image already in memory (`what` names it in messages). */
sv_err sv_package_open_buf(const sv_daemon *d, const uint8_t *buf, size_t len, const char *what,
                           const char *dest, char *msg, size_t msglen);

/* The signed image an installed package keeps; no archive entry may have this name. */
#define SV_PKG_IMAGE ".keel-image"

/* Verifies an installed package before it runs: its kept image's signature, the floor, and
 * that every file in pkg_dir is exactly the image's (same bytes, same mode, nothing added).
 * *counter gets the image's security counter. A package without a kept image was placed in
 * the store by hand: SV_OK with *sealed false,
 * unless keeld recorded that it installed it signed (then SV_ERR_CONFIG: the image went). */
sv_err sv_package_verify_dir(const sv_daemon *d, const char *name, const char *pkg_dir,
                             bool *sealed, uint32_t *counter, char *msg, size_t msglen);

/* Anti-rollback: the lowest security counter this device still accepts for a component
 * (component UUID string), kept in <state>/floors/<uuid> so it survives restarts; 0 if none.
 * Raised (never lowered) when a version is known good: installed with nothing to fall back
 * to, or confirmed healthy after its trial. */
uint32_t sv_package_floor(const sv_daemon *d, const char *component);
void sv_package_floor_raise(const sv_daemon *d, const char *component, uint32_t counter);
/* Records (or forgets) that keeld installed app `name` from a signed image. */
void sv_package_seal_mark(const sv_daemon *d, const char *name, bool sealed);

#endif

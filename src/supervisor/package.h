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
/* Reads `image`, verifies it against the device's trusted keys, extracts it into dest, and
 * checks that the manifest inside names the image's component and version. */
sv_err sv_package_open_image(const sv_daemon *d, const char *image, const char *dest,
                             char *msg, size_t msglen);

#endif

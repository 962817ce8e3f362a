/* Private to the manifest module: the capability table the parser walks. One row per key of
 * "capabilities"; a row's parser fills its part of keel_manifest_caps. The supervisor adds its
 * capabilities (serial ports, GPIO, cloud, limits) as rows in manifest_caps.c. */
#ifndef KEEL_MANIFEST_PRIVATE_H
#define KEEL_MANIFEST_PRIVATE_H

#include <cjson/cJSON.h>

#include "keel/manifest.h"

typedef keel_manifest_err (*keel_manifest_cap_parse_fn)(const char *file, const cJSON *value,
                                                        keel_manifest_caps *caps,
                                                        keel_manifest_error *err);

typedef struct keel_manifest_cap {
    const char *key;
    keel_manifest_cap_parse_fn parse;
} keel_manifest_cap;

extern const keel_manifest_cap keel_manifest_caps_table[];
extern const size_t keel_manifest_caps_count;

/* A JSON array of strings into a fixed table of `max` rows of `width` bytes; `where` names it
 * in messages ("capabilities.serial"). */
keel_manifest_err keel_manifest_string_list(const char *file, const char *where,
                                            const cJSON *value, char *table, size_t width,
                                            size_t max, size_t *count, keel_manifest_error *err);

/* printf-style error helper shared by the parser files; returns `code`. */
__attribute__((format(printf, 3, 4))) keel_manifest_err
keel_manifest_fail(keel_manifest_error *err, keel_manifest_err code, const char *fmt, ...);

#endif

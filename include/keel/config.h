/* JSON configuration files (device config, app manifests, MODBUS maps, poll maps).
 * Loading reports where a file is wrong (line and column) so a user can fix it; typed getters
 * say which key is missing or has the wrong type. Documented per file in docs/config.md. */
#ifndef KEEL_CONFIG_H
#define KEEL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/status.h"

struct cJSON;

typedef enum keel_config_err {
    KEEL_CONFIG_OK = 0,
    KEEL_CONFIG_ERR_IO,        /* cannot open or read the file */
    KEEL_CONFIG_ERR_TOO_BIG,   /* larger than KEEL_CONFIG_MAX_BYTES */
    KEEL_CONFIG_ERR_SYNTAX,    /* not JSON */
    KEEL_CONFIG_ERR_MISSING,   /* a required key is absent */
    KEEL_CONFIG_ERR_TYPE,      /* a key has the wrong type */
    KEEL_CONFIG_ERR_RANGE,     /* a number outside its allowed range */
    KEEL_CONFIG_ERR_COUNT
} keel_config_err;

#define KEEL_CONFIG_MAX_BYTES (1024u * 1024u)

/* Room for one human-readable error: "file:line:col: what". */
typedef struct keel_config_error {
    char msg[256];
} keel_config_error;

const char *keel_config_err_name(keel_config_err e);

/* Parses JSON text (len bytes, need not be NUL-terminated). `name` is used in messages.
 * On success *out is a cJSON tree the caller frees with cJSON_Delete. */
KEEL_NODISCARD keel_config_err keel_config_parse(const char *name, const char *text, size_t len,
                                                 struct cJSON **out, keel_config_error *err);
/* Reads and parses a file. */
KEEL_NODISCARD keel_config_err keel_config_load(const char *path, struct cJSON **out,
                                                keel_config_error *err);

/* Typed getters: `key` in object `obj`. `required` false: absent leaves *out untouched and
 * returns OK. Messages name the key. */
KEEL_NODISCARD keel_config_err keel_config_get_string(const struct cJSON *obj, const char *key,
                                                      bool required, const char **out,
                                                      keel_config_error *err);
KEEL_NODISCARD keel_config_err keel_config_get_int(const struct cJSON *obj, const char *key,
                                                   bool required, int64_t min, int64_t max,
                                                   int64_t *out, keel_config_error *err);
KEEL_NODISCARD keel_config_err keel_config_get_number(const struct cJSON *obj, const char *key,
                                                      bool required, double *out,
                                                      keel_config_error *err);
KEEL_NODISCARD keel_config_err keel_config_get_bool(const struct cJSON *obj, const char *key,
                                                    bool required, bool *out,
                                                    keel_config_error *err);

#endif

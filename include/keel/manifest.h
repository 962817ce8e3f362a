/* app_manifest.json: who a component is (UUID, name, version, kind) and what it may touch
 * (capabilities). The supervisor reads a manifest before it starts a component and grants
 * exactly what it names; nothing else. The pairing rule for intercore channels lives here too:
 * a channel exists only between two components whose manifests each name the other.
 *
 * The parsed form is a fixed-size struct (no heap), so it can be copied, stored and compared.
 * Capabilities are parsed by a table (src/manifest/manifest_caps.c): adding one is a field in
 * struct keel_manifest_caps and one row in that table. Unknown keys are errors, so a typo in a
 * manifest never silently drops a permission. Schema: docs/manifest.md. */
#ifndef KEEL_MANIFEST_H
#define KEEL_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/status.h"

typedef enum keel_manifest_err {
    KEEL_MANIFEST_OK = 0,
    KEEL_MANIFEST_ERR_IO,      /* cannot read the file */
    KEEL_MANIFEST_ERR_SYNTAX,  /* not JSON, or too big */
    KEEL_MANIFEST_ERR_MISSING, /* a required key is absent */
    KEEL_MANIFEST_ERR_TYPE,    /* a key has the wrong JSON type */
    KEEL_MANIFEST_ERR_VALUE,   /* a value is malformed (UUID, version, kind, name) */
    KEEL_MANIFEST_ERR_UNKNOWN, /* an unknown key (a typo must not drop a permission) */
    KEEL_MANIFEST_ERR_LIMIT,   /* more entries than the manifest can hold */
    KEEL_MANIFEST_ERR_SCHEMA,  /* a schema version this build does not know */
    KEEL_MANIFEST_ERR_DENIED,  /* pairing refused: the manifests do not name each other */
    KEEL_MANIFEST_ERR_COUNT
} keel_manifest_err;

const char *keel_manifest_err_name(keel_manifest_err e);

#define KEEL_MANIFEST_SCHEMA 1
#define KEEL_MANIFEST_NAME_MAX 64    /* bytes, including the NUL */
#define KEEL_MANIFEST_VERSION_MAX 32 /* bytes, including the NUL */
#define KEEL_MANIFEST_MAX_PARTNERS 16
#define KEEL_MANIFEST_UUID_STR 37 /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" + NUL */

/* A component ID: 16 bytes, the UUID in its textual byte order. */
typedef struct keel_uuid {
    uint8_t b[16];
} keel_uuid;

typedef enum keel_manifest_kind {
    KEEL_MANIFEST_KIND_APP = 0, /* "app": a high-level app on the connected core */
    KEEL_MANIFEST_KIND_RT,      /* "rt": real-time firmware on the real-time core */
} keel_manifest_kind;

#define KEEL_MANIFEST_EXEC_MAX 128 /* bytes, including the NUL */
#define KEEL_MANIFEST_MAX_ARGS 8
#define KEEL_MANIFEST_ARG_MAX 64
#define KEEL_MANIFEST_MAX_HOSTS 4
#define KEEL_MANIFEST_HOST_MAX 64
#define KEEL_MANIFEST_MAX_SERIAL 8
#define KEEL_MANIFEST_SERIAL_MAX 32
#define KEEL_MANIFEST_MAX_GPIO 16

/* Capabilities. Each is absent (zero) unless the manifest names it. */
typedef struct keel_manifest_caps {
    /* "intercore": component IDs this component may open a channel with. */
    size_t n_partners;
    keel_uuid partners[KEEL_MANIFEST_MAX_PARTNERS];
    /* "cloud": {"telemetry", "properties", "methods", "log", "mqtt": bool, "http": [host]}
     * what the app may do through keeld's cloud link; "http" names "host" or "host:port". */
    bool cloud_telemetry, cloud_properties, cloud_methods, cloud_log, cloud_mqtt;
    size_t n_http;
    char http[KEEL_MANIFEST_MAX_HOSTS][KEEL_MANIFEST_HOST_MAX];
    /* "serial": ["rs485", ...] names of serial ports the device config defines, which the
     * supervisor may open for the app (keel_app_serial_open). */
    size_t n_serial;
    char serial[KEEL_MANIFEST_MAX_SERIAL][KEEL_MANIFEST_SERIAL_MAX];
    /* "gpio": ["relay", ...] names of GPIO lines the device config defines
     * (keel_app_gpio_open). */
    size_t n_gpio;
    char gpio[KEEL_MANIFEST_MAX_GPIO][KEEL_MANIFEST_SERIAL_MAX];
    /* "limits": {"memory_mb", "cpu_percent", "processes", "files"}; 0 = the supervisor's
     * default. */
    uint32_t memory_mb, cpu_percent, processes, files;
} keel_manifest_caps;

/* What the supervisor does when an app ends: "on-failure" (default), "always", "never". */
typedef enum keel_manifest_restart {
    KEEL_MANIFEST_RESTART_ON_FAILURE = 0,
    KEEL_MANIFEST_RESTART_ALWAYS,
    KEEL_MANIFEST_RESTART_NEVER,
} keel_manifest_restart;

typedef struct keel_manifest {
    int schema;
    keel_uuid id;
    char name[KEEL_MANIFEST_NAME_MAX];
    char version[KEEL_MANIFEST_VERSION_MAX]; /* "MAJOR.MINOR.PATCH" */
    uint32_t version_num[3];
    keel_manifest_kind kind;
    keel_manifest_caps caps;
    /* How the supervisor runs an "app" (unused for "rt"): "exec" is a path inside the package
     * ("" when absent), "args" its arguments, "heartbeat_ms" the longest silence tolerated
     * (0: none), "restart" the policy. */
    char exec[KEEL_MANIFEST_EXEC_MAX];
    size_t n_args;
    char args[KEEL_MANIFEST_MAX_ARGS][KEEL_MANIFEST_ARG_MAX];
    uint32_t heartbeat_ms;
    keel_manifest_restart restart;
} keel_manifest;

/* Room for one message a person can act on: "file: key: what is wrong". */
typedef struct keel_manifest_error {
    char msg[256];
} keel_manifest_error;

/* Parses manifest text (len bytes, need not be NUL-terminated); `name` is used in messages.
 * On error *out is zeroed and err says which key is wrong and why. */
KEEL_NODISCARD keel_manifest_err keel_manifest_parse(const char *name, const char *text, size_t len,
                                                     keel_manifest *out, keel_manifest_error *err);
/* Reads and parses a file. */
KEEL_NODISCARD keel_manifest_err keel_manifest_load(const char *path, keel_manifest *out,
                                                    keel_manifest_error *err);

/* The pairing rule: OK only if a names b as an intercore partner and b names a, and they are
 * not the same component. Otherwise ERR_DENIED, with a message naming the side that does not
 * allow the other. */
KEEL_NODISCARD keel_manifest_err keel_manifest_pair_allowed(const keel_manifest *a,
                                                            const keel_manifest *b,
                                                            keel_manifest_error *err);

/* True if m lists `name` in its "serial" / "gpio" capability. */
bool keel_manifest_allows_serial(const keel_manifest *m, const char *name);
bool keel_manifest_allows_gpio(const keel_manifest *m, const char *name);

/* True if m names `id` as an intercore partner. */
bool keel_manifest_allows_partner(const keel_manifest *m, const keel_uuid *id);

/* UUIDs as text: 8-4-4-4-12 hex digits, either case in, lower case out. */
KEEL_NODISCARD bool keel_manifest_uuid_parse(const char *s, keel_uuid *out);
void keel_manifest_uuid_format(const keel_uuid *id, char out[KEEL_MANIFEST_UUID_STR]);
bool keel_manifest_uuid_equal(const keel_uuid *a, const keel_uuid *b);

const char *keel_manifest_kind_name(keel_manifest_kind k);

#endif

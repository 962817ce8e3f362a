/* app_manifest.json parsing and the intercore pairing rule.
 *
 * The parser is strict on purpose: a manifest is a security policy, so an unknown key, a key
 * given twice (JSON leaves which one wins to the reader) or a malformed value is an error with
 * the key named, never a guess. The result is a fixed-size struct with no pointers into the
 * JSON text, so callers can keep it after the text is gone. */
#include "keel/manifest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/config.h"
#include "manifest_private.h"

const char *keel_manifest_err_name(keel_manifest_err e)
{
    static const char *const names[KEEL_MANIFEST_ERR_COUNT] = {
        [KEEL_MANIFEST_OK] = "KEEL_MANIFEST_OK",
        [KEEL_MANIFEST_ERR_IO] = "KEEL_MANIFEST_ERR_IO",
        [KEEL_MANIFEST_ERR_SYNTAX] = "KEEL_MANIFEST_ERR_SYNTAX",
        [KEEL_MANIFEST_ERR_MISSING] = "KEEL_MANIFEST_ERR_MISSING",
        [KEEL_MANIFEST_ERR_TYPE] = "KEEL_MANIFEST_ERR_TYPE",
        [KEEL_MANIFEST_ERR_VALUE] = "KEEL_MANIFEST_ERR_VALUE",
        [KEEL_MANIFEST_ERR_UNKNOWN] = "KEEL_MANIFEST_ERR_UNKNOWN",
        [KEEL_MANIFEST_ERR_LIMIT] = "KEEL_MANIFEST_ERR_LIMIT",
        [KEEL_MANIFEST_ERR_SCHEMA] = "KEEL_MANIFEST_ERR_SCHEMA",
        [KEEL_MANIFEST_ERR_DENIED] = "KEEL_MANIFEST_ERR_DENIED",
    };
    return (unsigned)e < KEEL_MANIFEST_ERR_COUNT ? names[e] : "KEEL_MANIFEST_ERR_UNKNOWN_CODE";
}

const char *keel_manifest_kind_name(keel_manifest_kind k)
{
    switch (k) {
    case KEEL_MANIFEST_KIND_APP:
        return "app";
    case KEEL_MANIFEST_KIND_RT:
        return "rt";
    }
    return "?";
}

keel_manifest_err keel_manifest_fail(keel_manifest_error *err, keel_manifest_err code,
                                     const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool keel_manifest_uuid_parse(const char *s, keel_uuid *out)
{
    if (!s || strlen(s) != 36) {
        return false;
    }
    size_t n = 0;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
            i++;
            continue;
        }
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out->b[n++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return n == 16;
}

void keel_manifest_uuid_format(const keel_uuid *id, char out[KEEL_MANIFEST_UUID_STR])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[id->b[i] >> 4];
        out[o++] = hex[id->b[i] & 15];
    }
    out[o] = '\0';
}

bool keel_manifest_uuid_equal(const keel_uuid *a, const keel_uuid *b)
{
    return memcmp(a->b, b->b, sizeof a->b) == 0;
}

/* "MAJOR.MINOR.PATCH", each 0..999999, no sign, no leading zeros but "0". */
static bool parse_version(const char *s, uint32_t out[3])
{
    for (int part = 0; part < 3; part++) {
        if (*s < '0' || *s > '9')
            return false;
        if (*s == '0' && s[1] >= '0' && s[1] <= '9')
            return false;
        uint32_t v = 0;
        int digits = 0;
        while (*s >= '0' && *s <= '9') {
            if (++digits > 6)
                return false;
            v = v * 10 + (uint32_t)(*s++ - '0');
        }
        out[part] = v;
        if (part < 2) {
            if (*s++ != '.')
                return false;
        }
    }
    return *s == '\0';
}

/* Printable ASCII, no leading/trailing space, 1..NAME_MAX-1 bytes: names appear in logs and
 * commands, so no control characters or quotes. */
static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= KEEL_MANIFEST_NAME_MAX || s[0] == ' ' || s[n - 1] == ' ')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
            return false;
    }
    return true;
}

/* Refuses a key given twice in one object: JSON does not say which copy counts. */
static keel_manifest_err check_unique(const char *file, const char *where, const cJSON *obj,
                                      keel_manifest_error *err)
{
    for (const cJSON *a = obj->child; a; a = a->next) {
        for (const cJSON *b = a->next; b; b = b->next) {
            if (a->string && b->string && strcmp(a->string, b->string) == 0) {
                return keel_manifest_fail(err, KEEL_MANIFEST_ERR_VALUE,
                                          "%s: %s\"%.40s\": given twice", file, where, a->string);
            }
        }
    }
    return KEEL_MANIFEST_OK;
}

static keel_manifest_err want_string(const char *file, const cJSON *root, const char *key,
                                     const char **out, keel_manifest_error *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it) {
        return keel_manifest_fail(err, KEEL_MANIFEST_ERR_MISSING, "%s: missing required key \"%s\"",
                                  file, key);
    }
    if (!cJSON_IsString(it)) {
        return keel_manifest_fail(err, KEEL_MANIFEST_ERR_TYPE, "%s: \"%s\": must be a string", file,
                                  key);
    }
    *out = it->valuestring;
    return KEEL_MANIFEST_OK;
}

static const keel_manifest_cap *find_cap(const char *key)
{
    for (size_t i = 0; i < keel_manifest_caps_count; i++) {
        if (strcmp(keel_manifest_caps_table[i].key, key) == 0) {
            return &keel_manifest_caps_table[i];
        }
    }
    return NULL;
}

static keel_manifest_err parse_caps(const char *file, const cJSON *caps, keel_manifest *m,
                                    keel_manifest_error *err)
{
    if (!cJSON_IsObject(caps)) {
        return keel_manifest_fail(err, KEEL_MANIFEST_ERR_TYPE,
                                  "%s: \"capabilities\": must be an object", file);
    }
    /* Unknown keys first: then at most one of each known key can come before a repeat, so the
     * repeat check stays linear however long a hostile object is. */
    for (const cJSON *it = caps->child; it; it = it->next) {
        if (!find_cap(it->string)) {
            return keel_manifest_fail(err, KEEL_MANIFEST_ERR_UNKNOWN,
                                      "%s: capabilities: unknown capability \"%.40s\"", file,
                                      it->string);
        }
    }
    keel_manifest_err rc = check_unique(file, "capabilities.", caps, err);
    if (rc)
        return rc;
    for (const cJSON *it = caps->child; it; it = it->next) {
        rc = find_cap(it->string)->parse(file, it, &m->caps, err);
        if (rc)
            return rc;
    }
    return KEEL_MANIFEST_OK;
}

static const char *const top_keys[] = {"schema", "id",   "name",         "version", "kind",
                                       "capabilities", "exec", "args", "heartbeat_ms", "restart"};

/* "exec", "args", "heartbeat_ms", "restart": how the supervisor runs an app. */
static keel_manifest_err parse_run(const char *file, const cJSON *root, keel_manifest *m,
                                   keel_manifest_error *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "exec");
    if (it) {
        if (!cJSON_IsString(it)) {
            return keel_manifest_fail(err, KEEL_MANIFEST_ERR_TYPE, "%s: \"exec\": must be a string",
                                      file);
        }
        const char *s = it->valuestring;
        if (s[0] == '\0' || s[0] == '/' || strstr(s, "..") || strlen(s) >= KEEL_MANIFEST_EXEC_MAX) {
            return keel_manifest_fail(err, KEEL_MANIFEST_ERR_VALUE,
                                      "%s: \"exec\": must be a relative path inside the package "
                                      "(no \"..\", under %d characters)",
                                      file, KEEL_MANIFEST_EXEC_MAX);
        }
        memcpy(m->exec, s, strlen(s) + 1);
    }
    it = cJSON_GetObjectItemCaseSensitive(root, "args");
    if (it) {
        keel_manifest_err rc =
            keel_manifest_string_list(file, "args", it, &m->args[0][0], KEEL_MANIFEST_ARG_MAX,
                                      KEEL_MANIFEST_MAX_ARGS, &m->n_args, err);
        if (rc)
            return rc;
    }
    it = cJSON_GetObjectItemCaseSensitive(root, "heartbeat_ms");
    if (it) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 3600000 ||
            it->valuedouble != (double)(uint32_t)it->valuedouble) {
            return keel_manifest_fail(err, KEEL_MANIFEST_ERR_VALUE,
                                      "%s: \"heartbeat_ms\": must be an integer 0..3600000", file);
        }
        m->heartbeat_ms = (uint32_t)it->valuedouble;
    }
    it = cJSON_GetObjectItemCaseSensitive(root, "restart");
    if (it) {
        const char *s = cJSON_IsString(it) ? it->valuestring : "";
        if (strcmp(s, "on-failure") == 0) {
            m->restart = KEEL_MANIFEST_RESTART_ON_FAILURE;
        } else if (strcmp(s, "always") == 0) {
            m->restart = KEEL_MANIFEST_RESTART_ALWAYS;
        } else if (strcmp(s, "never") == 0) {
            m->restart = KEEL_MANIFEST_RESTART_NEVER;
        } else {
            return keel_manifest_fail(err, KEEL_MANIFEST_ERR_VALUE,
                                      "%s: \"restart\": must be \"on-failure\", \"always\" or "
                                      "\"never\"",
                                      file);
        }
    }
    return KEEL_MANIFEST_OK;
}

static keel_manifest_err parse_tree(const char *file, const cJSON *root, keel_manifest *m,
                                    keel_manifest_error *err)
{
    if (!cJSON_IsObject(root)) {
        return keel_manifest_fail(err, KEEL_MANIFEST_ERR_TYPE, "%s: must be a JSON object", file);
    }
    for (const cJSON *it = root->child; it; it = it->next) {
        bool known = false;
        for (size_t i = 0; i < sizeof top_keys / sizeof top_keys[0]; i++) {
            known = known || strcmp(top_keys[i], it->string) == 0;
        }
        if (!known) {
            return keel_manifest_fail(err, KEEL_MANIFEST_ERR_UNKNOWN, "%s: unknown key \"%.40s\"",
                                      file, it->string);
        }
    }
    keel_manifest_err rc = check_unique(file, "", root, err); /* linear: only known keys left */
    if (rc)
        return rc;

    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(root, "schema");
    if (!schema) {
        return keel_manifest_fail(err, KEEL_MANIFEST_ERR_MISSING,
                                  "%s: missing required key \"schema\"", file);
    }
    if (!cJSON_IsNumber(schema)) {
        return keel_manifest_fail(err, KEEL_MANIFEST_ERR_TYPE, "%s: \"schema\": must be an integer",
                                  file);
    }
    /* Compare as a double: casting an arbitrary JSON number to int is undefined behaviour. */
    if (schema->valuedouble != (double)KEEL_MANIFEST_SCHEMA) {
        return keel_manifest_fail(err, KEEL_MANIFEST_ERR_SCHEMA,
                                  "%s: \"schema\": %g is not supported (this build reads %d)", file,
                                  schema->valuedouble, KEEL_MANIFEST_SCHEMA);
    }
    m->schema = KEEL_MANIFEST_SCHEMA;

    const char *s = NULL;
    if ((rc = want_string(file, root, "id", &s, err)))
        return rc;
    if (!keel_manifest_uuid_parse(s, &m->id)) {
        return keel_manifest_fail(err, KEEL_MANIFEST_ERR_VALUE,
                                  "%s: \"id\": \"%.40s\" is not a UUID (8-4-4-4-12 hex digits)",
                                  file, s);
    }
    if ((rc = want_string(file, root, "name", &s, err)))
        return rc;
    if (!valid_name(s)) {
        return keel_manifest_fail(err, KEEL_MANIFEST_ERR_VALUE,
                                  "%s: \"name\": must be 1..%d printable ASCII characters, no "
                                  "quotes or backslashes, no leading or trailing space",
                                  file, KEEL_MANIFEST_NAME_MAX - 1);
    }
    memcpy(m->name, s, strlen(s) + 1);
    if ((rc = want_string(file, root, "version", &s, err)))
        return rc;
    if (strlen(s) >= KEEL_MANIFEST_VERSION_MAX || !parse_version(s, m->version_num)) {
        return keel_manifest_fail(err, KEEL_MANIFEST_ERR_VALUE,
                                  "%s: \"version\": \"%.40s\" is not MAJOR.MINOR.PATCH", file, s);
    }
    memcpy(m->version, s, strlen(s) + 1);
    if ((rc = want_string(file, root, "kind", &s, err)))
        return rc;
    if (strcmp(s, "app") == 0) {
        m->kind = KEEL_MANIFEST_KIND_APP;
    } else if (strcmp(s, "rt") == 0) {
        m->kind = KEEL_MANIFEST_KIND_RT;
    } else {
        return keel_manifest_fail(err, KEEL_MANIFEST_ERR_VALUE,
                                  "%s: \"kind\": \"%.40s\" must be \"app\" (high-level app) or "
                                  "\"rt\" (real-time firmware)",
                                  file, s);
    }

    const cJSON *caps = cJSON_GetObjectItemCaseSensitive(root, "capabilities");
    if (caps) {
        if ((rc = parse_caps(file, caps, m, err)))
            return rc;
    }
    if ((rc = parse_run(file, root, m, err)))
        return rc;
    for (size_t i = 0; i < m->caps.n_partners; i++) {
        if (keel_manifest_uuid_equal(&m->caps.partners[i], &m->id)) {
            return keel_manifest_fail(err, KEEL_MANIFEST_ERR_VALUE,
                                      "%s: capabilities.intercore[%zu]: a component cannot be "
                                      "its own partner",
                                      file, i);
        }
    }
    return KEEL_MANIFEST_OK;
}

keel_manifest_err keel_manifest_parse(const char *name, const char *text, size_t len,
                                      keel_manifest *out, keel_manifest_error *err)
{
    memset(out, 0, sizeof *out);
    cJSON *root;
    keel_config_error cerr;
    if (keel_config_parse(name, text, len, &root, &cerr) != KEEL_CONFIG_OK) {
        return keel_manifest_fail(err, KEEL_MANIFEST_ERR_SYNTAX, "%s", cerr.msg);
    }
    keel_manifest_err rc = parse_tree(name, root, out, err);
    cJSON_Delete(root);
    if (rc != KEEL_MANIFEST_OK) {
        memset(out, 0, sizeof *out);
    }
    return rc;
}

keel_manifest_err keel_manifest_load(const char *path, keel_manifest *out, keel_manifest_error *err)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        return keel_manifest_fail(err, KEEL_MANIFEST_ERR_IO, "%s: cannot open", path);
    }
    /* A manifest is small; 64 KiB is far beyond any real one and bounds the read. */
    enum { MAX = 64 * 1024 };
    char *buf = malloc(MAX + 1);
    if (!buf) {
        fclose(f);
        return keel_manifest_fail(err, KEEL_MANIFEST_ERR_IO, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, MAX + 1, f);
    bool bad = ferror(f);
    fclose(f);
    keel_manifest_err rc;
    if (bad) {
        rc = keel_manifest_fail(err, KEEL_MANIFEST_ERR_IO, "%s: read error", path);
    } else if (n > MAX) {
        rc = keel_manifest_fail(err, KEEL_MANIFEST_ERR_SYNTAX, "%s: larger than %d bytes", path,
                                MAX);
    } else {
        rc = keel_manifest_parse(path, buf, n, out, err);
    }
    free(buf);
    return rc;
}

bool keel_manifest_allows_partner(const keel_manifest *m, const keel_uuid *id)
{
    for (size_t i = 0; i < m->caps.n_partners; i++) {
        if (keel_manifest_uuid_equal(&m->caps.partners[i], id))
            return true;
    }
    return false;
}

static bool in_list(const char (*list)[KEEL_MANIFEST_SERIAL_MAX], size_t n, const char *name)
{
    for (size_t i = 0; name && i < n; i++) {
        if (strcmp(list[i], name) == 0) {
            return true;
        }
    }
    return false;
}

bool keel_manifest_allows_serial(const keel_manifest *m, const char *name)
{
    return in_list(m->caps.serial, m->caps.n_serial, name);
}

bool keel_manifest_allows_gpio(const keel_manifest *m, const char *name)
{
    return in_list(m->caps.gpio, m->caps.n_gpio, name);
}

keel_manifest_err keel_manifest_pair_allowed(const keel_manifest *a, const keel_manifest *b,
                                             keel_manifest_error *err)
{
    char ida[KEEL_MANIFEST_UUID_STR], idb[KEEL_MANIFEST_UUID_STR];
    keel_manifest_uuid_format(&a->id, ida);
    keel_manifest_uuid_format(&b->id, idb);
    if (keel_manifest_uuid_equal(&a->id, &b->id)) {
        return keel_manifest_fail(err, KEEL_MANIFEST_ERR_DENIED,
                                  "%s (%s): a component cannot pair with itself", a->name, ida);
    }
    bool ab = keel_manifest_allows_partner(a, &b->id);
    bool ba = keel_manifest_allows_partner(b, &a->id);
    if (ab && ba) {
        return KEEL_MANIFEST_OK;
    }
    if (!ab && !ba) {
        return keel_manifest_fail(err, KEEL_MANIFEST_ERR_DENIED,
                                  "neither %s (%s) nor %s (%s) names the other in "
                                  "capabilities.intercore",
                                  a->name, ida, b->name, idb);
    }
    const keel_manifest *no = ab ? b : a, *other = ab ? a : b;
    return keel_manifest_fail(err, KEEL_MANIFEST_ERR_DENIED,
                              "%s (%s) does not name %s (%s) in capabilities.intercore", no->name,
                              ab ? idb : ida, other->name, ab ? ida : idb);
}

/* Poll map parsing and scaling; see gateway_map.h. */
#include "gateway_map.h"

#include <ctype.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *gateway_map_err_name(gateway_map_err e)
{
    static const char *const names[GATEWAY_MAP_ERR_COUNT] = {
        [GATEWAY_MAP_OK] = "GATEWAY_MAP_OK",
        [GATEWAY_MAP_ERR_SYNTAX] = "GATEWAY_MAP_ERR_SYNTAX",
        [GATEWAY_MAP_ERR_INVALID] = "GATEWAY_MAP_ERR_INVALID",
    };
    return (unsigned)e < GATEWAY_MAP_ERR_COUNT ? names[e] : "GATEWAY_MAP_ERR_UNKNOWN";
}

static gateway_map_err fail(char *msg, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static gateway_map_err fail(char *msg, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    return GATEWAY_MAP_ERR_INVALID;
}

static bool only_keys(const cJSON *obj, const char *const *keys, const char **bad)
{
    for (const cJSON *m = obj->child; m; m = m->next) {
        bool known = false;
        for (size_t i = 0; keys[i]; i++) {
            known = known || strcmp(m->string, keys[i]) == 0;
        }
        if (!known) {
            *bad = m->string;
            return false;
        }
    }
    return true;
}

/* An integer member in [min, max]; absent: def (or an error when def < 0). */
static bool get_int(const cJSON *o, const char *key, double min, double max, double def,
                    double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        *out = def;
        return def >= 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < min ||
        v->valuedouble > max) {
        return false;
    }
    *out = v->valuedouble;
    return true;
}

/* 8-4-4-4-12 hex digits */
static bool is_uuid(const char *s)
{
    if (strlen(s) != 36) {
        return false;
    }
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

static gateway_map_err parse_bus(const cJSON *bus, gateway_map *m, char *msg, size_t cap)
{
    static const char *const keys[] = {"rtu_over_tcp", "tcp",  "rtu",   "rt_bridge", "baud",
                                       "parity",       "stop", "rs485", NULL};
    const char *bad = NULL;
    if (!cJSON_IsObject(bus)) {
        return fail(msg, cap, "bus: must be an object");
    }
    if (!only_keys(bus, keys, &bad)) {
        return fail(msg, cap, "bus.%s: unknown key", bad);
    }
    static const char *const kinds[] = {"rtu_over_tcp", "tcp", "rtu", "rt_bridge"};
    int found = 0;
    for (int k = 0; k < 4; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(bus, kinds[k]);
        if (!v) {
            continue;
        }
        if (!cJSON_IsString(v) || !v->valuestring[0] ||
            strlen(v->valuestring) >= sizeof m->target) {
            return fail(msg, cap, "bus.%s: must be a non-empty string under %zu bytes", kinds[k],
                        sizeof m->target);
        }
        if (k == GATEWAY_BUS_RT_BRIDGE && !is_uuid(v->valuestring)) {
            return fail(msg, cap, "bus.rt_bridge: the RT component's id, a UUID");
        }
        m->bus = (gateway_bus_kind)k;
        snprintf(m->target, sizeof m->target, "%s", v->valuestring);
        found++;
    }
    if (found != 1) {
        return fail(msg, cap, "bus: give exactly one of rtu_over_tcp, tcp, rtu, rt_bridge");
    }
    double d;
    /* the RT core's bus runs at 115200 in the simulator; a serial line's common default */
    if (!get_int(bus, "baud", 300, 4000000, m->bus == GATEWAY_BUS_RT_BRIDGE ? 115200 : 19200, &d)) {
        return fail(msg, cap, "bus.baud: a whole number, 300..4000000");
    }
    m->baud = (uint32_t)d;
    if (!get_int(bus, "stop", 1, 2, 1, &d)) {
        return fail(msg, cap, "bus.stop: 1 or 2");
    }
    m->stop_bits = (uint8_t)d;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(bus, "parity");
    m->parity = 'E';
    if (p) {
        if (!cJSON_IsString(p) ||
            (strcmp(p->valuestring, "none") && strcmp(p->valuestring, "even") &&
             strcmp(p->valuestring, "odd"))) {
            return fail(msg, cap, "bus.parity: \"none\", \"even\" or \"odd\"");
        }
        m->parity = p->valuestring[0] == 'n' ? 'N' : p->valuestring[0] == 'e' ? 'E' : 'O';
    }
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(bus, "rs485");
    if (r && !cJSON_IsBool(r)) {
        return fail(msg, cap, "bus.rs485: true or false");
    }
    m->rs485 = cJSON_IsTrue(r);
    return GATEWAY_MAP_OK;
}

static gateway_map_err parse_point(const cJSON *o, size_t i, gateway_point *p, char *msg,
                                   size_t cap)
{
    static const char *const keys[] = {"name",  "unit",   "function", "address",
                                       "scale", "offset", "signed",   NULL};
    const char *bad = NULL;
    if (!cJSON_IsObject(o)) {
        return fail(msg, cap, "points[%zu]: must be an object", i);
    }
    if (!only_keys(o, keys, &bad)) {
        return fail(msg, cap, "points[%zu].%s: unknown key", i, bad);
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    if (!cJSON_IsString(name) || !name->valuestring[0] ||
        strlen(name->valuestring) >= sizeof p->name) {
        return fail(msg, cap, "points[%zu].name: a non-empty string under %zu bytes", i,
                    sizeof p->name);
    }
    for (const char *c = name->valuestring; *c; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_')) {
            return fail(msg, cap, "points[%zu].name: letters, digits and _ only (a JSON key)", i);
        }
    }
    snprintf(p->name, sizeof p->name, "%s", name->valuestring);
    double d;
    if (!get_int(o, "unit", 1, 247, -1, &d)) {
        return fail(msg, cap, "points[%zu].unit: a slave address, 1..247", i);
    }
    p->unit = (uint8_t)d;
    if (!get_int(o, "function", 3, 4, -1, &d)) {
        return fail(msg, cap, "points[%zu].function: 3 (holding) or 4 (input register)", i);
    }
    p->function = (uint8_t)d;
    if (!get_int(o, "address", 0, 65535, -1, &d)) {
        return fail(msg, cap, "points[%zu].address: 0..65535 (as on the wire)", i);
    }
    p->address = (uint16_t)d;
    p->scale = 1.0;
    p->offset = 0.0;
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "scale");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "offset");
    if ((s && (!cJSON_IsNumber(s) || !isfinite(s->valuedouble) || s->valuedouble == 0.0)) ||
        (f && (!cJSON_IsNumber(f) || !isfinite(f->valuedouble)))) {
        return fail(msg, cap, "points[%zu]: scale (non-zero) and offset must be numbers", i);
    }
    if (s) {
        p->scale = s->valuedouble;
    }
    if (f) {
        p->offset = f->valuedouble;
    }
    const cJSON *sg = cJSON_GetObjectItemCaseSensitive(o, "signed");
    if (sg && !cJSON_IsBool(sg)) {
        return fail(msg, cap, "points[%zu].signed: true or false", i);
    }
    p->is_signed = cJSON_IsTrue(sg);
    return GATEWAY_MAP_OK;
}

gateway_map_err gateway_map_parse(const char *text, size_t len, gateway_map *out, char *msg,
                                  size_t cap)
{
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) {
        snprintf(msg, cap, "not JSON");
        return GATEWAY_MAP_ERR_SYNTAX;
    }
    gateway_map m;
    memset(&m, 0, sizeof m);
    gateway_map_err rc = GATEWAY_MAP_OK;
    static const char *const keys[] = {"bus", "period_ms", "points", "cloud", NULL};
    const char *bad = NULL;
    const cJSON *points = cJSON_GetObjectItemCaseSensitive(root, "points");
    double d;
    if (!cJSON_IsObject(root)) {
        rc = fail(msg, cap, "the config must be a JSON object");
    } else if (!only_keys(root, keys, &bad)) {
        rc = fail(msg, cap, "%s: unknown key", bad);
    } else if ((rc = parse_bus(cJSON_GetObjectItemCaseSensitive(root, "bus"), &m, msg, cap)) !=
               GATEWAY_MAP_OK) {
    } else if (!get_int(root, "period_ms", 100, 3600000, 2000, &d)) {
        rc = fail(msg, cap, "period_ms: a whole number, 100..3600000");
    } else if (!cJSON_IsArray(points) || cJSON_GetArraySize(points) < 1 ||
               cJSON_GetArraySize(points) > GATEWAY_MAX_POINTS) {
        rc = fail(msg, cap, "points: an array of 1..%d points", GATEWAY_MAX_POINTS);
    } else {
        m.period_ms = (uint32_t)d;
        const cJSON *p;
        cJSON_ArrayForEach(p, points)
        {
            if ((rc = parse_point(p, m.n_points, &m.points[m.n_points], msg, cap)) !=
                GATEWAY_MAP_OK) {
                break;
            }
            for (size_t j = 0; j < m.n_points; j++) {
                if (strcmp(m.points[j].name, m.points[m.n_points].name) == 0) {
                    rc = fail(msg, cap, "points[%zu].name: \"%s\" is already points[%zu]",
                              m.n_points, m.points[j].name, j);
                    break;
                }
            }
            if (rc != GATEWAY_MAP_OK) {
                break;
            }
            m.n_points++;
        }
    }
    cJSON_Delete(root);
    if (rc == GATEWAY_MAP_OK) {
        *out = m;
    }
    return rc;
}

double gateway_point_value(const gateway_point *p, uint16_t raw)
{
    double r = p->is_signed ? (double)(int16_t)raw : (double)raw;
    return r * p->scale + p->offset;
}

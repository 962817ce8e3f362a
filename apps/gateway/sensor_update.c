/* The sensor update profile bound to the gateway's bus (either backend); see sensor_update.h. */
#include "sensor_update.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/update.h"

typedef struct link_ctx {
    gateway_bus *c;
    uint8_t unit;
} link_ctx;

/* 0, the exception code, or -1 (no answer / garbled) as the profile's link wants. */
static int result(link_ctx *l, keel_modbus_err e)
{
    if (e == KEEL_MODBUS_OK) {
        return 0;
    }
    if (e == KEEL_MODBUS_ERR_EXCEPTION) {
        return gateway_bus_last_exception(l->c);
    }
    return -1;
}

static int l_read(void *ctx, uint16_t addr, uint16_t count, uint16_t *regs)
{
    link_ctx *l = ctx;
    return result(l, gateway_bus_read_registers(l->c, l->unit, 3, addr, count, regs));
}

static int l_write(void *ctx, uint16_t addr, uint16_t count, const uint16_t *regs)
{
    link_ctx *l = ctx;
    return result(l, gateway_bus_write_registers(l->c, l->unit, addr, count, regs));
}

static int l_write_file(void *ctx, uint16_t file, uint16_t record, uint16_t count,
                        const uint16_t *regs)
{
    link_ctx *l = ctx;
    keel_modbus_file_ref ref = {
        .file = file, .record = record, .count = count, .data = (uint16_t *)regs};
    uint8_t req[KEEL_MODBUS_MAX_PDU], rsp[KEEL_MODBUS_MAX_PDU];
    size_t req_len = 0, rsp_len = 0;
    if (keel_modbus_req_write_file(&ref, 1, req, sizeof req, &req_len) != KEEL_MODBUS_OK) {
        return -1;
    }
    return result(
        l, gateway_bus_transact(l->c, l->unit, req, req_len, rsp, sizeof rsp, &rsp_len));
}

static int l_version(void *ctx, char *out, size_t cap)
{
    link_ctx *l = ctx;
    uint8_t req[8], rsp[KEEL_MODBUS_MAX_PDU];
    size_t req_len = 0, rsp_len = 0;
    if (keel_modbus_req_device_id(4, 2, req, sizeof req, &req_len) != KEEL_MODBUS_OK) {
        return -1;
    }
    int r = result(
        l, gateway_bus_transact(l->c, l->unit, req, req_len, rsp, sizeof rsp, &rsp_len));
    if (r != 0) {
        return r;
    }
    keel_modbus_device_id id;
    if (keel_modbus_rsp_device_id(rsp, rsp_len, &id, NULL) != KEEL_MODBUS_OK || id.count < 1) {
        return -1;
    }
    size_t n = id.objects[0].len < cap - 1 ? id.objects[0].len : cap - 1;
    memcpy(out, id.objects[0].value, n);
    out[n] = '\0';
    return 0;
}

int gateway_sensor_update(gateway_bus *c, uint8_t unit, const char *path,
                          const keel_image_keys *keys, char *body, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(body, cap, "{\"error\":\"cannot read the image file\"}");
        return 400;
    }
    static uint8_t image[1u << 20];
    size_t len = fread(image, 1, sizeof image, f);
    bool too_big = !feof(f);
    fclose(f);
    if (len == 0 || too_big) {
        snprintf(body, cap, "{\"error\":\"the image file is empty or over 1 MiB\"}");
        return 400;
    }
    link_ctx l = {.c = c, .unit = unit};
    keel_update_sensor_link link = {.ctx = &l,
                                    .read_regs = l_read,
                                    .write_regs = l_write,
                                    .write_file = l_write_file,
                                    .read_version = l_version};
    keel_update_sensor_stats st = {0};
    keel_update_error err = {{0}};
    keel_update_err e = keel_update_sensor_push(&link, image, len, keys, NULL, &st, &err);
    char version[64] = "";
    if (l_version(&l, version, sizeof version) != 0) {
        snprintf(version, sizeof version, "unknown");
    }
    /* messages from the update module are plain text without quotes or backslashes */
    for (char *p = err.msg; *p; p++) {
        if (*p == '"' || *p == '\\') {
            *p = '\'';
        }
    }
    if (e == KEEL_UPDATE_OK) {
        /* Armed is not running: the sensor boots the image on trial and falls back if it
         * does not start. The version it reports now says which happened. */
        keel_image_header h;
        keel_image_error ie;
        char want[48] = "?";
        if (keel_image_parse_header(image, len, &h, &ie) == KEEL_IMAGE_OK) {
            snprintf(want, sizeof want, "%u.%u.%lu", h.version.major, h.version.minor,
                     (unsigned long)h.version.patch);
        }
        bool running = strcmp(want, version) == 0;
        snprintf(body, cap,
                 "{\"unit\":%u,\"version\":\"%s\",\"image\":\"%s\",\"result\":\"%s\","
                 "\"bytes\":%llu,\"requests\":%u,\"resumes\":%u}",
                 unit, version, want,
                 running ? "running the new image"
                         : "the new image did not start; the sensor fell back",
                 (unsigned long long)st.bytes_sent, st.requests, st.resumes);
        return running ? 200 : 502;
    }
    bool refused = e == KEEL_UPDATE_ERR_UNKNOWN_KEY || e == KEEL_UPDATE_ERR_SIGNATURE ||
                   e == KEEL_UPDATE_ERR_TARGET || e == KEEL_UPDATE_ERR_ROLLBACK ||
                   e == KEEL_UPDATE_ERR_IMAGE || e == KEEL_UPDATE_ERR_TOO_BIG ||
                   e == KEEL_UPDATE_ERR_ARG;
    snprintf(body, cap, "{\"unit\":%u,\"version\":\"%s\",\"error\":\"%s: %s\"}", unit, version,
             keel_update_err_name(e), err.msg);
    return refused ? 422 : 502;
}

/* The sensor update profile bound to the gateway's bus (either backend); see sensor_update.h. */
#include "sensor_update.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <unistd.h>

#include "fetch.h"
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
    return result(l, gateway_bus_transact(l->c, l->unit, req, req_len, rsp, sizeof rsp, &rsp_len));
}

static int l_version(void *ctx, char *out, size_t cap)
{
    link_ctx *l = ctx;
    uint8_t req[8], rsp[KEEL_MODBUS_MAX_PDU];
    size_t req_len = 0, rsp_len = 0;
    if (keel_modbus_req_device_id(4, 2, req, sizeof req, &req_len) != KEEL_MODBUS_OK) {
        return -1;
    }
    int r = result(l, gateway_bus_transact(l->c, l->unit, req, req_len, rsp, sizeof rsp, &rsp_len));
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
    size_t len = 0;
    uint8_t *image = gateway_image_read(path, &len, body, cap);
    if (!image) {
        return 400;
    }
    int status = gateway_sensor_push(c, unit, image, len, keys, NULL, NULL, body, cap);
    free(image);
    return status;
}

uint8_t *gateway_image_read(const char *path, size_t *len, char *body, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(body, cap, "{\"error\":\"cannot read the image file\"}");
        return NULL;
    }
    uint8_t *image = malloc(GATEWAY_IMAGE_MAX + 1);
    size_t n = image ? fread(image, 1, GATEWAY_IMAGE_MAX + 1, f) : 0;
    fclose(f);
    if (n == 0 || n > GATEWAY_IMAGE_MAX) {
        snprintf(body, cap, "{\"error\":\"the image file is empty or over 1 MiB\"}");
        free(image);
        return NULL;
    }
    *len = n;
    return image;
}

int gateway_sensor_push(gateway_bus *c, uint8_t unit, const uint8_t *image, size_t len,
                        const keel_image_keys *keys,
                        void (*progress)(void *ctx, uint32_t sent, uint32_t total), void *pctx,
                        char *body, size_t cap)
{
    link_ctx l = {.c = c, .unit = unit};
    keel_update_sensor_link link = {.ctx = &l,
                                    .read_regs = l_read,
                                    .write_regs = l_write,
                                    .write_file = l_write_file,
                                    .read_version = l_version};
    keel_update_sensor_stats st = {0};
    keel_update_error err = {{0}};
    keel_update_sensor_opts opts = {.progress = progress, .progress_ctx = pctx};
    keel_update_err e = keel_update_sensor_push(&link, image, len, keys, &opts, &st, &err);
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

/* ---- the push as a background job ---- */

static void job_progress(void *ctx, uint32_t sent, uint32_t total)
{
    gateway_push_job *j = ctx;
    atomic_store(&j->total, total);
    atomic_store(&j->sent, sent);
}

static void *job_main(void *arg)
{
    gateway_push_job *j = arg;
    if (!j->image) {
        char why[256];
        int status = 502;
        j->image = gateway_fetch(j->url, j->tunnel_fd, j->ca_file, GATEWAY_IMAGE_MAX, &j->len,
                                 &status, why, sizeof why);
        j->tunnel_fd = -1; /* taken by the fetch */
        if (!j->image) {
            cJSON *b = cJSON_CreateObject();
            cJSON_AddNumberToObject(b, "unit", j->unit);
            cJSON_AddStringToObject(b, "error", why); /* escaped: curl's words may have quotes */
            char *text = cJSON_PrintUnformatted(b);
            snprintf(j->body, sizeof j->body, "%s", text ? text : "{}");
            cJSON_free(text);
            cJSON_Delete(b);
            j->status = status;
            atomic_store(&j->done, true);
            return NULL;
        }
        atomic_store(&j->total, (uint32_t)j->len);
    }
    atomic_store(&j->fetched, true);
    keel_image_keys keys = {.keys = &j->key, .count = 1};
    j->status = gateway_sensor_push(j->bus, j->unit, j->image, j->len, &keys, job_progress, j,
                                    j->body, sizeof j->body);
    atomic_store(&j->done, true);
    return NULL;
}

int gateway_push_start(gateway_push_job *j, gateway_bus *bus, uint8_t unit, uint8_t *image,
                       size_t len, const char *url, int tunnel_fd, const keel_image_pubkey *key)
{
    if (j->running || (!image && (!url || strlen(url) >= sizeof j->url))) {
        free(image);
        if (tunnel_fd >= 0) {
            close(tunnel_fd);
        }
        return -1;
    }
    snprintf(j->url, sizeof j->url, "%s", image ? "" : url);
    j->tunnel_fd = tunnel_fd;
    atomic_store(&j->fetched, false);
    j->bus = bus;
    j->unit = unit;
    j->image = image;
    j->len = len;
    j->key = *key;
    j->status = 0;
    j->body[0] = '\0';
    atomic_store(&j->sent, 0);
    atomic_store(&j->total, (uint32_t)len);
    atomic_store(&j->done, false);
    if (pthread_create(&j->thread, NULL, job_main, j) != 0) {
        free(image);
        j->image = NULL;
        if (tunnel_fd >= 0) {
            close(tunnel_fd);
        }
        return -1;
    }
    j->running = true;
    return 0;
}

bool gateway_push_reap(gateway_push_job *j)
{
    if (!j->running || !atomic_load(&j->done)) {
        return false;
    }
    (void)pthread_join(j->thread, NULL);
    free(j->image);
    j->image = NULL;
    j->running = false;
    return true;
}

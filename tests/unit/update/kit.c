/* The test device behind kit.h. */
#include "kit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void must(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "kit: %s failed\n", what);
        abort();
    }
}

void kit_make_release(kit *k, kit_release *r, uint32_t payload, uint16_t major, uint32_t counter,
                      const keel_image_seckey *image_key, const keel_image_seckey *manifest_key,
                      const uint8_t *component, const char *hw, uint64_t expires)
{
    uint8_t *p = malloc(payload);
    must(p != NULL, "malloc");
    for (uint32_t i = 0; i < payload; i++) {
        p[i] = (uint8_t)(i * 31u + major * 7u + (i >> 9));
    }
    keel_image_header h = {.version = {major, 0, 0}, .security_counter = counter,
                           .payload_size = payload};
    memcpy(h.component, component ? component : k->component, KEEL_IMAGE_UUID_SIZE);
    r->image = malloc(keel_image_size(payload));
    must(r->image != NULL, "malloc");
    must(keel_image_sign(&h, p, image_key ? image_key : &k->sec, r->image, keel_image_size(payload),
                         &r->image_len) == KEEL_IMAGE_OK,
         "sign");
    free(p);
    keel_release m = {.version = h.version, .security_counter = counter, .serial = major,
                       .expires = expires, .chunk_size = k->chunk_size};
    memcpy(m.component, h.component, KEEL_IMAGE_UUID_SIZE);
    snprintf(m.hardware, sizeof m.hardware, "%s", hw ? hw : KIT_HW);
    snprintf(m.image_name, sizeof m.image_name, "v%u.kimg", major);
    uint32_t count = (uint32_t)((r->image_len + k->chunk_size - 1) / k->chunk_size);
    r->manifest = malloc(keel_release_size(count));
    must(r->manifest != NULL, "malloc");
    must(keel_release_make(&m, r->image, r->image_len, manifest_key ? manifest_key : &k->sec,
                            r->manifest, keel_release_size(count), &r->manifest_len) ==
             KEEL_IMAGE_OK,
         "manifest");
    r->counter = counter;
}

void kit_release_free(kit_release *r)
{
    free(r->image);
    free(r->manifest);
    memset(r, 0, sizeof *r);
}

void kit_init(kit *k, uint32_t payload, uint32_t chunk_size, uint32_t erase, uint32_t write)
{
    memset(k, 0, sizeof *k);
    must(keel_image_keygen(&k->pub, &k->sec) == KEEL_IMAGE_OK, "keygen");
    must(keel_image_keygen(&k->other_pub, &k->other_sec) == KEEL_IMAGE_OK, "keygen");
    must(keel_image_uuid_parse("6b65656c-0000-4000-8000-000000000001", k->component), "uuid");
    k->chunk_size = chunk_size;
    uint32_t slot = (keel_image_size(payload) + 4 * erase) / erase * erase;
    k->geo = (keel_update_flash_geometry){slot, 2 * 4096 + erase, erase, write};
    k->geo.manifest_size = (k->geo.manifest_size + erase - 1) / erase * erase;
    kit_make_release(k, &k->v1, payload, 1, 1, NULL, NULL, NULL, NULL, KIT_NOW_UNIX + 3600);
    kit_make_release(k, &k->v2, payload, 2, 2, NULL, NULL, NULL, NULL, KIT_NOW_UNIX + 3600);
}

void kit_fresh_device(kit *k)
{
    keel_update_flash_destroy(k->flash);
    k->flash = keel_update_flash_create(&k->geo);
    must(k->flash != NULL, "flash");
    keel_update_flash_storage(k->flash, &k->storage);
    keel_update_error err;
    must(keel_update_provision(&k->storage, k->v1.image, k->v1.image_len, &err) == KEEL_UPDATE_OK,
         "provision");
    k->cfg = (keel_update_config){.storage = &k->storage, .keys = {&k->pub, 1}};
    memcpy(k->cfg.component, k->component, KEEL_IMAGE_UUID_SIZE);
    snprintf(k->cfg.hardware, sizeof k->cfg.hardware, "%s", KIT_HW);
}

void kit_free(kit *k)
{
    keel_update_flash_destroy(k->flash);
    kit_release_free(&k->v1);
    kit_release_free(&k->v2);
}

int kit_boot_version(kit *k, keel_update_status *st)
{
    keel_update_agent *a;
    keel_update_error err;
    if (keel_update_open(&k->cfg, &a, &err) != KEEL_UPDATE_OK) {
        return -1;
    }
    keel_update_boot_info b;
    int v = -1;
    if (keel_update_boot(a, 0, &b, &err) == KEEL_UPDATE_OK) {
        v = b.image.header.version.major;
        if (st) {
            keel_update_get_status(a, st);
        }
    }
    keel_update_close(a);
    return v;
}

/* One power-on of the device: what it does until it restarts, loses power, or is done. */
static kit_result one_boot(kit *k, const kit_release *target, bool *done)
{
    keel_update_agent *a;
    keel_update_error err;
    keel_update_err e = keel_update_open(&k->cfg, &a, &err);
    if (e != KEEL_UPDATE_OK) {
        if (!keel_update_flash_powered(k->flash)) {
            return KIT_CUT;
        }
        fprintf(stderr, "kit: open: %s\n", err.msg);
        return KIT_BRICKED;
    }
    kit_result res = KIT_DONE;
    keel_update_boot_info b;
    e = keel_update_boot(a, 0, &b, &err);
    uint16_t tv = (uint16_t)(target->manifest[40] | (target->manifest[41] << 8));
    if (e != KEEL_UPDATE_OK) {
        res = keel_update_flash_powered(k->flash) ? KIT_BRICKED : KIT_CUT;
        if (res == KIT_BRICKED) {
            fprintf(stderr, "kit: boot: %s\n", err.msg);
        }
        goto out;
    }
    if (b.image.header.version.major != 1 && b.image.header.version.major != tv) {
        fprintf(stderr, "kit: booted version %u\n", b.image.header.version.major);
        res = KIT_BRICKED;
        goto out;
    }
    keel_update_status st;
    keel_update_get_status(a, &st);
    if (st.running_trial) {
        e = keel_update_confirm(a, &err);
    } else if (st.running_version.major == tv && st.state == KEEL_UPDATE_IDLE) {
        *done = true;
        goto out;
    } else {
        e = keel_update_begin(a, target->manifest, target->manifest_len, KIT_NOW_UNIX, &err);
        keel_update_chunk_req req;
        while (e == KEEL_UPDATE_OK && keel_update_next_chunk(a, &req)) {
            if (kit_run_chunks > 1) {
                keel_update_status rs;
                keel_update_get_status(a, &rs);
                uint32_t n = rs.chunks_total - req.index;
                n = n < kit_run_chunks ? n : kit_run_chunks;
                size_t len = (size_t)n * k->chunk_size;
                len = req.offset + len > target->image_len ? target->image_len - req.offset : len;
                e = keel_update_chunks(a, req.index, n, target->image + req.offset, len, &err);
            } else {
                e = keel_update_chunk(a, req.index, target->image + req.offset, req.length, &err);
            }
        }
        if (e == KEEL_UPDATE_OK) {
            e = keel_update_install(a, &err);
        }
    }
    if (e != KEEL_UPDATE_OK) {
        res = keel_update_flash_powered(k->flash) ? KIT_BRICKED : KIT_CUT;
        if (res == KIT_BRICKED) {
            fprintf(stderr, "kit: %s: %s\n", keel_update_err_name(e), err.msg);
        }
    }
out:
    keel_update_close(a);
    return res;
}

uint32_t kit_run_chunks;

kit_result kit_converge(kit *k, const kit_release *target, int restarts)
{
    for (int i = 0; i <= restarts; i++) {
        bool done = false;
        kit_result r = one_boot(k, target, &done);
        if (r != KIT_DONE || done) {
            return r;
        }
    }
    fprintf(stderr, "kit: no convergence after %d restarts\n", restarts);
    return KIT_BRICKED;
}

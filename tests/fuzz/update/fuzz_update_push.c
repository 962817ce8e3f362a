/* Fuzzes the agent's push mode, which takes bytes from a field bus (the sensor profile): any
 * sequence of begin / write / commit / restart, with lengths, offsets, hashes and data from the
 * input, on a small flash model. Whatever the sequence, the device must still boot an image
 * afterwards (the provisioned one, or a verified one the sequence managed to commit). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/update.h"

static keel_image_pubkey pub;
static uint8_t *image;
static size_t image_len;
static const uint8_t component[16] = {1, 2, 3, 4};

static void init(void)
{
    keel_image_seckey sec;
    if (keel_image_keygen(&pub, &sec) != KEEL_IMAGE_OK) {
        abort();
    }
    uint8_t payload[2000];
    memset(payload, 0x5a, sizeof payload);
    keel_image_header h = {.version = {1, 0, 0}, .security_counter = 1,
                           .payload_size = sizeof payload};
    memcpy(h.component, component, 16);
    image = malloc(keel_image_size(sizeof payload));
    if (keel_image_sign(&h, payload, &sec, image, keel_image_size(sizeof payload), &image_len) !=
        KEEL_IMAGE_OK) {
        abort();
    }
}

static keel_update_agent *boot(keel_update_config *cfg)
{
    keel_update_agent *a;
    keel_update_error err;
    keel_update_boot_info b;
    if (keel_update_open(cfg, &a, &err) != KEEL_UPDATE_OK ||
        keel_update_boot(a, 0, &b, &err) != KEEL_UPDATE_OK) {
        fprintf(stderr, "device no longer boots: %s\n", err.msg);
        abort();
    }
    return a;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!image) {
        init();
    }
    keel_update_flash_geometry g = {8192, 1024, 256, 8};
    keel_update_flash *f = keel_update_flash_create(&g);
    keel_update_storage st;
    keel_update_flash_storage(f, &st);
    keel_update_error err;
    if (keel_update_provision(&st, image, image_len, &err) != KEEL_UPDATE_OK) {
        abort();
    }
    keel_update_config cfg = {.storage = &st, .keys = {&pub, 1}};
    memcpy(cfg.component, component, 16);
    keel_update_agent *a = boot(&cfg);
    size_t i = 0;
    while (i < size) {
        uint8_t op = data[i++] % 5;
        if (op == 0 && size - i >= 34) { /* begin: len (2) + hash (32) */
            uint32_t len = (uint32_t)(data[i] | (data[i + 1] << 8)) % 9000u;
            (void)!keel_update_push_begin(a, len, data + i + 2, &err);
            i += 34;
        } else if (op == 1 && size - i >= 3) { /* write: off (2) + n (1) + bytes */
            uint32_t off = (uint32_t)(data[i] | (data[i + 1] << 8));
            uint32_t n = data[i + 2];
            i += 3;
            n = n > size - i ? (uint32_t)(size - i) : n;
            (void)!keel_update_push_write(a, off, data + i, n, &err);
            i += n;
        } else if (op == 2) {
            (void)!keel_update_push_commit(a, &err);
        } else if (op == 3) { /* restart */
            keel_update_close(a);
            a = boot(&cfg);
        } else if (op == 4) {
            keel_update_status s;
            keel_update_get_status(a, &s);
            (void)keel_update_push_next(a);
        }
    }
    keel_update_close(a);
    keel_update_close(boot(&cfg));
    keel_update_flash_destroy(f);
    return 0;
}

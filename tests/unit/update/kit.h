/* A small test device for the update agent: keys, releases v1/v2, and a driver that plays the
 * device's part (boot, download, install, restart, confirm) on a flash model. Shared by the
 * agent, attack and power-cut tests. */
#ifndef KEEL_TEST_UPDATE_KIT_H
#define KEEL_TEST_UPDATE_KIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/update.h"

#define KIT_NOW_UNIX 1800000000ull
#define KIT_HW "keel-test-1"

typedef struct kit_release {
    uint8_t *image;
    size_t image_len;
    uint8_t *manifest;
    size_t manifest_len;
    uint32_t counter;
} kit_release;

typedef struct kit {
    keel_image_pubkey pub, other_pub;
    keel_image_seckey sec, other_sec;
    uint8_t component[KEEL_IMAGE_UUID_SIZE];
    keel_update_flash_geometry geo;
    uint32_t chunk_size;
    kit_release v1, v2;
    keel_update_flash *flash;
    keel_update_storage storage;
    keel_update_config cfg;
} kit;

/* Keys, component, and releases v1 (counter 1) and v2 (counter 2) with `payload` bytes each. */
void kit_init(kit *k, uint32_t payload, uint32_t chunk_size, uint32_t erase, uint32_t write);
void kit_free(kit *k);
/* A fresh flash with v1 provisioned. */
void kit_fresh_device(kit *k);
/* Makes a release signed with `key` (the kit's own when NULL) with the given fields. */
void kit_make_release(kit *k, kit_release *r, uint32_t payload, uint16_t major, uint32_t counter,
                      const keel_image_seckey *image_key, const keel_image_seckey *manifest_key,
                      const uint8_t *component, const char *hw, uint64_t expires);
void kit_release_free(kit_release *r);

typedef enum kit_result { KIT_DONE, KIT_CUT, KIT_BRICKED } kit_result;

/* Plays the device until it runs `target` confirmed (boot, begin, chunks, install, restart,
 * boot, confirm), at most `restarts` restarts. KIT_CUT as soon as the storage loses power;
 * KIT_BRICKED if a boot ever fails or runs anything but v1 or the target. */
kit_result kit_converge(kit *k, const kit_release *target, int restarts);
/* 0 or 1: the kit stores chunk by chunk (keel_update_chunk); N > 1: in runs of N consecutive
 * chunks from the first missing one (keel_update_chunks; some may be stored already). */
extern uint32_t kit_run_chunks;
/* Boots once and returns the running major version (-1 if the boot failed). */
int kit_boot_version(kit *k, keel_update_status *st);

#endif

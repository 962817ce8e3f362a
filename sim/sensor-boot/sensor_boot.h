/* The simulated MODBUS sensor's bootloader and update profile.
 *
 * A sensor has a flash chip (the update flash model, persisted to a file after every sync, so
 * killing the simulator is a real power cut), two slots, and the update agent as its
 * bootloader: at power-on it verifies the image it is about to boot (SHA-256 and Ed25519,
 * libsodium), runs a new image on trial, and falls back when the trial image fails to start.
 * The "firmware" is the image's payload: a payload starting with "KEEL-SENSOR-FW" starts and
 * confirms itself (its self-test passed); anything else fails to start, and the bootloader
 * restarts it until the trial's boots are used up and it reverts.
 *
 * The update profile's registers and file records (docs/updates.md) are served by the
 * handlers below, whose signatures match keel_modbus_model's callbacks: each returns a MODBUS
 * exception code, 0 when done. A simulator binds them to its MODBUS slave.
 */
#ifndef KEEL_SIM_SENSOR_BOOT_H
#define KEEL_SIM_SENSOR_BOOT_H

#include <stdbool.h>
#include <stdint.h>

#include "keel/update.h"

typedef struct sensor_boot sensor_boot;

typedef struct sensor_boot_config {
    const char *flash_path;        /* persisted flash */
    keel_image_keys keys;
    uint8_t component[KEEL_IMAGE_UUID_SIZE];
    const char *hardware;
    uint32_t slot_size;            /* multiple of 1024 */
    uint16_t base;                 /* 0: KEEL_UPDATE_SENSOR_BASE */
} sensor_boot_config;

/* Writes a fresh flash file holding `image` in slot A. */
int sensor_boot_provision(const sensor_boot_config *cfg, const uint8_t *image, size_t len);

/* Powers the sensor on from its flash file (boots; starts the firmware). NULL if it cannot
 * boot anything; `why` says why. */
sensor_boot *sensor_boot_power_on(const sensor_boot_config *cfg, char *why, size_t why_cap);
/* Power off, as a cut: what was not synced is lost. Frees s. */
void sensor_boot_power_off(sensor_boot *s);
/* Runs a restart the sensor asked for (after a commit). Returns false if it no longer boots. */
bool sensor_boot_poll(sensor_boot **s, char *why, size_t why_cap);

/* A commit asked for a restart (run it with sensor_boot_poll once the reply is out). */
bool sensor_boot_restart_pending(const sensor_boot *s);
/* The running firmware's version "X.Y.Z", and whether it runs on trial. */
const char *sensor_boot_version(const sensor_boot *s);
bool sensor_boot_on_trial(const sensor_boot *s);
/* The flash model, for tests that cut power at a chosen operation. */
keel_update_flash *sensor_boot_flash(sensor_boot *s);

/* MODBUS model callbacks (ctx is the sensor_boot). */
uint8_t sensor_boot_read_regs(void *ctx, int table, uint16_t addr, uint16_t count, uint16_t *regs);
uint8_t sensor_boot_write_regs(void *ctx, uint16_t addr, uint16_t count, const uint16_t *regs);
uint8_t sensor_boot_write_file(void *ctx, uint16_t file, uint16_t record, uint16_t count,
                               const uint16_t *regs);
uint8_t sensor_boot_read_file(void *ctx, uint16_t file, uint16_t record, uint16_t count,
                              uint16_t *regs);
const char *sensor_boot_device_id(void *ctx, uint8_t id);

#endif

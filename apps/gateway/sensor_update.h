/* updateSensorFirmware: the gateway pushes a signed image to a MODBUS sensor with the update
 * module's sensor profile (keel_update_sensor_push), over the gateway's bus (its own MODBUS
 * client, or the RT core's line driver through the bridge: gateway_bus.h). The
 * image is verified against the gateway's trusted keys before a single record is sent; the
 * sensor verifies it again before it boots it, and falls back if it does not start. */
#ifndef KEEL_GATEWAY_SENSOR_UPDATE_H
#define KEEL_GATEWAY_SENSOR_UPDATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/image.h"
#include "gateway_bus.h"
#include "keel/modbus.h"

/* Pushes the image file at `path` to `unit`. Returns an HTTP-like status for the method's
 * answer (200 done, 400 bad image file, 422 refused by verification, 502 the sensor failed or
 * did not answer) and writes a JSON body into body (cap bytes), with the version the sensor
 * runs afterwards when it could be read. */
#define GATEWAY_IMAGE_MAX (1u << 20)

/* Reads an image file (at most 1 MiB) into a malloc'd buffer; NULL with a JSON error in body. */
uint8_t *gateway_image_read(const char *path, size_t *len, char *body, size_t cap);

/* The push of an image in memory; progress (may be NULL) as keel_update_sensor_opts has it.
 * Same statuses as gateway_sensor_update. */
int gateway_sensor_push(gateway_bus *c, uint8_t unit, const uint8_t *image, size_t len,
                        const keel_image_keys *keys,
                        void (*progress)(void *ctx, uint32_t sent, uint32_t total), void *pctx,
                        char *body, size_t cap);

/* The push in a thread of its own, so the gateway keeps polling while it runs (the bus
 * serialises the two per transaction: gateway_bus.h). The main loop watches sent/total for
 * progress and reaps the job when done is set, then answers the method with status/body. */
typedef struct gateway_push_job {
    pthread_t thread;
    bool running;        /* started and not yet reaped (main thread only) */
    atomic_bool done;    /* set by the job when status and body are final */
    atomic_bool fetched; /* the image is in memory (at once for a file; after a URL's GET) */
    atomic_uint sent, total;
    gateway_bus *bus;
    uint8_t unit;
    uint8_t *image; /* taken; freed when reaped (NULL: fetched from url first) */
    size_t len;
    char url[1024];
    int tunnel_fd;       /* keeld's tunnel to the URL's host, or -1 */
    const char *ca_file; /* https with a private CA (set before start), or NULL */
    keel_image_pubkey key;
    int status;
    char body[512];
} gateway_push_job;

/* Starts a job for an image in memory (taken), or for the image at url (image NULL; fetched
 * in the job, over tunnel_fd if >= 0, which is taken). A job already running: -1, the image
 * and the fd released. */
int gateway_push_start(gateway_push_job *j, gateway_bus *bus, uint8_t unit, uint8_t *image,
                       size_t len, const char *url, int tunnel_fd, const keel_image_pubkey *key);
/* True once (the job finished and was joined): status and body are its answer. */
bool gateway_push_reap(gateway_push_job *j);

int gateway_sensor_update(gateway_bus *c, uint8_t unit, const char *path,
                          const keel_image_keys *keys, char *body, size_t cap);

#endif

/* updateSensorFirmware: the gateway pushes a signed image to a MODBUS sensor with the update
 * module's sensor profile (keel_update_sensor_push), over the gateway's bus (its own MODBUS
 * client, or the RT core's line driver through the bridge: gateway_bus.h). The
 * image is verified against the gateway's trusted keys before a single record is sent; the
 * sensor verifies it again before it boots it, and falls back if it does not start. */
#ifndef KEEL_GATEWAY_SENSOR_UPDATE_H
#define KEEL_GATEWAY_SENSOR_UPDATE_H

#include <stddef.h>
#include <stdint.h>

#include "keel/image.h"
#include "gateway_bus.h"
#include "keel/modbus.h"

/* Pushes the image file at `path` to `unit`. Returns an HTTP-like status for the method's
 * answer (200 done, 400 bad image file, 422 refused by verification, 502 the sensor failed or
 * did not answer) and writes a JSON body into body (cap bytes), with the version the sensor
 * runs afterwards when it could be read. */
int gateway_sensor_update(gateway_bus *c, uint8_t unit, const char *path,
                          const keel_image_keys *keys, char *body, size_t cap);

#endif

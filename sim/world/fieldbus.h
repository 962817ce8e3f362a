/* The world's two MODBUS sensors (seed 002), their data models and firmware:
 *   unit 1  room sensor:        input registers 0 temperature (0.01 C, signed), 1 relative
 *                               humidity (0.01 %), 2 pressure (0.1 hPa)
 *   unit 2  supply-air sensor:  input register 0 temperature of the air the HVAC blows
 *                               (0.01 C, signed): hot when heating, cold when cooling, the
 *                               room's when off; holding register 0 its sampling period (s)
 * With fieldbus_attach_bootloader(), unit 2 also speaks the update module's sensor update
 * profile (holding registers at KEEL_UPDATE_SENSOR_BASE, image records with FC 21) through the
 * simulated sensor bootloader (sim/sensor-boot), and FC 43/14 reports its firmware version.
 * Both answer through Keel's MODBUS slave core; identity (FC 43/14) names them. Readings come
 * from the world's state at the moment the request is answered.
 *
 * Two ways in, to the same sensors (same registers, same bootloader and flash):
 *  - the simulated RS485 bus in the world's virtual time (world.h, world_config.bus): each
 *    sensor is a device with its own UART, latency and driver enable (sim/devices), and the
 *    RT core's line driver is the master, moving the gateway's frames (the bridge);
 *  - optionally, RTU frames over a TCP stream (fieldbus_listen: what an Ethernet-to-RS485
 *    serial server gives a real gateway). With fieldbus_via_world() the frames go out on the
 *    simulated bus through the world's serial server node (a second master on the line, in
 *    virtual time: world_serial_submit), one at a time; without it they are answered at once
 *    by the sensors' models, outside virtual time (unit tests without a world bus). */
#ifndef KEEL_SIM_FIELDBUS_H
#define KEEL_SIM_FIELDBUS_H

#include <stdbool.h>
#include <stdint.h>

#include "keel/modbus.h"
#include "sensor_boot.h"
#include "world.h"

#define FIELDBUS_MAX_CONN 8

typedef struct fieldbus fieldbus;

/* The sensors without a TCP port. NULL when out of memory. */
fieldbus *fieldbus_new(void);
/* Also listens on 127.0.0.1:port (0: any free port; *bound gets it). -1 with errno. */
int fieldbus_listen(fieldbus *b, uint16_t port, uint16_t *bound);
/* fieldbus_new + fieldbus_listen. NULL with errno on failure. */
fieldbus *fieldbus_open(uint16_t port, uint16_t *bound);
void fieldbus_close(fieldbus *b);
/* Fills fds (up to max) with the descriptors to poll for input; returns how many. */
int fieldbus_fds(const fieldbus *b, int *fds, int max);
/* Handles whatever is readable on fd (accepts, reads, answers or submits complete frames). */
void fieldbus_handle(fieldbus *b, int fd);
/* TCP frames go through the world's bus (its serial server) rather than straight to the
 * models. Then call fieldbus_service() after every run of the world. */
void fieldbus_via_world(fieldbus *b, bool on);
/* Delivers a reply the world's serial server finished, and submits the next waiting frame. */
void fieldbus_service(fieldbus *b);
/* Gives unit 2 a bootloader (taken; closed with the bus). */
void fieldbus_attach_bootloader(fieldbus *b, sensor_boot *s);
/* The supply-air sensor's firmware version ("" without a bootloader). */
const char *fieldbus_sensor_version(const fieldbus *b);

/* The data model of unit 1 (room) or 2 (supply air), for a slave core whose ctx is b; NULL
 * for another unit. */
const keel_modbus_model *fieldbus_model(uint8_t unit);
/* After a device on the simulated bus answered a frame: runs a restart the bootloader asked
 * for (a commit), as the TCP path does after each frame. */
void fieldbus_after_frame(fieldbus *b);

/* Frames answered and frames refused (bad CRC, garbage), for the status. */
void fieldbus_counts(const fieldbus *b, uint32_t *answered, uint32_t *refused);

/* The sensor models on their own, for tests: the registers unit `unit` has now. */
uint8_t fieldbus_read_input(const world_status *s, uint8_t unit, uint16_t addr, uint16_t count,
                            uint16_t *regs);

#endif

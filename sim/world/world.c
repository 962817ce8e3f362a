/* The world's devices and the firmware's board layer on the simulator; see world.h.
 *
 * The sensor and the actuator are the board's envmon_rt_hw: a sensor read advances the room to
 * the present (with the HVAC mode it had since the last step) and costs 600 us of virtual time
 * (an I2C transaction at 100 kHz); setting the HVAC first brings the room up to date under the
 * old mode, so the room integrates exactly the mode history the firmware produced.
 *
 * The doorbells: the connected core rings the RT core's eventfd, which the sim port polls and
 * turns into a virtual interrupt (one line per channel: the environment service's, the
 * bridge's); its handler drains the eventfd and releases the semaphore that channel's
 * blocking calls sleep on. The RT core rings back by writing the connected core's eventfd (a
 * mailbox register write on real silicon).
 *
 * The RS485 bus: the board's UART interrupt reads the status (50 ns, a register read) and the
 * received byte, and calls the line driver's ISR, as a real board's handler would; the driver
 * enable is a GPIO on the bus model. */
#include "world.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bridge_rt.h"
#include "envmon_rt.h"
#include "fieldbus.h"
#include "keel/rtos_sim.h"
#include "modbus_dev.h"
#include "serial_master.h"
#include "sim_rs485.h"
#include "sim_uart.h"

#define WORLD_IRQ_BELL 5u
#define WORLD_IRQ_BRIDGE_BELL 6u
#define WORLD_IRQ_UART 7u
#define SENSOR_READ_US 600u

/* One intercore channel's RT end, mapped, with its doorbell. */
typedef struct world_chan {
    keel_icc_end end;
    bool have_end;
    void *map;
    size_t map_len;
    keel_icc_rt rt;
    keel_rtos_sem sem;
} world_chan;

static struct world {
    bool exists;
    world_config cfg;
    char state_path[PATH_MAX];
    room_state room;
    uint8_t hvac;
    uint32_t hvac_changes;
    world_chan env, bridge; /* the environment service's channel, the bridge's */
    envmon_rt fw;
    /* the RS485 bus */
    bool have_bus;
    keel_modbus_line line;
    sim_rs485_bus bus;
    sim_uart uart; /* the RT core's */
    int node;
    keel_rs485 drv;
    sim_modbus_dev room_dev, supply_dev;
    sim_serial_master serial; /* the serial server behind keel-sim's TCP port */
    bridge_rt br;
} W;

const char *world_err_name(world_err e)
{
    static const char *const names[WORLD_ERR_COUNT] = {
        [WORLD_OK] = "WORLD_OK",
        [WORLD_ERR_BUSY] = "WORLD_ERR_BUSY",
        [WORLD_ERR_CHANNEL] = "WORLD_ERR_CHANNEL",
        [WORLD_ERR_RTOS] = "WORLD_ERR_RTOS",
        [WORLD_ERR_STATE] = "WORLD_ERR_STATE",
    };
    return (unsigned)e < WORLD_ERR_COUNT ? names[e] : "WORLD_ERR_UNKNOWN";
}

world_config world_config_default(void)
{
    return (world_config){
        .state_dir = NULL,
        .start_temp_c = 18.0,
        .room = room_default_params(),
        .seed = 1,
        .sensor_noise_c = 0.0,
    };
}

static room_hvac room_mode(uint8_t m)
{
    return m == ENVMON_HVAC_HEATING   ? ROOM_HVAC_HEATING
           : m == ENVMON_HVAC_COOLING ? ROOM_HVAC_COOLING
                                      : ROOM_HVAC_OFF;
}

static void room_catch_up(void)
{
    room_advance(&W.room, &W.cfg.room, room_mode(W.hvac), keel_sim_now_us());
}

/* ---- the board's envmon hardware ---- */

static bool hw_sensor_read(void *ctx, envmon_env *out)
{
    (void)ctx;
    keel_sim_busy_us(SENSOR_READ_US);
    room_catch_up();
    double noise = 0.0;
    if (W.cfg.sensor_noise_c > 0.0) {
        double u = (double)(keel_sim_random() >> 11) / 9007199254740992.0; /* [0,1) */
        noise = (2.0 * u - 1.0) * W.cfg.sensor_noise_c;
    }
    out->temp_mc = (int32_t)lround((W.room.temp_c + noise) * 1000.0);
    out->humidity_cp = (uint32_t)lround(W.room.humidity_pct * 100.0);
    out->pressure_pa = (uint32_t)lround(W.room.pressure_hpa * 100.0);
    return true;
}

static bool hw_hvac_set(void *ctx, uint8_t mode)
{
    (void)ctx;
    if (mode > ENVMON_HVAC_COOLING) {
        return false;
    }
    room_catch_up();
    if (mode != W.hvac) {
        W.hvac_changes++;
    }
    W.hvac = mode;
    return true;
}

static uint64_t hw_now_us(void *ctx)
{
    (void)ctx;
    return keel_sim_now_us();
}

/* ---- the doorbells ---- */

static void bell_irq(void *arg)
{
    world_chan *c = arg;
    uint64_t v;
    while (read(c->end.bell_in, &v, sizeof v) == (ssize_t)sizeof v) {
    }
    (void)keel_rtos_sem_put(&c->sem);
}

static void bell_ring(void *ctx)
{
    world_chan *c = ctx;
    uint64_t one = 1;
    /* EAGAIN means the counter is saturated: the peer has a ring pending anyway. */
    (void)!write(c->end.bell_out, &one, sizeof one);
}

static void bell_wait(void *ctx)
{
    world_chan *c = ctx;
    (void)keel_rtos_sem_get(&c->sem, KEEL_RTOS_WAIT_FOREVER);
}

static world_err attach_channel(world_chan *c, keel_icc_end *e, unsigned irq)
{
    struct stat st;
    if (fstat(e->mem, &st) != 0 || st.st_size <= 0) {
        return WORLD_ERR_CHANNEL;
    }
    c->map_len = (size_t)st.st_size;
    c->map = mmap(NULL, c->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, e->mem, 0);
    if (c->map == MAP_FAILED) {
        c->map = NULL;
        return WORLD_ERR_CHANNEL;
    }
    c->end = *e;
    c->have_end = true;
    memset(e, 0, sizeof *e);
    e->mem = e->bell_in = e->bell_out = e->link = -1;
    if (keel_rtos_sem_create(&c->sem, 0, 1) != KEEL_RTOS_OK) {
        return WORLD_ERR_RTOS;
    }
    keel_icc_rt_bell bell = {.ring = bell_ring, .wait = bell_wait, .ctx = c};
    if (keel_icc_rt_attach(&c->rt, c->map, c->map_len, c->end.side, &bell) != KEEL_ICC_OK ||
        keel_sim_irq_attach(irq, bell_irq, c) != KEEL_SIM_OK ||
        keel_sim_fd_attach(c->end.bell_in, irq) != KEEL_SIM_OK) {
        return WORLD_ERR_CHANNEL;
    }
    return WORLD_OK;
}

static void detach_channel(world_chan *c)
{
    if (c->have_end) {
        (void)keel_sim_fd_detach(c->end.bell_in);
    }
}

static void close_channel(world_chan *c)
{
    if (c->map) {
        munmap(c->map, c->map_len);
    }
    if (c->have_end) {
        keel_icc_end_close(&c->end);
    }
    c->have_end = false;
    c->map = NULL;
}

/* ---- the RS485 bus: the RT core's UART and line driver, the two sensors ---- */

static void u_write(void *ctx, uint8_t b)
{
    (void)ctx;
    sim_uart_write(&W.uart, b);
}

static void u_mask(void *ctx, uint32_t m)
{
    (void)ctx;
    sim_uart_set_irq_mask(&W.uart, m); /* same bit meanings as keel_rs485 */
}

static void u_clear(void *ctx, uint32_t f)
{
    (void)ctx;
    sim_uart_clear(&W.uart, f);
}

static void u_de(void *ctx, bool on)
{
    (void)ctx;
    sim_rs485_set_de(&W.bus, W.node, on);
}

static void u_rto(void *ctx, uint32_t bits)
{
    (void)ctx;
    sim_uart_set_rto(&W.uart, bits);
}

static uint64_t u_now(void *ctx)
{
    (void)ctx;
    return keel_sim_now_ns();
}

static void u_raise(void *ctx)
{
    (void)ctx;
    (void)keel_sim_irq_raise(WORLD_IRQ_UART);
}

static void u_isr(void *arg)
{
    (void)arg;
    keel_sim_busy_ns(50); /* read the status register */
    uint32_t st = W.uart.status & (W.uart.irq_mask | KEEL_RS485_FE);
    uint8_t b = 0;
    if (st & KEEL_RS485_RXNE) {
        b = sim_uart_read(&W.uart);
    }
    keel_rs485_isr(&W.drv, st, b);
}

static void after_frame(void *ctx)
{
    fieldbus_after_frame(ctx);
}

static world_err bus_create(const world_config *cfg)
{
    W.line =
        (keel_modbus_line){cfg->bus_baud ? cfg->bus_baud : 115200u, 8, KEEL_MODBUS_PARITY_EVEN, 1};
    sim_rs485_init(&W.bus);
    W.have_bus = true;
    sim_uart_init(&W.uart, "rt-core", &W.line);
    W.uart.irq = u_raise;
    W.node = sim_rs485_attach(&W.bus, &W.uart, "rt-core");
    if (W.node < 0 || keel_sim_irq_attach(WORLD_IRQ_UART, u_isr, NULL) != KEEL_SIM_OK) {
        return WORLD_ERR_RTOS;
    }
    keel_rs485_hw hw = {u_write, u_mask, u_clear, u_de, u_rto, u_now, NULL};
    if (keel_rs485_init(&W.drv, &hw, &W.line) != KEEL_RS485_OK) {
        return WORLD_ERR_RTOS;
    }
    keel_modbus_map none = {0};
    uint64_t lat_room = (uint64_t)(cfg->room_latency_us ? cfg->room_latency_us : 1500u) * 1000u;
    uint64_t lat_supply =
        (uint64_t)(cfg->supply_latency_us ? cfg->supply_latency_us : 4000u) * 1000u;
    sim_modbus_dev *d[2] = {&W.room_dev, &W.supply_dev};
    const char *names[2] = {"room-sensor", "supply-sensor"};
    uint64_t lat[2] = {lat_room, lat_supply};
    for (int i = 0; i < 2; i++) {
        if (sim_modbus_dev_init(d[i], names[i], &W.bus, &W.line, (uint8_t)(i + 1), &none, lat[i],
                                NULL) != 0) {
            return WORLD_ERR_RTOS;
        }
        sim_modbus_dev_set_model(d[i], fieldbus_model((uint8_t)(i + 1)), cfg->bus);
        d[i]->after_frame = after_frame;
        d[i]->after_ctx = cfg->bus;
    }
    if (sim_serial_master_init(&W.serial, &W.bus, &W.line, "serial-server") != 0) {
        return WORLD_ERR_RTOS;
    }
    return WORLD_OK;
}

bool world_serial_submit(const uint8_t *frame, size_t len, uint32_t timeout_us)
{
    return W.exists && W.have_bus && sim_serial_master_submit(&W.serial, frame, len, timeout_us);
}

bool world_serial_take(uint8_t *out, size_t cap, size_t *len, int *status)
{
    sim_serial_status st;
    if (!W.exists || !W.have_bus || !sim_serial_master_take(&W.serial, out, cap, len, &st)) {
        return false;
    }
    *status = (int)st;
    return true;
}

world_err world_create(const world_config *cfg, keel_icc_end *rt_end)
{
    if (W.exists || keel_sim_exists()) {
        return WORLD_ERR_BUSY;
    }
    memset(&W, 0, sizeof W);
    W.env.end.mem = W.env.end.bell_in = W.env.end.bell_out = W.env.end.link = -1;
    W.bridge.end = W.env.end;
    W.cfg = *cfg;
    W.cfg.bridge_end = NULL;
    keel_sim_config sc = keel_sim_config_default();
    sc.seed = cfg->seed ? cfg->seed : 1;
    if (keel_sim_create(&sc) != KEEL_SIM_OK) {
        return WORLD_ERR_BUSY;
    }
    W.exists = true;
    room_init(&W.room, &W.cfg.room, cfg->start_temp_c);
    if (cfg->state_dir) {
        snprintf(W.state_path, sizeof W.state_path, "%s/room.state", cfg->state_dir);
        room_state saved;
        if (room_load(&saved, W.state_path) == ROOM_OK) {
            /* Physics resumes where it stopped; the new run's clock starts at 0 again. */
            W.room = saved;
            W.room.time_us = 0;
        }
        W.cfg.state_dir = NULL; /* the path is kept; the caller's string need not live on */
    }
    world_err rc = WORLD_OK;
    if (rt_end) {
        rc = attach_channel(&W.env, rt_end, WORLD_IRQ_BELL);
    }
    if (rc == WORLD_OK && cfg->bus) {
        rc = bus_create(cfg);
    }
    if (rc == WORLD_OK && cfg->bridge_end) {
        if (!cfg->bus) {
            keel_icc_end_close(cfg->bridge_end); /* taken, as promised */
            rc = WORLD_ERR_CHANNEL;              /* a bridge needs a bus to bridge to */
        } else {
            rc = attach_channel(&W.bridge, cfg->bridge_end, WORLD_IRQ_BRIDGE_BELL);
        }
        if (rc == WORLD_OK && bridge_rt_start(&W.br, &W.bridge.rt, &W.drv) != KEEL_RTOS_OK) {
            rc = WORLD_ERR_RTOS;
        }
    }
    if (rc == WORLD_OK) {
        envmon_rt_hw hw = {.sensor_read = hw_sensor_read,
                           .hvac_set = hw_hvac_set,
                           .now_us = hw_now_us,
                           .ctx = NULL};
        /* Without a channel the service thread would block on nothing: give it none. */
        if (envmon_rt_start(&W.fw, &hw, W.env.have_end ? &W.env.rt : NULL) != KEEL_RTOS_OK) {
            rc = WORLD_ERR_RTOS;
        }
    }
    if (rc != WORLD_OK) {
        world_destroy();
    }
    return rc;
}

void world_run_until_us(uint64_t t_us)
{
    (void)keel_sim_run_until(t_us * KEEL_SIM_US);
    room_catch_up();
}

uint64_t world_now_us(void)
{
    return keel_sim_now_us();
}

void world_status_get(world_status *out)
{
    memset(out, 0, sizeof *out);
    room_catch_up();
    out->time_us = keel_sim_now_us();
    out->room_temp_c = W.room.temp_c;
    out->room_humidity_pct = W.room.humidity_pct;
    out->room_pressure_hpa = W.room.pressure_hpa;
    out->hvac = W.hvac;
    envmon_rt_latest(&W.fw, &out->latest);
    out->requests = W.fw.requests;
    out->bad_requests = W.fw.bad_requests;
    out->hvac_changes = W.hvac_changes;
    out->chan_err = (int)W.fw.chan_err;
    out->bus = W.have_bus;
    out->bridge = W.bridge.have_end;
    out->bridge_requests = W.br.requests;
    out->bridge_sent = W.br.sent;
    out->bridge_timeouts = W.br.timeouts;
    out->bridge_line_errors = W.br.line_errors;
    out->bridge_refused = W.br.refused;
    out->bridge_chan_err = (int)W.br.chan_err;
    if (W.have_bus) {
        out->bus_chars = W.bus.stats.chars;
        out->bus_collisions = W.bus.stats.collisions;
        out->bus_garbled = W.bus.stats.garbled;
        out->room_replies = W.room_dev.replies;
        out->supply_replies = W.supply_dev.replies;
        out->serial_frames = W.serial.frames;
        out->serial_timeouts = W.serial.timeouts;
    }
}

world_err world_save(void)
{
    if (!W.exists || !W.state_path[0]) {
        return WORLD_OK;
    }
    room_catch_up();
    return room_save(&W.room, W.state_path) == ROOM_OK ? WORLD_OK : WORLD_ERR_STATE;
}

void world_destroy(void)
{
    if (!W.exists) {
        return;
    }
    if (world_save() != WORLD_OK) {
        /* nothing left to tell: a caller that must know saves first and checks */
    }
    detach_channel(&W.env);
    detach_channel(&W.bridge);
    keel_sim_destroy();
    if (W.have_bus) {
        sim_rs485_free(&W.bus);
        W.have_bus = false;
    }
    close_channel(&W.env);
    close_channel(&W.bridge);
    W.exists = false;
}

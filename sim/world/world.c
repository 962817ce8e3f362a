/* The world's devices and the firmware's board layer on the simulator; see world.h.
 *
 * The sensor and the actuator are the board's envmon_rt_hw: a sensor read advances the room to
 * the present (with the HVAC mode it had since the last step) and costs 600 us of virtual time
 * (an I2C transaction at 100 kHz); setting the HVAC first brings the room up to date under the
 * old mode, so the room integrates exactly the mode history the firmware produced.
 *
 * The doorbell: the connected core rings the RT core's eventfd, which the sim port polls and
 * turns into virtual interrupt WORLD_IRQ_BELL; its handler drains the eventfd and releases the
 * semaphore the channel's blocking calls sleep on. The RT core rings back by writing the
 * connected core's eventfd (a mailbox register write on real silicon). */
#include "world.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "envmon_rt.h"
#include "keel/rtos_sim.h"

#define WORLD_IRQ_BELL 5u
#define SENSOR_READ_US 600u

static struct world {
    bool exists;
    world_config cfg;
    char state_path[PATH_MAX];
    room_state room;
    uint8_t hvac;
    uint32_t hvac_changes;
    keel_icc_end end;
    bool have_end;
    void *map;
    size_t map_len;
    keel_icc_rt chan;
    keel_rtos_sem bell_sem;
    envmon_rt fw;
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

/* ---- the doorbell ---- */

static void bell_irq(void *arg)
{
    (void)arg;
    uint64_t v;
    while (read(W.end.bell_in, &v, sizeof v) == (ssize_t)sizeof v) {
    }
    (void)keel_rtos_sem_put(&W.bell_sem);
}

static void bell_ring(void *ctx)
{
    (void)ctx;
    uint64_t one = 1;
    /* EAGAIN means the counter is saturated: the peer has a ring pending anyway. */
    (void)!write(W.end.bell_out, &one, sizeof one);
}

static void bell_wait(void *ctx)
{
    (void)ctx;
    (void)keel_rtos_sem_get(&W.bell_sem, KEEL_RTOS_WAIT_FOREVER);
}

static world_err attach_channel(keel_icc_end *e)
{
    struct stat st;
    if (fstat(e->mem, &st) != 0 || st.st_size <= 0) {
        return WORLD_ERR_CHANNEL;
    }
    W.map_len = (size_t)st.st_size;
    W.map = mmap(NULL, W.map_len, PROT_READ | PROT_WRITE, MAP_SHARED, e->mem, 0);
    if (W.map == MAP_FAILED) {
        W.map = NULL;
        return WORLD_ERR_CHANNEL;
    }
    W.end = *e;
    W.have_end = true;
    memset(e, 0, sizeof *e);
    e->mem = e->bell_in = e->bell_out = e->link = -1;
    if (keel_rtos_sem_create(&W.bell_sem, 0, 1) != KEEL_RTOS_OK) {
        return WORLD_ERR_RTOS;
    }
    keel_icc_rt_bell bell = {.ring = bell_ring, .wait = bell_wait, .ctx = NULL};
    if (keel_icc_rt_attach(&W.chan, W.map, W.map_len, W.end.side, &bell) != KEEL_ICC_OK ||
        keel_sim_irq_attach(WORLD_IRQ_BELL, bell_irq, NULL) != KEEL_SIM_OK ||
        keel_sim_fd_attach(W.end.bell_in, WORLD_IRQ_BELL) != KEEL_SIM_OK) {
        return WORLD_ERR_CHANNEL;
    }
    return WORLD_OK;
}

world_err world_create(const world_config *cfg, keel_icc_end *rt_end)
{
    if (W.exists || keel_sim_exists()) {
        return WORLD_ERR_BUSY;
    }
    memset(&W, 0, sizeof W);
    W.end.mem = W.end.bell_in = W.end.bell_out = W.end.link = -1;
    W.cfg = *cfg;
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
        rc = attach_channel(rt_end);
    }
    if (rc == WORLD_OK) {
        envmon_rt_hw hw = {.sensor_read = hw_sensor_read,
                           .hvac_set = hw_hvac_set,
                           .now_us = hw_now_us,
                           .ctx = NULL};
        /* Without a channel the service thread would block on nothing: give it none. */
        if (envmon_rt_start(&W.fw, &hw, W.have_end ? &W.chan : NULL) != KEEL_RTOS_OK) {
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
    if (W.have_end) {
        (void)keel_sim_fd_detach(W.end.bell_in);
    }
    keel_sim_destroy();
    if (W.map) {
        munmap(W.map, W.map_len);
    }
    if (W.have_end) {
        keel_icc_end_close(&W.end);
    }
    W.exists = false;
    W.have_end = false;
    W.map = NULL;
}

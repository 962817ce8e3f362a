/* make bench-world: how fast the simulated world runs, and what the RTOS, the firmware and the
 * intercore channel cost on top of the room's physics (the baseline, measured in the same run).
 *
 *   room alone          the room model stepped every 2 s for one simulated hour
 *   world, idle         keel-sim's world unpaced for one hour: RTOS sim port, envmon firmware
 *                       sampling every 2 s, the room
 *   world, closed loop  the same hour with the HL side asking ENV_GET every 2 s over a real
 *                       channel and setting the HVAC (what keel-envmon does), in-process
 *
 * The speed-up column is simulated seconds per wall second: how much faster than real time the
 * unattended demo's world could run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "envmon_proto.h"
#include "hvac_control.h"
#include "keel/icc.h"
#include "keel/manifest.h"
#include "room.h"
#include "world.h"

#define HOUR_US (3600ull * 1000000ull)
#define STEP_US 2000000ull
#define RUNS 5

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double bench_room(void)
{
    room_params p = room_default_params();
    room_state r;
    room_init(&r, &p, 18.0);
    double t0 = now_s();
    for (uint64_t t = STEP_US; t <= HOUR_US; t += STEP_US) {
        room_advance(&r, &p, r.temp_c < 21.0 ? ROOM_HVAC_HEATING : ROOM_HVAC_OFF, t);
    }
    double dt = now_s() - t0;
    if (r.temp_c < 0) {
        puts("impossible"); /* keeps the loop from being optimised away */
    }
    return dt;
}

static double bench_world_idle(void)
{
    world_config wc = world_config_default();
    if (world_create(&wc, NULL) != WORLD_OK) {
        fprintf(stderr, "bench-world: world_create failed\n");
        exit(1);
    }
    double t0 = now_s();
    world_run_until_us(HOUR_US);
    double dt = now_s() - t0;
    world_destroy();
    return dt;
}

static keel_icc_end hl_end;
static keel_icc_ring hl;

static void pair(void)
{
    keel_manifest app, rt;
    keel_manifest_error err;
    if (keel_manifest_load(KEEL_SOURCE_DIR "/apps/envmon/app_manifest.json", &app, &err) ||
        keel_manifest_load(KEEL_SOURCE_DIR "/firmware/apps/envmon/app_manifest.json", &rt, &err)) {
        fprintf(stderr, "bench-world: %s\n", err.msg);
        exit(1);
    }
    keel_icc_end rt_end;
    keel_icc_config cfg = {.ring_bytes = 16384, .max_msg = 1024};
    struct stat st;
    if (keel_icc_pair(&app, &rt, &cfg, &hl_end, &rt_end, NULL) != KEEL_ICC_OK ||
        fstat(hl_end.mem, &st) != 0) {
        exit(1);
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, hl_end.mem, 0);
    world_config wc = world_config_default();
    if (map == MAP_FAILED ||
        keel_icc_ring_attach(&hl, map, (size_t)st.st_size, hl_end.side) != KEEL_ICC_OK ||
        world_create(&wc, &rt_end) != WORLD_OK) {
        exit(1);
    }
}

static bool ask(uint16_t type, const void *req, size_t len, uint8_t *out, size_t *out_len)
{
    static uint32_t corr;
    bool ring = false;
    if (keel_icc_ring_send(&hl, type, KEEL_ICC_F_REQUEST, ++corr, req, len, NULL, &ring) !=
        KEEL_ICC_OK) {
        return false;
    }
    if (ring) {
        uint64_t one = 1;
        (void)!write(hl_end.bell_out, &one, sizeof one);
    }
    world_run_until_us(world_now_us() + 1000);
    keel_icc_msg m;
    if (keel_icc_ring_recv(&hl, &m, out, 256, &ring) != KEEL_ICC_OK || m.corr != corr) {
        return false;
    }
    *out_len = m.len;
    return true;
}

static double bench_world_loop(unsigned *requests, double *final_temp)
{
    pair();
    hvac_control c;
    hvac_control_init(&c, 0.25);
    (void)hvac_control_set_target(&c, 21.0);
    hvac_mode applied = HVAC_OFF;
    unsigned n = 0;
    double t0 = now_s();
    for (uint64_t t = STEP_US; t <= HOUR_US; t += STEP_US) {
        world_run_until_us(t);
        uint8_t buf[256];
        size_t len;
        envmon_env e;
        if (!ask(ENVMON_MSG_ENV_GET, NULL, 0, buf, &len) ||
            envmon_env_decode(buf, len, &e) != ENVMON_PROTO_OK) {
            fprintf(stderr, "bench-world: ENV_GET failed\n");
            exit(1);
        }
        n++;
        hvac_mode m = hvac_control_update(&c, e.temp_mc / 1000.0);
        if (m != applied) {
            uint8_t req[ENVMON_HVAC_SET_BYTES];
            envmon_hvac_set_encode((uint8_t)m, req);
            if (!ask(ENVMON_MSG_HVAC_SET, req, sizeof req, buf, &len)) {
                exit(1);
            }
            n++;
            applied = m;
        }
    }
    double dt = now_s() - t0;
    world_status s;
    world_status_get(&s);
    *final_temp = s.room_temp_c;
    *requests = n;
    world_destroy();
    keel_icc_end_close(&hl_end);
    return dt;
}

static double best(double a, double b)
{
    return a < b ? a : b;
}

int main(void)
{
    double room = 1e9, idle = 1e9, loop = 1e9, temp = 0;
    unsigned requests = 0;
    for (int i = 0; i < RUNS; i++) {
        room = best(room, bench_room());
        idle = best(idle, bench_world_idle());
        loop = best(loop, bench_world_loop(&requests, &temp));
    }
    printf("bench-world: one simulated hour, best of %d runs\n\n", RUNS);
    printf("| %-20s | %10s | %14s | %s\n", "case", "wall ms", "speed-up (x)", "notes");
    printf("|----------------------|------------|----------------|------\n");
    printf("| %-20s | %10.2f | %14.0f | baseline: physics only, 1800 steps\n", "room alone",
           room * 1e3, 3600.0 / room);
    printf("| %-20s | %10.2f | %14.0f | RTOS sim port + envmon firmware (1801 samples)\n",
           "world, idle", idle * 1e3, 3600.0 / idle);
    printf("| %-20s | %10.2f | %14.0f | %u requests over the channel, %.1f us each; room "
           "ends at %.2f C\n",
           "world, closed loop", loop * 1e3, 3600.0 / loop, requests,
           (loop - idle) * 1e6 / requests, temp);
    printf("\nratio world (closed loop) / room alone: %.1f\n", loop / room);
    return 0;
}

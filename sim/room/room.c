/* Room thermal model; see room.h for the equations and why. */
#include "room.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *room_err_name(room_err e)
{
    static const char *const names[ROOM_ERR_COUNT] = {
        [ROOM_OK] = "ROOM_OK",
        [ROOM_ERR_IO] = "ROOM_ERR_IO",
        [ROOM_ERR_FORMAT] = "ROOM_ERR_FORMAT",
    };
    return (unsigned)e < ROOM_ERR_COUNT ? names[e] : "ROOM_ERR_UNKNOWN";
}

room_params room_default_params(void)
{
    return (room_params){
        .outside_c = 8.0,
        .tau_s = 3600.0,
        .heat_c_per_s = 0.3 / 60.0 + 10.0 / 3600.0, /* net ~0.3 °C/min near 18 °C */
        .cool_c_per_s = 0.3 / 60.0,
        .pressure_hpa = 1013.25,
        .seed = 1,
    };
}

/* Relative humidity for a fixed amount of water in the air: about 50 % at 20 °C, falling
 * ~3 % per degree as the air warms (the Magnus saturation curve, linearised near room
 * temperature), clamped to physical bounds. */
static double humidity_for(double temp_c)
{
    double rh = 50.0 * exp(-0.063 * (temp_c - 20.0));
    return rh < 5.0 ? 5.0 : (rh > 100.0 ? 100.0 : rh);
}

void room_init(room_state *s, const room_params *p, double temp_c)
{
    memset(s, 0, sizeof *s);
    s->temp_c = temp_c;
    s->humidity_pct = humidity_for(temp_c);
    s->pressure_hpa = p->pressure_hpa;
    s->rng = p->seed ? p->seed : 1;
}

static uint64_t xorshift64(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

void room_advance(room_state *s, const room_params *p, room_hvac mode, uint64_t now_us)
{
    if (now_us <= s->time_us) {
        return;
    }
    double hvac = mode == ROOM_HVAC_HEATING ? p->heat_c_per_s
                  : mode == ROOM_HVAC_COOLING ? -p->cool_c_per_s
                                              : 0.0;
    /* Exact solution of the linear ODE over the step, so big steps are as right as small
     * ones: T(t) = T_eq + (T0 - T_eq) e^{-t/tau}, with T_eq = T_out + hvac * tau. */
    double dt = (double)(now_us - s->time_us) / 1e6;
    double t_eq = p->outside_c + hvac * p->tau_s;
    s->temp_c = t_eq + (s->temp_c - t_eq) * exp(-dt / p->tau_s);
    s->humidity_pct = humidity_for(s->temp_c);
    /* Pressure: a mean-reverting random walk, one step per elapsed second (bounded work). */
    uint64_t steps = (now_us / 1000000u) - (s->time_us / 1000000u);
    if (steps > 3600) {
        steps = 3600;
    }
    for (uint64_t i = 0; i < steps; i++) {
        double u = (double)(xorshift64(&s->rng) >> 11) / 9007199254740992.0; /* [0,1) */
        s->pressure_hpa += (u - 0.5) * 0.02 - (s->pressure_hpa - p->pressure_hpa) * 0.001;
    }
    s->time_us = now_us;
}

room_err room_save(const room_state *s, const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        return ROOM_ERR_IO;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        return ROOM_ERR_IO;
    }
    int n = fprintf(f, "keel-room 1 %.17g %.17g %.17g %llu %llu\n", s->temp_c, s->humidity_pct,
                    s->pressure_hpa, (unsigned long long)s->time_us,
                    (unsigned long long)s->rng);
    int ok = n > 0 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return ROOM_ERR_IO;
    }
    return ROOM_OK;
}

room_err room_load(room_state *s, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        return ROOM_ERR_IO;
    }
    room_state r = {0};
    unsigned long long t, rng;
    int version;
    int n = fscanf(f, "keel-room %d %lf %lf %lf %llu %llu", &version, &r.temp_c,
                   &r.humidity_pct, &r.pressure_hpa, &t, &rng);
    fclose(f);
    if (n != 6 || version != 1 || !isfinite(r.temp_c) || r.temp_c < -60 || r.temp_c > 90 ||
        !isfinite(r.pressure_hpa) || rng == 0) {
        return ROOM_ERR_FORMAT;
    }
    r.time_us = t;
    r.rng = rng;
    *s = r;
    return ROOM_OK;
}

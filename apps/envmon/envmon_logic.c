/* The environment monitor's decisions; see envmon_logic.h. */
#include "envmon_logic.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>

#include "keel/cloud.h"

void envmon_logic_init(envmon_logic *l, double band_c)
{
    hvac_control_init(&l->ctl, band_c);
    l->acked_version = -1;
    l->mode_reported = false;
    l->reported = HVAC_OFF;
    l->last_seq = 0;
}

int envmon_logic_desired(envmon_logic *l, const char *json, size_t len, int64_t version, char *ack,
                         size_t cap)
{
    cJSON *doc = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return -1;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "targetTemperature");
    if (!t || (version >= 0 && version <= l->acked_version)) {
        cJSON_Delete(doc);
        return 0;
    }
    char *value = cJSON_PrintUnformatted(t);
    int ac = 400;
    const char *ad = "targetTemperature must be a number of degrees Celsius, 5 to 35";
    if (cJSON_IsNumber(t) && hvac_control_set_target(&l->ctl, t->valuedouble)) {
        ac = 200;
        ad = "applied";
    }
    int rc = -1;
    if (value && keel_cloud_pnp_ack("targetTemperature", value, ac, version, ad, ack, cap) ==
                     KEEL_CLOUD_OK) {
        l->acked_version = version;
        rc = 1;
    }
    cJSON_free(value);
    cJSON_Delete(doc);
    return rc;
}

hvac_mode envmon_logic_sample(envmon_logic *l, const envmon_env *e)
{
    if (e->seq == 0) {
        return l->ctl.mode;
    }
    /* NaN makes the control law switch the unit off: a sensor that failed is not trusted. */
    double t = e->sensor_ok ? e->temp_mc / 1000.0 : (double)NAN;
    return hvac_control_update(&l->ctl, t);
}

int envmon_logic_telemetry(envmon_logic *l, const envmon_env *e, hvac_mode applied, char *buf,
                           size_t cap)
{
    if (e->seq == 0 || !e->sensor_ok || e->seq == l->last_seq) {
        return 0;
    }
    char target[32] = "null";
    if (l->ctl.has_setpoint) {
        snprintf(target, sizeof target, "%.2f", l->ctl.setpoint_c);
    }
    int n = snprintf(buf, cap,
                     "{\"temperature\":%.3f,\"humidity\":%.2f,\"pressure\":%.2f,"
                     "\"hvacMode\":\"%s\",\"targetTemperature\":%s,\"sample\":%u}",
                     e->temp_mc / 1000.0, e->humidity_cp / 100.0, e->pressure_pa / 100.0,
                     hvac_mode_name(applied), target, e->seq);
    if (n < 0 || (size_t)n >= cap) {
        return -1;
    }
    l->last_seq = e->seq;
    return n;
}

int envmon_logic_mode_report(envmon_logic *l, hvac_mode applied, char *buf, size_t cap)
{
    if (l->mode_reported && l->reported == applied) {
        return 0;
    }
    int n = snprintf(buf, cap, "{\"hvacMode\":\"%s\"}", hvac_mode_name(applied));
    if (n < 0 || (size_t)n >= cap) {
        return -1;
    }
    l->mode_reported = true;
    l->reported = applied;
    return n;
}

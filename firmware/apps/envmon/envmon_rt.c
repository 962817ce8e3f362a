/* The environment monitor's RT threads; see envmon_rt.h. Priorities: the service thread is
 * more urgent than the sensor thread, so an answer to the app never waits behind a slow sensor
 * read; both share the sample under a mutex (with priority inheritance, so the sensor thread
 * holding it is lifted while the service thread waits). */
#include "envmon_rt.h"

#include <string.h>

#include "board.h"

#define SERVICE_PRIORITY 8u
#define SENSOR_PRIORITY 10u

static uint32_t ms_to_ticks(uint32_t ms)
{
    uint32_t t = (uint32_t)((uint64_t)ms * keel_rtos_tick_hz() / 1000u);
    return t ? t : 1u;
}

static void on_timer(void *arg)
{
    envmon_rt *e = arg;
    (void)keel_rtos_sem_put(&e->tick); /* a missed beat (sem full) is a skipped sample */
}

static void take_sample(envmon_rt *e)
{
    envmon_env s;
    (void)keel_rtos_mutex_lock(&e->lock, KEEL_RTOS_WAIT_FOREVER);
    s = e->latest;
    (void)keel_rtos_mutex_unlock(&e->lock);
    /* The read itself runs unlocked: the service thread keeps answering with the previous
     * sample meanwhile. */
    bool ok = e->hw.sensor_read(e->hw.ctx, &s);
    uint64_t now = e->hw.now_us(e->hw.ctx);
    (void)keel_rtos_mutex_lock(&e->lock, KEEL_RTOS_WAIT_FOREVER);
    if (ok) {
        e->latest.temp_mc = s.temp_mc;
        e->latest.humidity_cp = s.humidity_cp;
        e->latest.pressure_pa = s.pressure_pa;
        e->latest.time_us = now;
    } else {
        e->read_failures++;
    }
    e->latest.sensor_ok = ok ? 1 : 0;
    e->latest.seq++;
    (void)keel_rtos_mutex_unlock(&e->lock);
}

static void sensor_main(void *arg)
{
    envmon_rt *e = arg;
    for (;;) {
        take_sample(e);
        board_heartbeat(); /* a sample taken: the RT core is alive (board.h) */
        if (keel_rtos_sem_get(&e->tick, KEEL_RTOS_WAIT_FOREVER) != KEEL_RTOS_OK) {
            return;
        }
    }
}

static keel_icc_err answer_hvac(envmon_rt *e, const keel_icc_msg *m)
{
    uint8_t mode = 0;
    envmon_hvac_ack ack = {.status = 1};
    if (envmon_hvac_set_decode(e->rx, m->len, &mode) == ENVMON_PROTO_OK && mode <= 2 &&
        e->hw.hvac_set(e->hw.ctx, mode)) {
        ack.status = 0;
        (void)keel_rtos_mutex_lock(&e->lock, KEEL_RTOS_WAIT_FOREVER);
        e->hvac = mode;
        e->latest.hvac = mode;
        (void)keel_rtos_mutex_unlock(&e->lock);
    } else {
        e->bad_requests++;
    }
    (void)keel_rtos_mutex_lock(&e->lock, KEEL_RTOS_WAIT_FOREVER);
    ack.hvac = e->hvac;
    (void)keel_rtos_mutex_unlock(&e->lock);
    uint8_t out[ENVMON_HVAC_ACK_BYTES];
    envmon_hvac_ack_encode(&ack, out);
    return keel_icc_rt_send(e->chan, ENVMON_MSG_HVAC_ACK, KEEL_ICC_F_REPLY, m->corr, out,
                            sizeof out);
}

static void service_main(void *arg)
{
    envmon_rt *e = arg;
    for (;;) {
        keel_icc_msg m;
        keel_icc_err rc = keel_icc_rt_recv(e->chan, &m, e->rx, sizeof e->rx);
        if (rc == KEEL_ICC_ERR_BUF_SMALL || rc == KEEL_ICC_ERR_FORGED) {
            /* BUF_SMALL leaves the message queued: nothing we speak is that big, so the
             * channel is unusable; FORGED was consumed and reported, carry on. */
            e->bad_requests++;
            if (rc == KEEL_ICC_ERR_FORGED) {
                continue;
            }
        }
        if (rc != KEEL_ICC_OK) {
            e->chan_err = rc;
            return;
        }
        e->requests++;
        if (!(m.flags & KEEL_ICC_F_REQUEST)) {
            e->bad_requests++; /* we answer requests only; anything else is dropped */
            continue;
        }
        if (m.type == ENVMON_MSG_ENV_GET) {
            uint8_t out[ENVMON_ENV_BYTES];
            (void)keel_rtos_mutex_lock(&e->lock, KEEL_RTOS_WAIT_FOREVER);
            envmon_env_encode(&e->latest, out);
            (void)keel_rtos_mutex_unlock(&e->lock);
            rc = keel_icc_rt_send(e->chan, ENVMON_MSG_ENV_DATA, KEEL_ICC_F_REPLY, m.corr, out,
                                  sizeof out);
        } else if (m.type == ENVMON_MSG_HVAC_SET) {
            rc = answer_hvac(e, &m);
        } else {
            e->bad_requests++;
            continue;
        }
        if (rc != KEEL_ICC_OK) {
            e->chan_err = rc;
            return;
        }
    }
}

keel_rtos_err envmon_rt_start(envmon_rt *e, const envmon_rt_hw *hw, keel_icc_rt *chan)
{
    memset(&e->latest, 0, sizeof e->latest);
    e->hw = *hw;
    e->chan = chan;
    e->hvac = ENVMON_HVAC_OFF;
    e->requests = e->bad_requests = e->read_failures = 0;
    e->chan_err = KEEL_ICC_OK;
    (void)e->hw.hvac_set(e->hw.ctx, ENVMON_HVAC_OFF);
    keel_rtos_err rc = keel_rtos_mutex_create(&e->lock);
    if (rc == KEEL_RTOS_OK) {
        rc = keel_rtos_sem_create(&e->tick, 0, 1);
    }
    if (rc == KEEL_RTOS_OK) {
        rc = keel_rtos_timer_create(&e->timer, on_timer, e);
    }
    uint32_t period = ms_to_ticks(ENVMON_RT_PERIOD_MS);
    if (rc == KEEL_RTOS_OK) {
        rc = keel_rtos_timer_start(&e->timer, period, period);
    }
    if (rc == KEEL_RTOS_OK && chan) {
        keel_rtos_thread_config c = {.name = "env-service",
                                     .entry = service_main,
                                     .arg = e,
                                     .stack = e->service_stack,
                                     .stack_size = sizeof e->service_stack,
                                     .priority = SERVICE_PRIORITY};
        rc = keel_rtos_thread_create(&e->service_thread, &c);
    }
    if (rc == KEEL_RTOS_OK) {
        keel_rtos_thread_config c = {.name = "env-sensor",
                                     .entry = sensor_main,
                                     .arg = e,
                                     .stack = e->sensor_stack,
                                     .stack_size = sizeof e->sensor_stack,
                                     .priority = SENSOR_PRIORITY};
        rc = keel_rtos_thread_create(&e->sensor_thread, &c);
    }
    return rc;
}

void envmon_rt_latest(envmon_rt *e, envmon_env *out)
{
    *out = e->latest;
}

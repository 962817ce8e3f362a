/* The sensor update profile end to end in one process: the gateway's push (the real
 * keel_update_sensor_push) talks to the simulated sensor's real handlers through a direct
 * link that can power the sensor off and on (its flash persists in a file) or cut power at a
 * flash operation. The MODBUS wire between them is the modbus module's job; these tests check
 * the profile: resume, verification before boot, fallback, version read-back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sensor_boot.h"

#define SLOT (64u * 1024u)
#define PAYLOAD 40000u

static keel_image_pubkey pub, other_pub;
static keel_image_seckey sec, other_sec;
static uint8_t component[16] = {0x73, 0x65, 0x6e, 0x73};
static char flash_path[256];
static sensor_boot_config cfg;

typedef struct image {
    uint8_t *p;
    size_t len;
} image;

static image make(uint16_t major, uint32_t counter, const char *head, const keel_image_seckey *k,
                  const uint8_t *comp)
{
    uint8_t *payload = malloc(PAYLOAD);
    for (uint32_t i = 0; i < PAYLOAD; i++) {
        payload[i] = (uint8_t)(i * 7u + major);
    }
    memcpy(payload, head, strlen(head));
    keel_image_header h = {.version = {major, 0, 0}, .security_counter = counter,
                           .payload_size = PAYLOAD};
    memcpy(h.component, comp ? comp : component, 16);
    image im = {malloc(keel_image_size(PAYLOAD)), 0};
    assert_int_equal(keel_image_sign(&h, payload, k ? k : &sec, im.p, keel_image_size(PAYLOAD),
                                     &im.len),
                     KEEL_IMAGE_OK);
    free(payload);
    return im;
}

/* ---- the link, with a sensor that can lose power ---- */

typedef struct link_ctx {
    sensor_boot *s;
    unsigned requests;
    unsigned off_at;      /* request count at which the sensor loses power; 0: never */
    unsigned off_for;     /* requests it stays silent */
    unsigned silent_left;
    uint64_t cut_op;      /* or: a flash operation (relative) at which power is cut */
    unsigned cycles;
} link_ctx;

static void power_on(link_ctx *c)
{
    char why[256];
    c->s = sensor_boot_power_on(&cfg, why, sizeof why);
    if (!c->s) {
        fail_msg("sensor does not boot: %s", why);
    }
}

/* Before each request: maybe lose power, maybe come back. Returns false while silent. */
static bool alive(link_ctx *c)
{
    c->requests++;
    if (c->silent_left) {
        if (--c->silent_left == 0) {
            power_on(c);
        }
        return false;
    }
    bool cut = c->s && !keel_update_flash_powered(sensor_boot_flash(c->s));
    if (cut || (c->off_at && c->requests == c->off_at)) {
        sensor_boot_power_off(c->s);
        c->s = NULL;
        c->silent_left = c->off_for ? c->off_for : 1;
        c->cycles++;
        return false;
    }
    if (c->cut_op && c->s) {
        keel_update_flash *f = sensor_boot_flash(c->s);
        keel_update_flash_cut_at(f, keel_update_flash_ops(f) + c->cut_op);
        c->cut_op = 0;
    }
    return true;
}

static void after(link_ctx *c)
{
    char why[256];
    if (c->s && !sensor_boot_poll(&c->s, why, sizeof why)) {
        fail_msg("sensor restart failed: %s", why);
    }
}

static int l_read(void *ctx, uint16_t addr, uint16_t n, uint16_t *regs)
{
    link_ctx *c = ctx;
    if (!alive(c)) {
        return -1;
    }
    int r = sensor_boot_read_regs(c->s, 2, addr, n, regs);
    after(c);
    return r;
}
static int l_write(void *ctx, uint16_t addr, uint16_t n, const uint16_t *regs)
{
    link_ctx *c = ctx;
    if (!alive(c)) {
        return -1;
    }
    int r = sensor_boot_write_regs(c->s, addr, n, regs);
    after(c);
    return r;
}
static int l_file(void *ctx, uint16_t file, uint16_t rec, uint16_t n, const uint16_t *regs)
{
    link_ctx *c = ctx;
    if (!alive(c)) {
        return -1;
    }
    int r = sensor_boot_write_file(c->s, file, rec, n, regs);
    after(c);
    return r;
}
static int l_version(void *ctx, char *out, size_t cap)
{
    link_ctx *c = ctx;
    if (!alive(c)) {
        return -1;
    }
    snprintf(out, cap, "%s", sensor_boot_device_id(c->s, 2));
    return 0;
}

static keel_update_sensor_link link_for(link_ctx *c)
{
    return (keel_update_sensor_link){c, l_read, l_write, l_file, l_version};
}

static image v1, v2, crash, old, foreign, untrusted;

static int setup(void **state)
{
    (void)state;
    assert_int_equal(keel_image_keygen(&pub, &sec), KEEL_IMAGE_OK);
    assert_int_equal(keel_image_keygen(&other_pub, &other_sec), KEEL_IMAGE_OK);
    snprintf(flash_path, sizeof flash_path, "%s/keel-sensor-flash-%d.bin",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    v1 = make(1, 1, "KEEL-SENSOR-FW v1", NULL, NULL);
    v2 = make(2, 2, "KEEL-SENSOR-FW v2", NULL, NULL);
    crash = make(3, 3, "this firmware does not start", NULL, NULL);
    old = make(0, 0, "KEEL-SENSOR-FW v0", NULL, NULL);
    uint8_t comp2[16] = {9};
    foreign = make(4, 4, "KEEL-SENSOR-FW other", NULL, comp2);
    untrusted = make(5, 5, "KEEL-SENSOR-FW evil", &other_sec, NULL);
    static keel_image_pubkey keys[1];
    keys[0] = pub;
    cfg = (sensor_boot_config){.flash_path = flash_path, .keys = {keys, 1}, .hardware = "sim",
                               .slot_size = SLOT};
    memcpy(cfg.component, component, 16);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(flash_path);
    image *all[] = {&v1, &v2, &crash, &old, &foreign, &untrusted};
    for (size_t i = 0; i < 6; i++) {
        free(all[i]->p);
    }
    return 0;
}

static int fresh(void **state)
{
    (void)state;
    assert_int_equal(sensor_boot_provision(&cfg, v1.p, v1.len), 0);
    return 0;
}

static keel_update_err push(link_ctx *c, const image *im, keel_update_sensor_stats *st,
                            keel_update_error *err)
{
    keel_update_sensor_link l = link_for(c);
    keel_image_keys keys = {&pub, 1};
    return keel_update_sensor_push(&l, im->p, im->len, &keys, NULL, st, err);
}

static void test_sensor_push_boots_new_version(void **state)
{
    (void)state;
    link_ctx c = {0};
    power_on(&c);
    assert_string_equal(sensor_boot_version(c.s), "1.0.0");
    keel_update_sensor_stats st;
    keel_update_error err;
    assert_int_equal(push(&c, &v2, &st, &err), KEEL_UPDATE_OK);
    assert_int_equal(st.bytes_sent, (v2.len + 1) / 2 * 2);
    /* The commit restarted the sensor into v2, which started and confirmed itself. */
    char ver[32];
    keel_update_sensor_link l = link_for(&c);
    assert_int_equal(l.read_version(l.ctx, ver, sizeof ver), 0);
    assert_string_equal(ver, "2.0.0");
    uint16_t regs[KEEL_UPDATE_SENSOR_REGS];
    assert_int_equal(l.read_regs(l.ctx, KEEL_UPDATE_SENSOR_BASE, KEEL_UPDATE_SENSOR_REGS, regs), 0);
    assert_int_equal(regs[KEEL_UPDATE_SENSOR_STATE], KEEL_UPDATE_SENSOR_IDLE);
    /* And after a power cycle it still runs v2. */
    sensor_boot_power_off(c.s);
    power_on(&c);
    assert_string_equal(sensor_boot_version(c.s), "2.0.0");
    sensor_boot_power_off(c.s);
}

static void test_sensor_push_power_cycles_resume(void **state)
{
    (void)state;
    unsigned seed = 99;
    for (int round = 0; round < 4; round++) {
        assert_int_equal(sensor_boot_provision(&cfg, v1.p, v1.len), 0);
        link_ctx c = {0};
        power_on(&c);
        c.off_at = 10 + (unsigned)(rand_r(&seed) % 150);
        c.off_for = 1 + (unsigned)(rand_r(&seed) % 5);
        keel_update_sensor_stats st;
        keel_update_error err;
        assert_int_equal(push(&c, &v2, &st, &err), KEEL_UPDATE_OK);
        assert_int_equal(c.cycles, 1);
        /* Resent at most the block being filled plus one request. */
        assert_true(st.bytes_sent <= v2.len + 1 + 1024 + 240);
        assert_string_equal(sensor_boot_version(c.s), "2.0.0");
        sensor_boot_power_off(c.s);
    }
}

static void test_sensor_push_flash_cuts_resume(void **state)
{
    (void)state;
    unsigned seed = 7;
    for (int round = 0; round < 8; round++) {
        assert_int_equal(sensor_boot_provision(&cfg, v1.p, v1.len), 0);
        link_ctx c = {0};
        power_on(&c);
        /* Cut power at a flash operation somewhere in the transfer or the commit. */
        c.off_for = 2;
        c.cut_op = 1 + (uint64_t)(rand_r(&seed) % 240);
        keel_update_sensor_stats st;
        keel_update_error err;
        keel_update_err e = push(&c, &v2, &st, &err);
        if (e != KEEL_UPDATE_OK) {
            fail_msg("round %d: %s: %s", round, keel_update_err_name(e), err.msg);
        }
        assert_int_equal(c.cycles, 1);
        /* A cut after the commit's record write leaves the sensor armed: it boots v2 on its next
         * power-on. Either way, once powered it runs 2.0.0 and stays there. */
        if (c.s) {
            sensor_boot_power_off(c.s);
        }
        power_on(&c);
        assert_string_equal(sensor_boot_version(c.s), "2.0.0");
        sensor_boot_power_off(c.s);
    }
}

static void test_sensor_firmware_that_fails_to_start_falls_back(void **state)
{
    (void)state;
    link_ctx c = {0};
    power_on(&c);
    keel_update_error err;
    assert_int_equal(push(&c, &crash, NULL, &err), KEEL_UPDATE_OK);
    /* The restart booted 3.0.0 on trial; it never started; the bootloader went back to v1. */
    assert_string_equal(sensor_boot_version(c.s), "1.0.0");
    sensor_boot_power_off(c.s);
    power_on(&c);
    assert_string_equal(sensor_boot_version(c.s), "1.0.0");
    sensor_boot_power_off(c.s);
}

static void refused_by_sensor(const image *im, keel_update_err want)
{
    link_ctx c = {0};
    power_on(&c);
    keel_update_error err;
    assert_int_equal(push(&c, im, NULL, &err), want);
    assert_non_null(strstr(err.msg, "refused"));
    sensor_boot_power_off(c.s);
    power_on(&c);
    assert_string_equal(sensor_boot_version(c.s), "1.0.0");
    sensor_boot_power_off(c.s);
}

static void test_sensor_rollback_refused(void **state)
{
    (void)state;
    refused_by_sensor(&old, KEEL_UPDATE_ERR_ROLLBACK);
}

static void test_sensor_other_component_refused(void **state)
{
    (void)state;
    refused_by_sensor(&foreign, KEEL_UPDATE_ERR_TARGET);
}

static void test_sensor_gateway_refuses_untrusted_image_before_sending(void **state)
{
    (void)state;
    link_ctx c = {0};
    power_on(&c);
    keel_update_sensor_stats st;
    keel_update_error err;
    assert_int_equal(push(&c, &untrusted, &st, &err), KEEL_UPDATE_ERR_UNKNOWN_KEY);
    assert_int_equal(st.requests, 0);
    sensor_boot_power_off(c.s);
}

static void test_sensor_out_of_order_record_refused(void **state)
{
    (void)state;
    link_ctx c = {0};
    power_on(&c);
    uint16_t regs[KEEL_UPDATE_SENSOR_REGS] = {KEEL_UPDATE_SENSOR_RECEIVING, 0, 1000};
    assert_int_equal(sensor_boot_write_regs(c.s, KEEL_UPDATE_SENSOR_BASE, 21, regs), 0);
    uint16_t data[4] = {1, 2, 3, 4};
    assert_int_equal(sensor_boot_write_file(c.s, 1, 10, 4, data), 2); /* expected record 0 */
    assert_int_equal(sensor_boot_write_file(c.s, 1, 0, 4, data), 0);
    assert_int_equal(sensor_boot_write_file(c.s, 1, 0, 4, data), 0); /* a resend is fine */
    assert_int_equal(sensor_boot_write_file(c.s, 2, 0, 4, data), 2); /* past the image */
    assert_int_equal(sensor_boot_read_regs(c.s, 2, KEEL_UPDATE_SENSOR_BASE + KEEL_UPDATE_SENSOR_NEXT,
                                           2, regs),
                     0);
    assert_int_equal(regs[1], 4);
    sensor_boot_power_off(c.s);
}

#define T(f) cmocka_unit_test_setup(f, fresh)
int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_sensor_push_boots_new_version),
        T(test_sensor_push_power_cycles_resume),
        T(test_sensor_push_flash_cuts_resume),
        T(test_sensor_firmware_that_fails_to_start_falls_back),
        T(test_sensor_rollback_refused),
        T(test_sensor_other_component_refused),
        T(test_sensor_gateway_refuses_untrusted_image_before_sending),
        T(test_sensor_out_of_order_record_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

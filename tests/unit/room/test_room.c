/* The room model: physics in the right direction at plausible rates, determinism, and
 * persistence that survives a restart (and refuses a damaged file). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "fixture.h"
#include "room.h"

#define MIN_US (60ull * 1000000u)

static void test_advance_heating_raises_at_realistic_rate(void **state)
{
    (void)state;
    room_params p = room_default_params();
    room_state r;
    room_init(&r, &p, 18.0);
    double h0 = r.humidity_pct;
    room_advance(&r, &p, ROOM_HVAC_HEATING, 10 * MIN_US);
    /* An HVAC unit warms a room by a few degrees in ten minutes, not by tens. */
    assert_true(r.temp_c > 19.5 && r.temp_c < 22.0);
    assert_true(r.humidity_pct < h0); /* warmer air, lower relative humidity */
}

static void test_advance_off_relaxes_to_outside(void **state)
{
    (void)state;
    room_params p = room_default_params();
    room_state r;
    room_init(&r, &p, 20.0);
    room_advance(&r, &p, ROOM_HVAC_OFF, 10ull * 3600 * 1000000u);
    assert_true(r.temp_c > p.outside_c && r.temp_c < p.outside_c + 0.01);
}

static void test_advance_same_seed_same_run_big_steps_match_small(void **state)
{
    (void)state;
    room_params p = room_default_params();
    room_state a, b;
    room_init(&a, &p, 18.0);
    room_init(&b, &p, 18.0);
    room_advance(&a, &p, ROOM_HVAC_COOLING, 30 * MIN_US);
    for (uint64_t t = 1; t <= 30 * 60; t++) {
        room_advance(&b, &p, ROOM_HVAC_COOLING, t * 1000000u);
    }
    assert_true(a.temp_c - b.temp_c < 1e-9 && b.temp_c - a.temp_c < 1e-9);
    assert_true(a.pressure_hpa == b.pressure_hpa);
    assert_true(a.pressure_hpa > 1000 && a.pressure_hpa < 1030);
}

static void test_save_load_round_trip_and_damaged_file_refused(void **state)
{
    (void)state;
    const char *dir = kf_tmpdir("room");
    char path[512];
    snprintf(path, sizeof path, "%s/room.state", dir);
    room_params p = room_default_params();
    room_state r, back;
    room_init(&r, &p, 18.0);
    room_advance(&r, &p, ROOM_HVAC_HEATING, 7 * MIN_US);
    assert_int_equal(room_save(&r, path), ROOM_OK);
    assert_int_equal(room_load(&back, path), ROOM_OK);
    assert_memory_equal(&r, &back, sizeof r);

    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("keel-room 1 garbage\n", f);
    fclose(f);
    assert_int_equal(room_load(&back, path), ROOM_ERR_FORMAT);
    assert_int_equal(room_load(&back, "/nonexistent/room"), ROOM_ERR_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_advance_heating_raises_at_realistic_rate),
        cmocka_unit_test(test_advance_off_relaxes_to_outside),
        cmocka_unit_test(test_advance_same_seed_same_run_big_steps_match_small),
        cmocka_unit_test(test_save_load_round_trip_and_damaged_file_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

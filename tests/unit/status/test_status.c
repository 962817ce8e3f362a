/* Every shared status value has its own name; out-of-range values are named as unknown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "keel/status.h"

static void test_status_name_every_value_distinct(void **state)
{
    (void)state;
    for (int i = 0; i < KEEL_STATUS_COUNT; i++) {
        const char *a = keel_status_name((keel_status)i);
        assert_non_null(a);
        assert_int_equal(strncmp(a, "KEEL_", 5), 0);
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(a, keel_status_name((keel_status)j));
        }
    }
}

static void test_status_name_out_of_range_unknown(void **state)
{
    (void)state;
    assert_string_equal(keel_status_name(KEEL_STATUS_COUNT), "KEEL_STATUS_UNKNOWN");
    assert_string_equal(keel_status_name((keel_status)-1), "KEEL_STATUS_UNKNOWN");
    assert_string_equal(keel_status_name(KEEL_ERR_TIMEOUT), "KEEL_ERR_TIMEOUT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_name_every_value_distinct),
        cmocka_unit_test(test_status_name_out_of_range_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The crash-report symboliser: finds functions of this very test binary by their offset from
 * its load bias, and refuses files that are not ELF. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <link.h>

#include "supervisor.h"

static uint64_t g_bias;
static int main_bias(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    g_bias = info->dlpi_addr; /* the first object is the main program */
    return 1;
}

/* A body of several instructions at any optimisation level: the address looked up is 2 bytes
 * in, which must lie inside the function (gcc -O3 made an empty one a 1-byte `ret`). */
static volatile int g_sink;
__attribute__((noinline)) void keel_test_marker_function(void)
{
    g_sink = 1;
    g_sink = 2;
}

static void test_symbolize_own_function_with_offset(void **state)
{
    (void)state;
    dl_iterate_phdr(main_bias, NULL);
    uint64_t addr = (uint64_t)(uintptr_t)&keel_test_marker_function - g_bias;
    char out[256];
    assert_true(sv_elf_symbolize("/proc/self/exe", addr + 2, out, sizeof out));
    assert_string_equal(out, "keel_test_marker_function+0x2");
}

static void test_symbolize_non_elf_file_refused(void **state)
{
    (void)state;
    char out[64];
    assert_false(sv_elf_symbolize("/proc/self/cmdline", 0x100, out, sizeof out));
    assert_false(sv_elf_symbolize("/nonexistent", 0x100, out, sizeof out));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_symbolize_own_function_with_offset),
        cmocka_unit_test(test_symbolize_non_elf_file_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

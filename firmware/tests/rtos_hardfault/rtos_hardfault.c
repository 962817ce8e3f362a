/* A thread reads from an unmapped address; the port's HardFault handler must print the
 * registers and the thread's name and stop with exit code 122 (expect_fault.sh checks). */
#include <stdint.h>

#include "board.h"
#include "keel/rtos.h"

static uint8_t stack[1024] __attribute__((aligned(8)));
static keel_rtos_thread faulty;

static void fault_entry(void *arg)
{
    (void)arg;
    volatile uint32_t *bad = (volatile uint32_t *)0xf0000000u; /* nothing is mapped there */
    board_console_put_u32(*bad);
    board_console_puts("FAIL: no fault\n");
    board_exit(1);
}

int main(void)
{
    keel_rtos_init();
    keel_rtos_thread_config cfg = {.name = "faulty", .entry = fault_entry, .stack = stack,
                                   .stack_size = sizeof stack, .priority = 3};
    if (keel_rtos_thread_create(&faulty, &cfg) != KEEL_RTOS_OK) {
        return 100;
    }
    keel_rtos_start();
    return 101;
}

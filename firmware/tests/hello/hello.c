/* The smallest firmware test: the board boots, the console prints, and the result leaves QEMU
 * as the semihosting exit code. Also checks that .data was copied and .bss zeroed by startup,
 * and that the FPU was enabled (a float op would fault otherwise). */
#include "board.h"

#include <stdint.h>

static volatile uint32_t initialised = 0x5eedu;
static volatile uint32_t zeroed;
static volatile float scale = 1.5f;

int main(void)
{
    board_console_puts("keel: mps2-an386 booted\n");
    int failures = 0;
    if (initialised != 0x5eedu) {
        board_console_puts("FAIL: .data not initialised\n");
        failures++;
    }
    if (zeroed != 0) {
        board_console_puts("FAIL: .bss not zeroed\n");
        failures++;
    }
    if (scale * 2.0f != 3.0f) {
        board_console_puts("FAIL: FPU arithmetic\n");
        failures++;
    }
    board_console_puts(failures == 0 ? "PASS\n" : "FAIL\n");
    board_exit(failures);
}

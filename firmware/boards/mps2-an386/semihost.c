/* Semihosting exit. SYS_EXIT_EXTENDED (0x20) with {ADP_Stopped_ApplicationExit, code} makes
 * QEMU exit with `code`; plain SYS_EXIT can only say 0 or 1. Needs QEMU's
 * -semihosting-config enable=on (scripts/qemu-run.sh passes it). */
#include "board.h"

#include <stdint.h>

#define SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

_Noreturn void board_exit(int code)
{
    volatile uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    register uint32_t r0 __asm("r0") = SYS_EXIT_EXTENDED;
    register uint32_t r1 __asm("r1") = (uint32_t)(uintptr_t)block;
    __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    for (;;) {
    }
}

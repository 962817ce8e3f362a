/* Reset: copy .data from its load address, zero .bss, enable the FPU, run main.
 * Written in C because nothing here needs a stack frame the C compiler cannot give. */
#include "board.h"

#include <stddef.h>
#include <stdint.h>

extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern int main(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)

extern const void *const keel_vectors[];

void Reset_Handler(void)
{
    /* Linker symbols mark section bounds; sizes are computed as integers because comparing
     * pointers to different objects is undefined in C. */
    size_t data_words = ((uintptr_t)__data_end - (uintptr_t)__data_start) / 4u;
    size_t bss_words = ((uintptr_t)__bss_end - (uintptr_t)__bss_start) / 4u;
    for (size_t i = 0; i < data_words; i++) {
        __data_start[i] = __data_load[i];
    }
    for (size_t i = 0; i < bss_words; i++) {
        __bss_start[i] = 0;
    }
    /* CP10 and CP11 full access: the FPU must be on before any float instruction. */
    SCB_CPACR |= 0xFu << 20;
    __asm volatile("dsb\n isb");
    SCB_VTOR = (uint32_t)(uintptr_t)keel_vectors;
    board_exit(main());
}

/* The vector table. Every handler is weak and defaults to a loop that reports the exception
 * number and exits with a failure code, so a stray interrupt fails a test instead of hanging
 * it. The RTOS port overrides PendSV, SysTick, SVC and HardFault; drivers override IRQs. */
#include "board.h"

#include <stdint.h>

extern uint32_t __stack_top[];
void Reset_Handler(void);

void Default_Handler(void)
{
    uint32_t ipsr;
    __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
    board_console_puts("\nkeel: unexpected exception ");
    board_console_put_u32(ipsr & 0x1ffu);
    board_console_puts("\n");
    board_exit(120);
}

#define WEAK_DEFAULT __attribute__((weak, alias("Default_Handler")))
void NMI_Handler(void) WEAK_DEFAULT;
void HardFault_Handler(void) WEAK_DEFAULT;
void MemManage_Handler(void) WEAK_DEFAULT;
void BusFault_Handler(void) WEAK_DEFAULT;
void UsageFault_Handler(void) WEAK_DEFAULT;
void SVC_Handler(void) WEAK_DEFAULT;
void DebugMon_Handler(void) WEAK_DEFAULT;
void PendSV_Handler(void) WEAK_DEFAULT;
void SysTick_Handler(void) WEAK_DEFAULT;

/* External interrupts 0..47, named by line number; by default they dispatch through the
 * table board_irq_attach() fills (irq.c). */
struct board_irq_slot {
    void (*fn)(void *);
    void *arg;
};
struct board_irq_slot board_irq_table[BOARD_IRQ_COUNT];

void board_irq_dispatch(void)
{
    uint32_t ipsr;
    __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
    uint32_t n = (ipsr & 0x1ffu) - 16u;
    if (n >= BOARD_IRQ_COUNT || board_irq_table[n].fn == 0) {
        Default_Handler();
        return;
    }
    board_irq_table[n].fn(board_irq_table[n].arg);
}

#define IRQ(n) void IRQ##n##_Handler(void) __attribute__((weak, alias("board_irq_dispatch")));
IRQ(0) IRQ(1) IRQ(2) IRQ(3) IRQ(4) IRQ(5) IRQ(6) IRQ(7) IRQ(8) IRQ(9) IRQ(10) IRQ(11)
IRQ(12) IRQ(13) IRQ(14) IRQ(15) IRQ(16) IRQ(17) IRQ(18) IRQ(19) IRQ(20) IRQ(21) IRQ(22)
IRQ(23) IRQ(24) IRQ(25) IRQ(26) IRQ(27) IRQ(28) IRQ(29) IRQ(30) IRQ(31) IRQ(32) IRQ(33)
IRQ(34) IRQ(35) IRQ(36) IRQ(37) IRQ(38) IRQ(39) IRQ(40) IRQ(41) IRQ(42) IRQ(43) IRQ(44)
IRQ(45) IRQ(46) IRQ(47)
#undef IRQ

#define V(n) IRQ##n##_Handler
__attribute__((section(".vectors"), used)) const void *const keel_vectors[16 + BOARD_IRQ_COUNT] = {
    __stack_top, Reset_Handler, NMI_Handler, HardFault_Handler, MemManage_Handler,
    BusFault_Handler, UsageFault_Handler, 0, 0, 0, 0, SVC_Handler, DebugMon_Handler, 0,
    PendSV_Handler, SysTick_Handler,
    V(0), V(1), V(2), V(3), V(4), V(5), V(6), V(7), V(8), V(9), V(10), V(11), V(12), V(13),
    V(14), V(15), V(16), V(17), V(18), V(19), V(20), V(21), V(22), V(23), V(24), V(25), V(26),
    V(27), V(28), V(29), V(30), V(31), V(32), V(33), V(34), V(35), V(36), V(37), V(38), V(39),
    V(40), V(41), V(42), V(43), V(44), V(45), V(46), V(47),
};
#undef V

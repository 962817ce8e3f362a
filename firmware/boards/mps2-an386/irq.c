/* Interrupt lines for portable firmware: fill the RAM table that the vector table's weak
 * IRQn_Handler entries dispatch through (vectors.c), and NVIC enable/priority/pend. A driver that defines IRQn_Handler
 * itself bypasses the table (and saves the dispatch). */
#include "board.h"

#include <stdint.h>

#define NVIC_ISER ((volatile uint32_t *)0xE000E100u)
#define NVIC_ISPR ((volatile uint32_t *)0xE000E200u)
#define NVIC_IPR ((volatile uint8_t *)0xE000E400u)

struct board_irq_slot {
    void (*fn)(void *);
    void *arg;
};
extern struct board_irq_slot board_irq_table[BOARD_IRQ_COUNT];
#define table board_irq_table

void board_irq_attach(unsigned irq, void (*handler)(void *arg), void *arg, uint8_t priority)
{
    if (irq >= BOARD_IRQ_COUNT) {
        return;
    }
    table[irq].fn = handler;
    table[irq].arg = arg;
    NVIC_IPR[irq] = priority;
    NVIC_ISER[irq / 32u] = 1u << (irq % 32u);
    __asm volatile("dsb\n\tisb" ::: "memory");
}

void board_irq_trigger(unsigned irq)
{
    if (irq < BOARD_IRQ_COUNT) {
        NVIC_ISPR[irq / 32u] = 1u << (irq % 32u);
        __asm volatile("dsb\n\tisb" ::: "memory");
    }
}

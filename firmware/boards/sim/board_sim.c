/* Simulator board: console and exit on the host, interrupt lines from the RTOS sim port. */
#include "board.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "keel/rtos_sim.h"

void board_console_putc(char c)
{
    putchar(c);
    if (c == '\n') {
        fflush(stdout);
    }
}

void board_console_write(const char *buf, size_t len)
{
    fwrite(buf, 1, len, stdout);
}

void board_console_puts(const char *s)
{
    fputs(s, stdout);
    fflush(stdout);
}

void board_console_put_u32(uint32_t v)
{
    printf("%" PRIu32, v);
}

void board_console_put_hex32(uint32_t v)
{
    printf("0x%08" PRIx32, v);
}

_Noreturn void board_exit(int code)
{
    fflush(stdout);
    exit(code);
}

/* Interrupt lines are the sim port's lines; the priority byte has no meaning there. */
void board_irq_attach(unsigned irq, void (*handler)(void *arg), void *arg, uint8_t priority)
{
    (void)priority;
    if (!keel_sim_exists()) {
        keel_rtos_init(); /* makes the default simulation */
    }
    (void)keel_sim_irq_attach(irq, handler, arg);
}

void board_irq_trigger(unsigned irq)
{
    (void)keel_sim_irq_raise(irq);
}

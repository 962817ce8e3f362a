/* Console on CMSDK APB UART0 (0x40004000). QEMU drops writes unless CTRL.TXEN is set, and
 * the data register must not be written while STATE.TXFULL is set. */
#include "board.h"

#include <stdint.h>

#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08u))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))
#define UART_STATE_TXFULL 0x1u
#define UART_CTRL_TXEN 0x1u
#define UART_CTRL_RXEN 0x2u

static void console_init_once(void)
{
    if ((UART_CTRL & UART_CTRL_TXEN) == 0) {
        UART_BAUDDIV = 16u; /* the smallest divider the CMSDK UART accepts */
        UART_CTRL |= UART_CTRL_TXEN | UART_CTRL_RXEN;
    }
}

void board_console_putc(char c)
{
    console_init_once();
    if (c == '\n') {
        board_console_putc('\r');
    }
    while (UART_STATE & UART_STATE_TXFULL) {
    }
    UART_DATA = (uint8_t)c;
}

void board_console_write(const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        board_console_putc(buf[i]);
    }
}

void board_console_puts(const char *s)
{
    while (*s) {
        board_console_putc(*s++);
    }
}

void board_console_put_u32(uint32_t v)
{
    char digits[10];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0);
    while (n > 0) {
        board_console_putc(digits[--n]);
    }
}

void board_console_put_hex32(uint32_t v)
{
    static const char hex[] = "0123456789abcdef";
    board_console_puts("0x");
    for (int shift = 28; shift >= 0; shift -= 4) {
        board_console_putc(hex[(v >> shift) & 0xfu]);
    }
}

/* Intercore echo firmware on QEMU mps2-an386, bare metal: the channel region is the PSRAM at
 * 0x21000000 (backed by a host file the connected core maps), the doorbell is UART1 (RX
 * interrupt in, a written byte out), and the CPU sleeps in WFI between doorbells. */
#include <stdint.h>

#include "board.h"
#include "icc_echo.h"

#define REGION ((void *)0x21000000u)
#define REGION_MAX (16u * 1024u * 1024u)
#define UART1_BASE 0x40005000u
#define UART1_RX_IRQ 2u

static uint8_t buf[KEEL_ICC_MAX_MSG];

int main(void)
{
    static keel_icc_rt_uart uart;
    keel_icc_rt_bell bell;
    keel_icc_rt_uart_bell_init(&uart, &bell, UART1_BASE, UART1_RX_IRQ);
    keel_icc_rt c;
    keel_icc_err rc = keel_icc_rt_attach(&c, REGION, REGION_MAX, KEEL_ICC_SIDE_B, &bell);
    if (rc != KEEL_ICC_OK) {
        board_console_puts("icc_echo: attach: ");
        board_console_puts(keel_icc_err_name(rc));
        board_console_puts("\nicc_echo: header");
        for (unsigned i = 0; i < 6; i++) {
            board_console_puts(" ");
            board_console_put_hex32(((volatile uint32_t *)REGION)[i]);
        }
        board_console_puts("\n");
        return 3;
    }
    board_console_puts("icc_echo: attached\n");
    return icc_echo_serve(&c, NULL, buf, sizeof buf);
}

/* Real-time firmware that echoes every intercore message back to the connected core, for the
 * end-to-end tests: on QEMU mps2-an386 the channel region is the PSRAM at 0x21000000 (backed
 * by a host file) and the doorbell is UART1. A message of type 2 (QUIT) ends the run; the exit
 * code is 0 if every message arrived in sequence. */
#include <stdint.h>

#include "board.h"
#include "icc_rt.h"

#define REGION ((void *)0x21000000u)
#define REGION_MAX (16u * 1024u * 1024u)
#define UART1_BASE 0x40005000u
#define UART1_RX_IRQ 2u

enum { T_DATA = 1, T_QUIT = 2, T_ECHO = 3 };

static uint8_t buf[KEEL_ICC_MAX_MSG];

int main(void)
{
    keel_icc_rt_bell bell;
    keel_icc_rt_uart_bell_init(&bell, UART1_BASE, UART1_RX_IRQ);
    keel_icc_rt c;
    keel_icc_err rc = keel_icc_rt_attach(&c, REGION, REGION_MAX, KEEL_ICC_SIDE_B, &bell);
    if (rc != KEEL_ICC_OK) {
        board_console_puts("icc_echo: attach: ");
        board_console_puts(keel_icc_err_name(rc));
        board_console_puts("\n");
        return 3;
    }
    board_console_puts("icc_echo: attached\n");
    uint32_t count = 0;
    for (;;) {
        keel_icc_msg m;
        rc = keel_icc_rt_recv(&c, &m, buf, sizeof buf);
        if (rc != KEEL_ICC_OK) break;
        if (m.type == T_QUIT) {
            board_console_puts("icc_echo: echoed ");
            board_console_put_u32(count);
            board_console_puts("\n");
            return 0;
        }
        uint16_t flags = (m.flags & KEEL_ICC_F_REQUEST) ? KEEL_ICC_F_REPLY : 0;
        rc = keel_icc_rt_send(&c, T_ECHO, flags, m.corr, buf, m.len);
        if (rc != KEEL_ICC_OK) break;
        count++;
    }
    board_console_puts("icc_echo: ");
    board_console_puts(keel_icc_err_name(rc));
    board_console_puts("\n");
    return 4;
}

/* Echo service: every message goes back with its payload; a request gets a reply carrying its
 * correlation ID. The firmware side of the intercore end-to-end tests (QEMU and sim). */
#include "icc_echo.h"

#include "board.h"

static uint8_t buf[KEEL_ICC_MAX_MSG];

int icc_echo_serve(keel_icc_rt *c)
{
    uint32_t count = 0;
    keel_icc_err rc;
    for (;;) {
        keel_icc_msg m;
        rc = keel_icc_rt_recv(c, &m, buf, sizeof buf);
        if (rc != KEEL_ICC_OK)
            break;
        if (m.type == ICC_ECHO_QUIT) {
            board_console_puts("icc_echo: echoed ");
            board_console_put_u32(count);
            board_console_puts("\n");
            return 0;
        }
        uint16_t flags = (m.flags & KEEL_ICC_F_REQUEST) ? KEEL_ICC_F_REPLY : 0;
        rc = keel_icc_rt_send(c, ICC_ECHO_REPLY, flags, m.corr, buf, m.len);
        if (rc != KEEL_ICC_OK)
            break;
        count++;
    }
    board_console_puts("icc_echo: ");
    board_console_puts(keel_icc_err_name(rc));
    board_console_puts(" after ");
    board_console_put_u32(count);
    board_console_puts("\n");
    return 4;
}

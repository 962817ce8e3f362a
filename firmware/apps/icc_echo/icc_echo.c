/* Echo service: every message goes back with its payload; a request gets a reply carrying its
 * correlation ID. The firmware side of the intercore end-to-end tests (QEMU and sim), and of
 * the supervisor's RT heartbeat and crash tests (STALL, FAULT). */
#include "icc_echo.h"

#include "board.h"

static void stall(icc_echo_watch *w)
{
    board_console_puts("icc_echo: stalling\n");
    for (;;) {
        if (w && w->block) {
            w->block();
        }
    }
}

int icc_echo_serve(keel_icc_rt *c, icc_echo_watch *w, uint8_t *buf, size_t cap)
{
    uint32_t count = 0;
    keel_icc_err rc;
    for (;;) {
        keel_icc_msg m;
        rc = keel_icc_rt_recv(c, &m, buf, cap);
        if (rc != KEEL_ICC_OK)
            break;
        if (w) {
            w->busy = 1;
        }
        if (m.type == ICC_ECHO_QUIT) {
            board_console_puts("icc_echo: echoed ");
            board_console_put_u32(count);
            board_console_puts("\n");
            return 0;
        }
        if (m.type == ICC_ECHO_STALL) {
            stall(w); /* busy stays 1: the watchdog stops beating */
        }
        if (m.type == ICC_ECHO_CORRUPT) {
            board_console_puts("icc_echo: corrupting the reply ring\n");
            atomic_store_explicit(&c->ring.tx_ctrl->head, c->ring.tx_head + 0x40000000u,
                                  memory_order_release);
            c->bell.ring(c->bell.ctx);
            stall(w);
        }
        if (m.type == ICC_ECHO_FAULT) {
            board_console_puts("icc_echo: faulting\n");
            __builtin_trap();
        }
        uint16_t flags = (m.flags & KEEL_ICC_F_REQUEST) ? KEEL_ICC_F_REPLY : 0;
        rc = keel_icc_rt_send(c, ICC_ECHO_REPLY, flags, m.corr, buf, m.len);
        if (rc != KEEL_ICC_OK)
            break;
        count++;
        if (w) {
            w->progress++;
            w->busy = 0;
        }
    }
    board_console_puts("icc_echo: ");
    board_console_puts(keel_icc_err_name(rc));
    board_console_puts(" after ");
    board_console_put_u32(count);
    board_console_puts("\n");
    return 4;
}

bool icc_echo_alive(icc_echo_watch *w, uint32_t *last)
{
    uint32_t p = w->progress;
    bool alive = !w->busy || p != *last;
    *last = p;
    return alive;
}

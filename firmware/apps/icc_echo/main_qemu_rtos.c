/* Intercore echo firmware on QEMU mps2-an386 with Keel's RTOS: the channel region is the PSRAM
 * at 0x21000000 (backed by a host file the connected core maps); UART1's RX interrupt gives a
 * semaphore the serving thread waits on; a byte written to UART1 rings the connected core. */
#include <stdint.h>

#include "board.h"
#include "icc_echo.h"
#include "icc_rt_rtos.h"

#define REGION ((void *)0x21000000u)
#define REGION_MAX (16u * 1024u * 1024u)
#define UART1_BASE 0x40005000u
#define UART1_RX_IRQ 2u

static keel_icc_rt chan;
static keel_rtos_thread thread;
static _Alignas(8) uint8_t stack[4096];

static void serve(void *arg)
{
    (void)arg;
    board_exit(icc_echo_serve(&chan));
}

int main(void)
{
    keel_rtos_init();
    static keel_icc_rt_uart_rtos uart;
    keel_icc_rt_bell bell;
    keel_icc_err rc = keel_icc_rt_uart_rtos_bell_init(&uart, &bell, UART1_BASE, UART1_RX_IRQ);
    if (rc == KEEL_ICC_OK) {
        rc = keel_icc_rt_attach(&chan, REGION, REGION_MAX, KEEL_ICC_SIDE_B, &bell);
    }
    if (rc != KEEL_ICC_OK) {
        board_console_puts("icc_echo: attach: ");
        board_console_puts(keel_icc_err_name(rc));
        board_console_puts("\n");
        return 3;
    }
    keel_rtos_thread_config cfg = {.name = "icc_echo",
                                   .entry = serve,
                                   .stack = stack,
                                   .stack_size = sizeof stack,
                                   .priority = 4};
    if (keel_rtos_thread_create(&thread, &cfg) != KEEL_RTOS_OK) {
        return 3;
    }
    board_console_puts("icc_echo: attached\n");
    keel_rtos_start();
    return 5;
}

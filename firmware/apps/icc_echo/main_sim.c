/* Intercore echo firmware on the RTOS sim port: a host process that receives its channel end
 * from the connected core over a Unix socket (SCM_RIGHTS, as keeld hands it to keel-sim),
 * maps the region, and serves from an RTOS thread that sleeps on a semaphore the doorbell's
 * virtual interrupt gives.
 *
 *   fw_icc_echo FD     FD: the Unix socket the end arrives on */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "board.h"
#include "icc_echo.h"
#include "icc_rt_sim.h"
#include "keel/rtos_sim.h"

#define BELL_IRQ 8u

static keel_icc_rt chan;
static keel_rtos_thread thread;
static _Alignas(16) uint8_t stack[64 * 1024];

static void serve(void *arg)
{
    (void)arg;
    board_exit(icc_echo_serve(&chan));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fw_icc_echo FD\n");
        return 2;
    }
    keel_icc_end e;
    keel_icc_err rc = keel_icc_end_recv(atoi(argv[1]), &e);
    struct stat st;
    if (rc != KEEL_ICC_OK || fstat(e.mem, &st) != 0) {
        fprintf(stderr, "icc_echo: no channel end: %s\n", keel_icc_err_name(rc));
        return 3;
    }
    void *mem = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, e.mem, 0);
    keel_sim_config sc = keel_sim_config_default();
    if (mem == MAP_FAILED || keel_sim_create(&sc) != KEEL_SIM_OK) {
        return 3;
    }
    static keel_icc_rt_sim_bell sb;
    keel_icc_rt_bell bell;
    if (keel_icc_rt_sim_bell_init(&sb, &bell, e.bell_in, e.bell_out, e.link, BELL_IRQ) !=
            KEEL_ICC_OK ||
        (rc = keel_icc_rt_attach(&chan, mem, (size_t)st.st_size, e.side, &bell)) != KEEL_ICC_OK) {
        fprintf(stderr, "icc_echo: attach: %s\n", keel_icc_err_name(rc));
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
    return 0;
}

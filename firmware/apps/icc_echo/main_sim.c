/* Intercore echo firmware on the RTOS sim port: a host process that receives its channel end
 * over a Unix socket (SCM_RIGHTS), maps the region, and serves from an RTOS thread that sleeps
 * on a semaphore the doorbell's virtual interrupt gives.
 *
 *   fw_icc_echo FD     FD: the Unix socket the end arrives on (the intercore tests)
 *   fw_icc_echo        under keeld, as a package of kind "rt": the end arrives on
 *                      $KEEL_RT_CHANNEL_FD; the sim is paced to the wall clock and a watchdog
 *                      thread beats (board_heartbeat -> keeld's socket) while the serving
 *                      thread is waiting or making progress. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "board.h"
#include "icc_echo.h"
#include "icc_rt_sim.h"
#include "keel/rtos_sim.h"

#define BELL_IRQ 8u

static uint8_t buf[KEEL_ICC_MAX_MSG];
#define WATCHDOG_MS 50u

static keel_icc_rt chan;
static keel_rtos_thread thread, dog;
static _Alignas(16) uint8_t stack[64 * 1024], dog_stack[64 * 1024];
static icc_echo_watch watch;

static void block_forever(void)
{
    (void)keel_rtos_thread_suspend(keel_rtos_thread_self());
}

static void serve(void *arg)
{
    (void)arg;
    board_exit(icc_echo_serve(&chan, &watch, buf, sizeof buf));
}

static void watchdog(void *arg)
{
    (void)arg;
    uint32_t last = 0;
    uint32_t ticks = (uint32_t)((uint64_t)WATCHDOG_MS * keel_rtos_tick_hz() / 1000u);
    for (;;) {
        if (icc_echo_alive(&watch, &last)) {
            board_heartbeat();
        }
        (void)keel_rtos_thread_sleep(ticks ? ticks : 1u);
    }
}

int main(int argc, char **argv)
{
    const char *env = getenv("KEEL_RT_CHANNEL_FD");
    bool under_keeld = argc == 1 && env != NULL;
    if (argc != 2 && !under_keeld) {
        fprintf(stderr, "usage: fw_icc_echo FD (or under keeld: $KEEL_RT_CHANNEL_FD)\n");
        return 2;
    }
    keel_icc_end e;
    keel_icc_err rc = keel_icc_end_recv(atoi(under_keeld ? env : argv[1]), &e);
    struct stat st;
    if (rc != KEEL_ICC_OK || fstat(e.mem, &st) != 0) {
        fprintf(stderr, "icc_echo: no channel end: %s\n", keel_icc_err_name(rc));
        return 3;
    }
    void *mem = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, e.mem, 0);
    keel_sim_config sc = keel_sim_config_default();
    sc.paced = under_keeld; /* a supervised core runs in wall time, idle when it is idle */
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
    watch.block = block_forever;
    keel_rtos_thread_config cfg = {.name = "icc_echo",
                                   .entry = serve,
                                   .stack = stack,
                                   .stack_size = sizeof stack,
                                   .priority = 4};
    keel_rtos_thread_config dcfg = {.name = "watchdog",
                                    .entry = watchdog,
                                    .stack = dog_stack,
                                    .stack_size = sizeof dog_stack,
                                    .priority = 2};
    if (keel_rtos_thread_create(&thread, &cfg) != KEEL_RTOS_OK ||
        (under_keeld && keel_rtos_thread_create(&dog, &dcfg) != KEEL_RTOS_OK)) {
        return 3;
    }
    board_console_puts("icc_echo: attached\n");
    keel_rtos_start();
    return 0;
}

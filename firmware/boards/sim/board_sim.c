/* Simulator board: console and exit on the host, interrupt lines from the RTOS sim port, and
 * the firmware's heartbeat as a record on keeld's socket. */
#include "board.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

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

/* The beat goes to keeld's socket of this process ($KEEL_APP_FD, a SEQPACKET socket: any record
 * is a beat). Rate-limited in wall time: the sim may run virtual time much faster than the wall
 * clock, and keeld needs a beat per heartbeat period, not one per virtual tick. */
#define BEAT_MIN_INTERVAL_NS 20000000LL

void board_heartbeat(void)
{
    static int fd = -2;
    static int64_t last_ns;
    if (fd == -2) {
        const char *env = getenv("KEEL_APP_FD");
        fd = env ? atoi(env) : -1;
    }
    if (fd < 0) {
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    if (last_ns != 0 && now - last_ns < BEAT_MIN_INTERVAL_NS) {
        return;
    }
    last_ns = now;
    /* non-blocking: a beat keeld has not read yet is as good as a new one */
    (void)send(fd, ".", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

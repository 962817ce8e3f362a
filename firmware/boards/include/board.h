/* Board interface every real-time-core board provides: console, exit, clock, interrupts.
 * Firmware and tests use only this header, so they build for any board that implements it:
 * mps2-an386 on QEMU (firmware/boards/mps2-an386) and the simulator board, which implements it
 * on the host for the RTOS sim port (firmware/boards/sim). */
#ifndef KEEL_BOARD_H
#define KEEL_BOARD_H

#include <stddef.h>
#include <stdint.h>

/* Core clock in Hz (SysTick runs from it). */
#define BOARD_CPU_HZ 25000000u

/* Number of external interrupt lines in the vector table. */
#define BOARD_IRQ_COUNT 48

void board_console_putc(char c);
void board_console_puts(const char *s);
void board_console_write(const char *buf, size_t len);
/* Decimal and hex helpers: firmware avoids printf to stay small and deterministic. */
void board_console_put_u32(uint32_t v);
void board_console_put_hex32(uint32_t v);

/* Interrupt lines, the same on every board. handler(arg) runs in interrupt context (it may
 * call the RTOS with KEEL_RTOS_NO_WAIT). priority: the NVIC priority byte (0x20..0xff for
 * handlers that call the RTOS; the sim board ignores it). Attaching enables the line. */
void board_irq_attach(unsigned irq, void (*handler)(void *arg), void *arg, uint8_t priority);
/* Pends the line from software, as a device would (Thread-Metric's software interrupt). */
void board_irq_trigger(unsigned irq);

/* Tells whoever supervises this core that the firmware is alive. Call it from the code that
 * proves it (a thread's main loop once per period, or a watchdog thread that checks the others
 * made progress), never from a timer interrupt: a beat from an interrupt says only that
 * interrupts still run. Cheap enough to call often (the boards rate-limit what they forward).
 * Sim board: a record on $KEEL_APP_FD (keeld's heartbeat socket) when it is set, at most every
 * 20 ms of wall time. mps2-an386: +1 on the heartbeat counter of the channel table in shared
 * PSRAM (keel/icc.h), which the QEMU loader forwards; nothing when there is no table. */
void board_heartbeat(void);

/* Ends the run: under QEMU the semihosting exit code becomes the process exit status. */
_Noreturn void board_exit(int code);

#endif

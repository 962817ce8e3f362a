/* Board interface, simulator board: the same API as every real-time-core board, implemented on
 * the host so firmware and its tests build unchanged for the RTOS sim port (virtual time). */
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

/* Ends the run: under QEMU the semihosting exit code becomes the process exit status. */
_Noreturn void board_exit(int code);

#endif

/* The firmware's heartbeat on mps2-an386 under QEMU: +1 on the counter in the channel table the
 * QEMU loader (tools/keel-qemu) writes at the start of the shared PSRAM; the loader forwards
 * each change to keeld. Without a table (the firmware runs under scripts/qemu-run.sh, or the
 * PSRAM holds a bare channel region) there is nobody to tell: nothing is written. */
#include "board.h"

#include "keel/icc.h"

#define PSRAM_BASE 0x21000000u

void board_heartbeat(void)
{
    keel_icc_table *t = (keel_icc_table *)PSRAM_BASE;
    if (*(volatile uint32_t *)&t->magic != KEEL_ICC_TABLE_MAGIC) {
        return;
    }
    /* only this core writes the counter: a relaxed increment; the loader reads it */
    atomic_fetch_add_explicit(&t->heartbeat, 1u, memory_order_relaxed);
}

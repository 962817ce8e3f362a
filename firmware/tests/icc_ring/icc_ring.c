/* The intercore ring core on the real-time core itself: the same checks as the host's unit
 * tests that matter for a port (C11 atomics, alignment, wrap-around, back-pressure, every size,
 * corrupt indices and headers), compiled by arm-none-eabi-gcc and run under QEMU (fw.icc_ring)
 * and on the sim board (sim.icc_ring). Both sides live in one region in this core's RAM. */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "keel/icc.h"

#define RING 2048u
static _Alignas(64) uint8_t region[KEEL_ICC_DATA_OFFSET + 2 * RING];
static uint8_t out[KEEL_ICC_MIN_MSG], in[KEEL_ICC_MIN_MSG];
static int failures;

static void check(int ok, const char *what)
{
    if (!ok) {
        board_console_puts("FAIL: ");
        board_console_puts(what);
        board_console_puts("\n");
        failures++;
    }
}

static void fill(uint8_t *p, uint32_t n, uint32_t seed)
{
    for (uint32_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 31u + i * 7u);
}

static void fresh(keel_icc_ring *a, keel_icc_ring *b)
{
    keel_icc_layout l = {.ring_bytes = RING, .max_msg = KEEL_ICC_MIN_MSG};
    l.id_a.b[0] = 0xa;
    l.id_b.b[0] = 0xb;
    check(keel_icc_region_init(region, sizeof region, &l) == KEEL_ICC_OK, "region_init");
    check(keel_icc_ring_attach(a, region, sizeof region, KEEL_ICC_SIDE_A) == KEEL_ICC_OK,
          "attach A");
    check(keel_icc_ring_attach(b, region, sizeof region, KEEL_ICC_SIDE_B) == KEEL_ICC_OK,
          "attach B");
}

static void every_size_and_wrap(void)
{
    keel_icc_ring a, b;
    fresh(&a, &b);
    bool bell;
    keel_icc_msg m;
    uint32_t seq = 0;
    for (uint32_t round = 0; round < 3; round++) {
        for (uint32_t n = 0; n <= KEEL_ICC_MIN_MSG; n++) {
            fill(out, n, n + round);
            check(keel_icc_ring_send(&a, 1, 0, 0, out, n, NULL, &bell) == KEEL_ICC_OK, "send");
            check(keel_icc_ring_recv(&b, &m, in, sizeof in, &bell) == KEEL_ICC_OK, "recv");
            check(m.len == n && m.seq == ++seq && memcmp(in, out, n) == 0, "message intact");
            if (failures)
                return;
        }
    }
}

static void full_then_drain(void)
{
    keel_icc_ring a, b;
    fresh(&a, &b);
    bool bell;
    uint32_t sent = 0;
    while (keel_icc_ring_send(&b, 2, 0, 0, out, 100, NULL, &bell) == KEEL_ICC_OK)
        sent++;
    check(sent == RING / keel_icc_frame_bytes(100), "ring holds what fits, no more");
    keel_icc_msg m;
    uint32_t got = 0;
    while (keel_icc_ring_recv(&a, &m, in, sizeof in, &bell) == KEEL_ICC_OK)
        got++;
    check(got == sent, "everything queued comes out");
}

static void corrupt_rejected(void)
{
    keel_icc_ring a, b;
    fresh(&a, &b);
    bool bell;
    keel_icc_msg m;
    check(keel_icc_ring_send(&a, 1, 0, 0, "abc", 3, NULL, &bell) == KEEL_ICC_OK, "send");
    uint32_t bad = KEEL_ICC_MIN_MSG + 1;
    memcpy(region + KEEL_ICC_DATA_OFFSET, &bad, 4);
    check(keel_icc_ring_recv(&b, &m, in, sizeof in, &bell) == KEEL_ICC_ERR_CORRUPT,
          "corrupt length rejected");
    keel_icc_ring r;
    check(keel_icc_ring_attach(&r, region, KEEL_ICC_DATA_OFFSET, KEEL_ICC_SIDE_B) ==
              KEEL_ICC_ERR_REGION,
          "too-small region rejected");
}

int main(void)
{
    every_size_and_wrap();
    full_then_drain();
    corrupt_rejected();
    board_console_puts(failures == 0 ? "PASS\n" : "FAIL\n");
    return failures;
}

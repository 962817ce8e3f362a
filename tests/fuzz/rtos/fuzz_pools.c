/* Fuzzes the byte pool, the block pool and a queue with operation sequences read from the
 * input: allocate, free (good, bad and double), send, receive. Every live allocation is
 * filled with its own pattern and checked before it is freed, so any overlap, lost block or
 * corrupted header shows; at the end everything is freed and the pools must be whole again.
 * Runs from the host between simulation runs (no waiting), which the kernel allows. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keel/rtos.h"
#include "keel/rtos_sim.h"

#define SLOTS 24

static _Alignas(16) uint8_t byte_mem[2048];
static _Alignas(16) uint8_t block_mem[16 * 48];
static _Alignas(16) uint8_t queue_mem[8 * 12];

static void check(int ok)
{
    if (!ok) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!keel_sim_exists()) {
        keel_sim_config c = keel_sim_config_default();
        check(keel_sim_create(&c) == KEEL_SIM_OK);
    }
    keel_rtos_byte_pool bp;
    keel_rtos_block_pool kp;
    keel_rtos_queue q;
    check(keel_rtos_byte_pool_create(&bp, byte_mem, sizeof byte_mem) == KEEL_RTOS_OK);
    check(keel_rtos_block_pool_create(&kp, 48, block_mem, sizeof block_mem) == KEEL_RTOS_OK);
    check(keel_rtos_queue_create(&q, queue_mem, 12, 8) == KEEL_RTOS_OK);
    size_t full = keel_rtos_byte_pool_largest(&bp);
    uint32_t blocks = keel_rtos_block_pool_available(&kp);
    struct {
        uint8_t *p;
        size_t n;
        uint8_t tag;
        int kind; /* 0 free slot, 1 byte pool, 2 block pool */
    } live[SLOTS] = {0};
    uint32_t sent = 0, received = 0;

    for (size_t i = 0; i + 2 < size; i += 3) {
        uint8_t op = data[i] % 6, slot = data[i + 1] % SLOTS, arg = data[i + 2];
        switch (op) {
        case 0: /* byte alloc */
        case 1: /* block alloc */
            if (live[slot].kind == 0) {
                void *p = NULL;
                size_t n = op == 0 ? (size_t)arg * 3u + 1u : 48u;
                keel_rtos_err e = op == 0 ? keel_rtos_byte_alloc(&bp, &p, n, KEEL_RTOS_NO_WAIT)
                                          : keel_rtos_block_alloc(&kp, &p, KEEL_RTOS_NO_WAIT);
                if (e == KEEL_RTOS_OK) {
                    live[slot].p = p;
                    live[slot].n = n;
                    live[slot].tag = (uint8_t)(i + 1);
                    live[slot].kind = op + 1;
                    memset(p, live[slot].tag, n);
                } else {
                    check(e == KEEL_RTOS_ERR_UNAVAILABLE);
                }
            }
            break;
        case 2: /* free what the slot holds */
            if (live[slot].kind != 0) {
                for (size_t k = 0; k < live[slot].n; k++) {
                    check(live[slot].p[k] == live[slot].tag);
                }
                keel_rtos_err e = live[slot].kind == 1 ? keel_rtos_byte_free(&bp, live[slot].p)
                                                       : keel_rtos_block_free(&kp, live[slot].p);
                check(e == KEEL_RTOS_OK);
                /* a second free of the same pointer must be refused */
                if (live[slot].kind == 1) {
                    check(keel_rtos_byte_free(&bp, live[slot].p) == KEEL_RTOS_ERR_INVALID);
                }
                live[slot].kind = 0;
            }
            break;
        case 3: /* a bad pointer: inside a pool but not a block start */
            /* odd addresses: never an allocation (they are 8-byte aligned) */
            check(keel_rtos_byte_free(&bp, byte_mem + 1 + 2 * (arg % 32)) == KEEL_RTOS_ERR_INVALID);
            check(keel_rtos_block_free(&kp, block_mem + 1 + arg % 40) == KEEL_RTOS_ERR_INVALID);
            break;
        case 4: { /* send */
            uint32_t m[3] = {sent, ~sent, arg};
            keel_rtos_err e = keel_rtos_queue_send(&q, m, KEEL_RTOS_NO_WAIT);
            check(e == KEEL_RTOS_OK || (e == KEEL_RTOS_ERR_UNAVAILABLE && sent - received == 8));
            sent += e == KEEL_RTOS_OK;
            break;
        }
        default: { /* receive */
            uint32_t m[3];
            keel_rtos_err e = keel_rtos_queue_receive(&q, m, KEEL_RTOS_NO_WAIT);
            if (e == KEEL_RTOS_OK) {
                check(m[0] == received && m[1] == ~received);
                received++;
            } else {
                check(e == KEEL_RTOS_ERR_UNAVAILABLE && sent == received);
            }
        }
        }
    }
    for (int s = 0; s < SLOTS; s++) {
        if (live[s].kind == 1) {
            check(keel_rtos_byte_free(&bp, live[s].p) == KEEL_RTOS_OK);
        } else if (live[s].kind == 2) {
            check(keel_rtos_block_free(&kp, live[s].p) == KEEL_RTOS_OK);
        }
    }
    check(keel_rtos_byte_pool_largest(&bp) == full);
    check(keel_rtos_block_pool_available(&kp) == blocks);
    check(keel_rtos_queue_count(&q) == sent - received);
    return 0;
}

/* The ring core on plain memory, both sides in one thread: empty and full, wrap-around, every
 * message size up to the maximum, corrupt headers and indices, regions too small or malformed,
 * forged senders, doorbell decisions and resuming after a re-attach. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "keel/icc.h"

typedef struct fixture {
    void *mem;
    size_t size;
    keel_icc_ring a, b;
} fixture;

static const keel_icc_id ID_A = {{0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab,
                                  0xac, 0xad, 0xae, 0xaf, 0xa0}};
static const keel_icc_id ID_B = {{0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb,
                                  0xbc, 0xbd, 0xbe, 0xbf, 0xb0}};

static void setup_with(fixture *f, uint32_t ring, uint32_t max_msg)
{
    keel_icc_layout l = {.ring_bytes = ring, .max_msg = max_msg, .id_a = ID_A, .id_b = ID_B};
    f->size = keel_icc_region_bytes(ring);
    assert_true(f->size > 0);
    f->mem = aligned_alloc(64, f->size);
    assert_non_null(f->mem);
    assert_int_equal(keel_icc_region_init(f->mem, f->size, &l), KEEL_ICC_OK);
    assert_int_equal(keel_icc_ring_attach(&f->a, f->mem, f->size, KEEL_ICC_SIDE_A), KEEL_ICC_OK);
    assert_int_equal(keel_icc_ring_attach(&f->b, f->mem, f->size, KEEL_ICC_SIDE_B), KEEL_ICC_OK);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    setup_with(f, KEEL_ICC_MIN_RING, KEEL_ICC_MIN_MSG);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    free(f->mem);
    free(f);
    return 0;
}

static keel_icc_err send(keel_icc_ring *r, const void *d, size_t n)
{
    bool bell;
    return keel_icc_ring_send(r, 7, 0, 0, d, n, NULL, &bell);
}

static keel_icc_err recv(keel_icc_ring *r, keel_icc_msg *m, void *buf, size_t cap)
{
    bool bell;
    return keel_icc_ring_recv(r, m, buf, cap, &bell);
}

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 31u + i * 7u);
}

static void test_recv_empty_ring_would_block(void **state)
{
    fixture *f = *state;
    keel_icc_msg m;
    uint8_t buf[16];
    assert_int_equal(recv(&f->b, &m, buf, sizeof buf), KEEL_ICC_ERR_WOULD_BLOCK);
    assert_int_equal(recv(&f->a, &m, buf, sizeof buf), KEEL_ICC_ERR_WOULD_BLOCK);
    assert_false(keel_icc_ring_readable(&f->b));
}

static void test_send_recv_fields_and_both_directions(void **state)
{
    fixture *f = *state;
    bool bell;
    uint32_t seq = 0;
    assert_int_equal(
        keel_icc_ring_send(&f->a, 0x1234, KEEL_ICC_F_REQUEST, 99, "hello", 5, &seq, &bell),
        KEEL_ICC_OK);
    assert_int_equal(seq, 1);
    assert_false(bell); /* nobody was waiting */
    assert_true(keel_icc_ring_readable(&f->b));
    keel_icc_msg m;
    char buf[16];
    assert_int_equal(keel_icc_ring_recv(&f->b, &m, buf, sizeof buf, &bell), KEEL_ICC_OK);
    assert_int_equal(m.len, 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(m.type, 0x1234);
    assert_int_equal(m.flags, KEEL_ICC_F_REQUEST);
    assert_int_equal(m.corr, 99);
    assert_int_equal(m.seq, 1);
    assert_memory_equal(m.sender.b, ID_A.b, 16);
    assert_int_equal(send(&f->b, "back", 4), KEEL_ICC_OK);
    assert_int_equal(recv(&f->a, &m, buf, sizeof buf), KEEL_ICC_OK);
    assert_memory_equal(buf, "back", 4);
    assert_memory_equal(m.sender.b, ID_B.b, 16);
    /* A zero-length message is a message. */
    assert_int_equal(send(&f->a, NULL, 0), KEEL_ICC_OK);
    assert_int_equal(recv(&f->b, &m, NULL, 0), KEEL_ICC_OK);
    assert_int_equal(m.len, 0);
    assert_int_equal(m.seq, 2);
}

static void test_send_full_ring_would_block_never_overwrites(void **state)
{
    fixture *f = *state;
    uint8_t msg[100];
    uint32_t sent = 0;
    for (;;) {
        fill_pattern(msg, sizeof msg, sent);
        keel_icc_err rc = send(&f->a, msg, sizeof msg);
        if (rc == KEEL_ICC_ERR_WOULD_BLOCK)
            break;
        assert_int_equal(rc, KEEL_ICC_OK);
        sent++;
    }
    /* 2048 bytes of ring, 136 bytes a frame: 15 fit, the 16th does not. */
    assert_int_equal(sent, KEEL_ICC_MIN_RING / keel_icc_frame_bytes(sizeof msg));
    assert_int_equal(send(&f->a, msg, sizeof msg), KEEL_ICC_ERR_WOULD_BLOCK);
    uint8_t got[100], want[100];
    keel_icc_msg m;
    for (uint32_t i = 0; i < sent; i++) {
        assert_int_equal(recv(&f->b, &m, got, sizeof got), KEEL_ICC_OK);
        fill_pattern(want, sizeof want, i);
        assert_memory_equal(got, want, sizeof want);
        assert_int_equal(m.seq, i + 1);
    }
    assert_int_equal(recv(&f->b, &m, got, sizeof got), KEEL_ICC_ERR_WOULD_BLOCK);
    /* Space is back once consumed. */
    assert_int_equal(send(&f->a, msg, sizeof msg), KEEL_ICC_OK);
}

static void test_wraparound_many_times_odd_sizes_intact(void **state)
{
    fixture *f = *state;
    uint8_t out[KEEL_ICC_MIN_MSG], in[KEEL_ICC_MIN_MSG];
    uint32_t next_send = 0, next_recv = 0;
    /* Odd sizes make frames straddle the end of the ring at every offset, headers included. */
    while (next_recv < 20000) {
        size_t n = (next_send * 37u + 3u) % 301u;
        fill_pattern(out, n, next_send);
        keel_icc_err rc = send(&f->a, out, n);
        if (rc == KEEL_ICC_OK) {
            next_send++;
            if (next_send % 3)
                continue; /* let the ring fill up between drains */
        } else {
            assert_int_equal(rc, KEEL_ICC_ERR_WOULD_BLOCK);
        }
        keel_icc_msg m;
        while (recv(&f->b, &m, in, sizeof in) == KEEL_ICC_OK) {
            size_t want_n = (next_recv * 37u + 3u) % 301u;
            assert_int_equal(m.len, want_n);
            fill_pattern(out, want_n, next_recv);
            assert_memory_equal(in, out, want_n);
            assert_int_equal(m.seq, next_recv + 1);
            next_recv++;
        }
    }
    assert_int_equal(next_send, next_recv);
}

static void every_size(uint32_t ring, uint32_t max_msg, uint32_t step)
{
    fixture f;
    setup_with(&f, ring, max_msg);
    uint8_t *out = malloc(max_msg), *in = malloc(max_msg);
    fill_pattern(out, max_msg, 5);
    keel_icc_msg m;
    for (uint32_t n = 0; n <= max_msg;
         n += (n + step > max_msg && n != max_msg) ? max_msg - n : step) {
        assert_int_equal(send(&f.a, out, n), KEEL_ICC_OK);
        memset(in, 0, n);
        assert_int_equal(recv(&f.b, &m, in, n), KEEL_ICC_OK);
        assert_int_equal(m.len, n);
        assert_memory_equal(in, out, n);
        if (n == max_msg)
            break;
    }
    assert_int_equal(send(&f.a, out, (size_t)max_msg + 1), KEEL_ICC_ERR_TOO_BIG);
    assert_int_equal(recv(&f.b, &m, in, max_msg), KEEL_ICC_ERR_WOULD_BLOCK);
    free(out);
    free(in);
    free(f.mem);
}

static void test_every_size_to_max_1k_and_64k(void **state)
{
    (void)state;
    every_size(KEEL_ICC_MIN_RING, KEEL_ICC_MIN_MSG, 1);
    every_size(4096, 3000, 1);
    every_size(128 * 1024, KEEL_ICC_MAX_MSG, 1);
}

static void test_recv_small_buffer_keeps_message(void **state)
{
    fixture *f = *state;
    assert_int_equal(send(&f->a, "0123456789", 10), KEEL_ICC_OK);
    keel_icc_msg m;
    char buf[16];
    assert_int_equal(recv(&f->b, &m, buf, 4), KEEL_ICC_ERR_BUF_SMALL);
    assert_int_equal(m.len, 10);
    assert_int_equal(recv(&f->b, &m, buf, sizeof buf), KEEL_ICC_OK);
    assert_memory_equal(buf, "0123456789", 10);
}

static void test_forged_sender_rejected_then_channel_continues(void **state)
{
    fixture *f = *state;
    /* A producer that claims to be someone else. */
    keel_icc_ring liar = f->a;
    liar.self.b[0] ^= 0xff;
    assert_int_equal(send(&liar, "evil", 4), KEEL_ICC_OK);
    f->a.tx_head = liar.tx_head;
    f->a.tx_seq = liar.tx_seq;
    assert_int_equal(send(&f->a, "good", 4), KEEL_ICC_OK);
    keel_icc_msg m;
    char buf[8] = {0};
    assert_int_equal(recv(&f->b, &m, buf, sizeof buf), KEEL_ICC_ERR_FORGED);
    assert_memory_not_equal(buf, "evil", 4); /* a forged payload is never handed over */
    assert_int_equal(recv(&f->b, &m, buf, sizeof buf), KEEL_ICC_OK);
    assert_memory_equal(buf, "good", 4);
    assert_int_equal(m.seq, 2);
}

/* Offsets of ring A->B's control block and data (docs/intercore.md). */
#define AB_CTRL(f) ((keel_icc_ctrl *)(void *)((uint8_t *)(f)->mem + KEEL_ICC_HEADER_BYTES))
#define AB_DATA(f) ((uint8_t *)(f)->mem + KEEL_ICC_DATA_OFFSET)

static void test_corrupt_length_rejected_and_ring_broken(void **state)
{
    fixture *f = *state;
    assert_int_equal(send(&f->a, "abc", 3), KEEL_ICC_OK);
    uint32_t bad = KEEL_ICC_MIN_MSG + 1;
    memcpy(AB_DATA(f), &bad, 4);
    keel_icc_msg m;
    char buf[8];
    assert_int_equal(recv(&f->b, &m, buf, sizeof buf), KEEL_ICC_ERR_CORRUPT);
    assert_int_equal(recv(&f->b, &m, buf, sizeof buf), KEEL_ICC_ERR_CORRUPT);
    assert_true(keel_icc_ring_readable(&f->b)); /* so an event loop comes and sees the error */
}

static void test_corrupt_length_beyond_published_rejected(void **state)
{
    fixture *f = *state;
    assert_int_equal(send(&f->a, "abc", 3), KEEL_ICC_OK);
    uint32_t bad = 200; /* within max_msg but beyond head */
    memcpy(AB_DATA(f), &bad, 4);
    keel_icc_msg m;
    char buf[256];
    assert_int_equal(recv(&f->b, &m, buf, sizeof buf), KEEL_ICC_ERR_CORRUPT);
}

static void test_corrupt_sequence_rejected(void **state)
{
    fixture *f = *state;
    assert_int_equal(send(&f->a, "abc", 3), KEEL_ICC_OK);
    uint32_t seq = 5;
    memcpy(AB_DATA(f) + 8, &seq, 4);
    keel_icc_msg m;
    char buf[8];
    assert_int_equal(recv(&f->b, &m, buf, sizeof buf), KEEL_ICC_ERR_CORRUPT);
}

static void test_corrupt_head_index_rejected(void **state)
{
    fixture *f = *state;
    keel_icc_msg m;
    char buf[8];
    atomic_store(&AB_CTRL(f)->head, KEEL_ICC_MIN_RING + 8); /* more than a ring ahead */
    assert_int_equal(recv(&f->b, &m, buf, sizeof buf), KEEL_ICC_ERR_CORRUPT);
    fixture g;
    setup_with(&g, KEEL_ICC_MIN_RING, KEEL_ICC_MIN_MSG);
    atomic_store(&AB_CTRL(&g)->head, 12); /* not 8-aligned */
    assert_int_equal(recv(&g.b, &m, buf, sizeof buf), KEEL_ICC_ERR_CORRUPT);
    free(g.mem);
}

static void test_corrupt_tail_index_rejected_by_sender(void **state)
{
    fixture *f = *state;
    atomic_store(&AB_CTRL(f)->tail, 0x80000000u);
    assert_int_equal(send(&f->a, "x", 1), KEEL_ICC_ERR_CORRUPT);
    assert_int_equal(send(&f->a, "x", 1), KEEL_ICC_ERR_CORRUPT);
}

static void test_attach_bad_regions_rejected(void **state)
{
    fixture *f = *state;
    keel_icc_ring r;
    /* Too small for the header, and smaller than the header says. */
    assert_int_equal(keel_icc_ring_attach(&r, f->mem, 64, KEEL_ICC_SIDE_A), KEEL_ICC_ERR_REGION);
    assert_int_equal(keel_icc_ring_attach(&r, f->mem, f->size - 1, KEEL_ICC_SIDE_A),
                     KEEL_ICC_ERR_REGION);
    uint8_t *h = f->mem;
    static const struct {
        size_t off;
        uint32_t val;
        int width;
    } pokes[] = {
        {0, 0x12345678, 4}, /* magic */
        {4, 2, 2},          /* version */
        {6, 128, 2},        /* header bytes */
        {8, 100, 4},        /* region bytes */
        {12, 3000, 4},      /* ring not a power of two */
        {12, 1024, 4},      /* ring below the minimum */
        {16, 512, 4},       /* max message below 1 KiB */
        {16, 4096, 4},      /* max frame larger than the ring */
    };
    for (size_t i = 0; i < sizeof pokes / sizeof pokes[0]; i++) {
        uint8_t saved[4];
        memcpy(saved, h + pokes[i].off, 4);
        memcpy(h + pokes[i].off, &pokes[i].val, (size_t)pokes[i].width);
        if (keel_icc_ring_attach(&r, f->mem, f->size, KEEL_ICC_SIDE_B) != KEEL_ICC_ERR_REGION) {
            fail_msg("poke %zu accepted", i);
        }
        memcpy(h + pokes[i].off, saved, 4);
    }
    assert_int_equal(keel_icc_ring_attach(&r, f->mem, f->size, KEEL_ICC_SIDE_B), KEEL_ICC_OK);
    /* Indices that cannot be: tail ahead of head. */
    atomic_store(&AB_CTRL(f)->tail, 64);
    assert_int_equal(keel_icc_ring_attach(&r, f->mem, f->size, KEEL_ICC_SIDE_B),
                     KEEL_ICC_ERR_REGION);
}

static void test_region_init_rejects_bad_layouts(void **state)
{
    (void)state;
    uint8_t *mem = aligned_alloc(64, 1 << 20);
    keel_icc_layout l = {.ring_bytes = 4096, .max_msg = 1024};
    assert_int_equal(keel_icc_region_init(mem, 100, &l), KEEL_ICC_ERR_REGION);
    assert_int_equal(keel_icc_region_init(mem + 8, 1 << 19, &l), KEEL_ICC_ERR_ARG);
    l.ring_bytes = 5000;
    assert_int_equal(keel_icc_region_init(mem, 1 << 20, &l), KEEL_ICC_ERR_ARG);
    l.ring_bytes = 4096;
    l.max_msg = 1023;
    assert_int_equal(keel_icc_region_init(mem, 1 << 20, &l), KEEL_ICC_ERR_ARG);
    l.max_msg = KEEL_ICC_MAX_MSG + 1;
    assert_int_equal(keel_icc_region_init(mem, 1 << 20, &l), KEEL_ICC_ERR_ARG);
    assert_int_equal(keel_icc_region_bytes(1000), 0);
    assert_int_equal(keel_icc_region_bytes(4096), KEEL_ICC_DATA_OFFSET + 8192);
    free(mem);
}

static void test_doorbell_rung_only_for_a_waiting_peer(void **state)
{
    fixture *f = *state;
    bool bell;
    assert_true(keel_icc_ring_arm_rx(&f->b)); /* empty: safe to sleep */
    assert_int_equal(keel_icc_ring_send(&f->a, 1, 0, 0, "x", 1, NULL, &bell), KEEL_ICC_OK);
    assert_true(bell);
    assert_int_equal(keel_icc_ring_send(&f->a, 1, 0, 0, "y", 1, NULL, &bell), KEEL_ICC_OK);
    assert_false(bell);                        /* one wake-up per wait */
    assert_false(keel_icc_ring_arm_rx(&f->b)); /* data there: do not sleep */
    /* Producer waits for space; the consumer's recv must say to ring it. */
    uint8_t big[KEEL_ICC_MIN_MSG] = {0};
    while (keel_icc_ring_send(&f->a, 1, 0, 0, big, sizeof big, NULL, &bell) == KEEL_ICC_OK) {
    }
    assert_true(keel_icc_ring_arm_tx(&f->a, sizeof big));
    keel_icc_msg m;
    assert_int_equal(keel_icc_ring_recv(&f->b, &m, big, sizeof big, &bell), KEEL_ICC_OK);
    assert_true(bell);
    assert_int_equal(keel_icc_ring_recv(&f->b, &m, big, sizeof big, &bell), KEEL_ICC_OK);
    assert_false(bell);
}

static void test_reattach_resumes_without_loss_or_duplicate(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(send(&f->a, &i, sizeof i), KEEL_ICC_OK);
    }
    keel_icc_msg m;
    int v;
    assert_int_equal(recv(&f->b, &m, &v, sizeof v), KEEL_ICC_OK);
    assert_int_equal(recv(&f->b, &m, &v, sizeof v), KEEL_ICC_OK);
    assert_int_equal(v, 1);
    /* Both sides "restart": fresh private state from the region. */
    assert_int_equal(keel_icc_ring_attach(&f->b, f->mem, f->size, KEEL_ICC_SIDE_B), KEEL_ICC_OK);
    assert_int_equal(keel_icc_ring_attach(&f->a, f->mem, f->size, KEEL_ICC_SIDE_A), KEEL_ICC_OK);
    int i = 5;
    assert_int_equal(send(&f->a, &i, sizeof i), KEEL_ICC_OK);
    for (int want = 2; want <= 5; want++) {
        assert_int_equal(recv(&f->b, &m, &v, sizeof v), KEEL_ICC_OK);
        assert_int_equal(v, want);
        assert_int_equal(m.seq, (uint32_t)want + 1);
    }
    assert_int_equal(recv(&f->b, &m, &v, sizeof v), KEEL_ICC_ERR_WOULD_BLOCK);
}

static void test_err_name_every_value(void **state)
{
    (void)state;
    for (int e = 0; e < KEEL_ICC_ERR_COUNT; e++) {
        assert_non_null(strstr(keel_icc_err_name((keel_icc_err)e), "KEEL_ICC_"));
    }
    assert_string_equal(keel_icc_err_name(KEEL_ICC_ERR_COUNT), "KEEL_ICC_ERR_UNKNOWN");
}

/* The channel table a loader writes for an emulated RT core (keel/icc.h). */
static void test_table_channel_found_and_bad_tables_refused(void **state)
{
    (void)state;
    static _Alignas(64) uint8_t mem[64 * 1024];
    memset(mem, 0, sizeof mem);
    keel_icc_table *t = (keel_icc_table *)(void *)mem;
    void *r;
    size_t n;
    /* no table at all */
    assert_int_equal(keel_icc_table_channel(mem, sizeof mem, 0, &r, &n), KEEL_ICC_ERR_REGION);
    t->version = KEEL_ICC_TABLE_VERSION;
    t->count = 2;
    t->total = sizeof mem;
    t->chan[0] = (keel_icc_table_entry){.offset = 4096, .size = 8192};
    t->chan[1] = (keel_icc_table_entry){.offset = 12288, .size = 8192};
    t->magic = KEEL_ICC_TABLE_MAGIC;
    assert_int_equal(keel_icc_table_channel(mem, sizeof mem, 1, &r, &n), KEEL_ICC_OK);
    assert_ptr_equal(r, mem + 12288);
    assert_int_equal(n, 8192);
    assert_int_equal(keel_icc_table_channel(mem, sizeof mem, 2, &r, &n), KEEL_ICC_ERR_ARG);
    /* the memory this side has is smaller than the table claims */
    assert_int_equal(keel_icc_table_channel(mem, 8192, 0, &r, &n), KEEL_ICC_ERR_REGION);
    /* an entry reaching past the end, one inside the table, one misaligned, one wrapping */
    const keel_icc_table_entry bad[] = {
        {61440, 8192}, {0, 8192}, {4100, 1024}, {4096, 0xfffff000u}, {4096, 16}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t->chan[0] = bad[i];
        assert_int_equal(keel_icc_table_channel(mem, sizeof mem, 0, &r, &n), KEEL_ICC_ERR_REGION);
    }
    t->chan[0] = (keel_icc_table_entry){.offset = 4096, .size = 8192};
    t->count = KEEL_ICC_TABLE_MAX + 1;
    assert_int_equal(keel_icc_table_channel(mem, sizeof mem, 0, &r, &n), KEEL_ICC_ERR_REGION);
    t->count = 2;
    t->version = 2;
    assert_int_equal(keel_icc_table_channel(mem, sizeof mem, 0, &r, &n), KEEL_ICC_ERR_REGION);
    t->version = KEEL_ICC_TABLE_VERSION;
    assert_int_equal(keel_icc_table_channel(mem + 8, sizeof mem - 8, 0, &r, &n), KEEL_ICC_ERR_ARG);
    assert_int_equal(keel_icc_table_channel(mem, sizeof mem, 0, &r, &n), KEEL_ICC_OK);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_recv_empty_ring_would_block),
        T(test_send_recv_fields_and_both_directions),
        T(test_send_full_ring_would_block_never_overwrites),
        T(test_wraparound_many_times_odd_sizes_intact),
        T(test_every_size_to_max_1k_and_64k),
        T(test_recv_small_buffer_keeps_message),
        T(test_forged_sender_rejected_then_channel_continues),
        T(test_corrupt_length_rejected_and_ring_broken),
        T(test_corrupt_length_beyond_published_rejected),
        T(test_corrupt_sequence_rejected),
        T(test_corrupt_head_index_rejected),
        T(test_corrupt_tail_index_rejected_by_sender),
        T(test_attach_bad_regions_rejected),
        T(test_region_init_rejects_bad_layouts),
        T(test_doorbell_rung_only_for_a_waiting_peer),
        T(test_reattach_resumes_without_loss_or_duplicate),
        T(test_err_name_every_value),
        cmocka_unit_test(test_table_channel_found_and_bad_tables_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

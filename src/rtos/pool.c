/* Memory pools in the caller's memory.
 *
 * Block pool: equal blocks on a free list threaded through the free blocks themselves; O(1)
 * allocate and free; a freed block goes straight to the most urgent waiter.
 *
 * Byte pool: first fit over a chain of blocks, each with a header giving its size (low bit:
 * in use) and its predecessor's size, so a free merges with both neighbours in O(1). Freeing
 * walks the chain to check the pointer is a live block: bad input gets an error, not
 * corruption. After a free, waiters are served in priority order, each if its size fits. */
#include <string.h>

#include "rtos_private.h"

#define ALIGN_UP(x, a) (((x) + ((a)-1u)) & ~((size_t)(a)-1u))

/* ---- block pool ---- */

keel_rtos_err keel_rtos_block_pool_create(keel_rtos_block_pool *p, uint32_t block_size,
                                          void *memory, size_t size)
{
    if (p == NULL || memory == NULL || block_size == 0 ||
        ((uintptr_t)memory & (sizeof(void *) - 1u)) != 0) {
        return KEEL_RTOS_ERR_INVALID;
    }
    size_t bs = ALIGN_UP((size_t)block_size, sizeof(void *));
    size_t n = size / bs;
    if (n == 0 || n * bs > UINT32_MAX) {
        return KEEL_RTOS_ERR_INVALID;
    }
    kr_list_init(&p->waiters);
    p->block_size = (uint32_t)bs;
    p->start = memory;
    p->span = (uint32_t)(n * bs);
    p->align_mask = (bs & (bs - 1u)) == 0 ? (uint32_t)bs - 1u : 0u;
    p->total = p->available = (uint32_t)n;
    p->free_list = NULL;
    for (size_t i = n; i-- > 0;) {
        void **b = (void **)(void *)(p->start + i * bs);
        *b = p->free_list;
        p->free_list = b;
    }
    return KEEL_RTOS_OK;
}

keel_rtos_err keel_rtos_block_pool_delete(keel_rtos_block_pool *p)
{
    keel_port_service_cost();
    if (p == NULL) {
        return KEEL_RTOS_ERR_INVALID;
    }
    keel_port_irq_t s = keel_port_lock();
    kr_wake_all(&p->waiters, KEEL_RTOS_ERR_DELETED);
    p->free_list = NULL;
    p->available = 0;
    kr_reschedule();
    keel_port_unlock(s);
    return KEEL_RTOS_OK;
}

keel_rtos_err keel_rtos_block_alloc(keel_rtos_block_pool *p, void **block, uint32_t timeout)
{
    keel_port_service_cost();
    keel_port_irq_t s = keel_port_lock();
    void **b = p->free_list;
    if (b != NULL) {
        p->free_list = *b;
        p->available--;
        keel_port_unlock(s);
        *block = b;
        return KEEL_RTOS_OK;
    }
    if (timeout == KEEL_RTOS_NO_WAIT) {
        keel_port_unlock(s);
        return KEEL_RTOS_ERR_UNAVAILABLE;
    }
    keel_rtos_k.current->wait_data = block;
    return kr_wait(&p->waiters, timeout, s);
}

keel_rtos_err keel_rtos_block_free(keel_rtos_block_pool *p, void *block)
{
    keel_port_service_cost();
    /* The block must be one of ours: inside the pool and on a block boundary. */
    uintptr_t off = (uintptr_t)block - (uintptr_t)p->start;
    if (off >= p->span ||
        (p->align_mask != 0 ? (off & p->align_mask) : off % p->block_size) != 0) {
        return KEEL_RTOS_ERR_INVALID;
    }
    keel_port_irq_t s = keel_port_lock();
    if (!kr_list_empty(&p->waiters)) {
        keel_rtos_thread *w = kr_thread_of(p->waiters.next);
        *(void **)w->wait_data = block;
        kr_wake(w, KEEL_RTOS_OK);
        kr_reschedule();
    } else {
        *(void **)block = p->free_list;
        p->free_list = block;
        p->available++;
    }
    keel_port_unlock(s);
    return KEEL_RTOS_OK;
}

uint32_t keel_rtos_block_pool_available(const keel_rtos_block_pool *p)
{
    return p->available;
}

/* ---- byte pool ---- */

struct bp_hdr {
    size_t size; /* bytes including this header; bit 0: in use */
    size_t prev; /* size of the previous block, 0 for the first */
};
#define BP_ALIGN 8u
#define BP_HDR ALIGN_UP(sizeof(struct bp_hdr), BP_ALIGN)
#define BP_USED ((size_t)1u)

static struct bp_hdr *bp_at(const keel_rtos_byte_pool *p, size_t off)
{
    return (struct bp_hdr *)(void *)(p->start + off);
}
static size_t bp_size(const struct bp_hdr *h)
{
    return h->size & ~BP_USED;
}

keel_rtos_err keel_rtos_byte_pool_create(keel_rtos_byte_pool *p, void *memory, size_t size)
{
    if (p == NULL || memory == NULL || ((uintptr_t)memory & (BP_ALIGN - 1u)) != 0) {
        return KEEL_RTOS_ERR_INVALID;
    }
    size &= ~(size_t)(BP_ALIGN - 1u);
    if (size < 2u * BP_HDR) {
        return KEEL_RTOS_ERR_INVALID;
    }
    kr_list_init(&p->waiters);
    p->start = memory;
    p->size = size;
    struct bp_hdr *h = bp_at(p, 0);
    h->size = size;
    h->prev = 0;
    p->available = size - BP_HDR;
    return KEEL_RTOS_OK;
}

keel_rtos_err keel_rtos_byte_pool_delete(keel_rtos_byte_pool *p)
{
    keel_port_service_cost();
    if (p == NULL) {
        return KEEL_RTOS_ERR_INVALID;
    }
    keel_port_irq_t s = keel_port_lock();
    kr_wake_all(&p->waiters, KEEL_RTOS_ERR_DELETED);
    p->size = 0;
    p->available = 0;
    kr_reschedule();
    keel_port_unlock(s);
    return KEEL_RTOS_OK;
}

/* First fit; splits when the rest can hold a header and 8 bytes. NULL if nothing fits. */
static void *bp_take(keel_rtos_byte_pool *p, size_t want)
{
    size_t need = BP_HDR + ALIGN_UP(want, BP_ALIGN);
    size_t off = 0;
    while (off < p->size) {
        struct bp_hdr *h = bp_at(p, off);
        size_t sz = bp_size(h);
        if (!(h->size & BP_USED) && sz >= need) {
            if (sz - need >= BP_HDR + BP_ALIGN) {
                struct bp_hdr *rest = bp_at(p, off + need);
                rest->size = sz - need;
                rest->prev = need;
                if (off + sz < p->size) {
                    bp_at(p, off + sz)->prev = sz - need;
                }
                sz = need;
            }
            h->size = sz | BP_USED;
            p->available -= sz;
            return (uint8_t *)h + BP_HDR;
        }
        off += sz;
    }
    return NULL;
}

keel_rtos_err keel_rtos_byte_alloc(keel_rtos_byte_pool *p, void **mem, size_t size,
                                   uint32_t timeout)
{
    keel_port_service_cost();
    if (p == NULL || mem == NULL || size == 0 || size > p->size) {
        return KEEL_RTOS_ERR_INVALID;
    }
    keel_port_irq_t s = keel_port_lock();
    void *m = bp_take(p, size);
    if (m != NULL) {
        keel_port_unlock(s);
        *mem = m;
        return KEEL_RTOS_OK;
    }
    if (timeout == KEEL_RTOS_NO_WAIT) {
        keel_port_unlock(s);
        return KEEL_RTOS_ERR_UNAVAILABLE;
    }
    keel_rtos_thread *t = keel_rtos_k.current;
    t->wait_data = mem;
    t->wait_value = (uint32_t)size;
    return kr_wait(&p->waiters, timeout, s);
}

keel_rtos_err keel_rtos_byte_free(keel_rtos_byte_pool *p, void *mem)
{
    keel_port_service_cost();
    if (p == NULL || mem == NULL) {
        return KEEL_RTOS_ERR_INVALID;
    }
    keel_port_irq_t s = keel_port_lock();
    /* Find the block: the pointer must be one bp_take returned and still in use. */
    size_t off = 0;
    struct bp_hdr *h = NULL;
    while (off < p->size) {
        struct bp_hdr *c = bp_at(p, off);
        if ((uint8_t *)c + BP_HDR == (uint8_t *)mem) {
            h = c;
            break;
        }
        if ((uint8_t *)c > (uint8_t *)mem) {
            break;
        }
        off += bp_size(c);
    }
    if (h == NULL || !(h->size & BP_USED)) {
        keel_port_unlock(s);
        return KEEL_RTOS_ERR_INVALID;
    }
    size_t sz = bp_size(h);
    p->available += sz;
    /* merge with the next block */
    if (off + sz < p->size) {
        struct bp_hdr *n = bp_at(p, off + sz);
        if (!(n->size & BP_USED)) {
            sz += n->size;
        }
    }
    /* merge with the previous block */
    if (h->prev != 0) {
        struct bp_hdr *pv = bp_at(p, off - h->prev);
        if (!(pv->size & BP_USED)) {
            off -= h->prev;
            sz += pv->size;
            h = pv;
        }
    }
    h->size = sz;
    if (off + sz < p->size) {
        bp_at(p, off + sz)->prev = sz;
    }
    /* Serve waiters, most urgent first, each whose request fits now. */
    struct keel_rtos_list *n = p->waiters.next;
    int woke = 0;
    while (n != &p->waiters) {
        struct keel_rtos_list *next = n->next;
        keel_rtos_thread *w = kr_thread_of(n);
        void *m = bp_take(p, w->wait_value);
        if (m != NULL) {
            *(void **)w->wait_data = m;
            kr_wake(w, KEEL_RTOS_OK);
            woke = 1;
        }
        n = next;
    }
    if (woke) {
        kr_reschedule();
    }
    keel_port_unlock(s);
    return KEEL_RTOS_OK;
}

size_t keel_rtos_byte_pool_largest(const keel_rtos_byte_pool *p)
{
    keel_port_irq_t s = keel_port_lock();
    size_t best = 0;
    for (size_t off = 0; off < p->size; off += bp_size(bp_at(p, off))) {
        const struct bp_hdr *h = bp_at(p, off);
        if (!(h->size & BP_USED) && bp_size(h) - BP_HDR > best) {
            best = bp_size(h) - BP_HDR;
        }
    }
    keel_port_unlock(s);
    return best;
}

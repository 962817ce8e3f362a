/* Message queues of fixed-size messages in a ring the caller provides. A message goes straight
 * from a sender to a waiting receiver (and a waiting sender's message straight into the slot a
 * receive frees), so a woken thread never has to retry. */
#include "rtos_private.h"

/* Copies one message. Word-aligned queues (the usual case) copy 16 bytes at a time as one
 * block (a load-multiple and a store-multiple on Cortex-M), then words; the caller's pointer
 * is checked each time since only the queue's own alignment is known. */
typedef struct __attribute__((may_alias)) kr_w4 {
    uint32_t w[4];
} kr_w4;
typedef uint32_t __attribute__((may_alias)) kr_w1;

static inline void kr_msg_copy(const keel_rtos_queue *q, void *dst, const void *src)
{
    uint32_t n = q->words;
    if (n != 0 && (((uintptr_t)dst | (uintptr_t)src) & 3u) == 0) {
        kr_w4 *d4 = dst;
        const kr_w4 *s4 = src;
        for (; n >= 4; n -= 4) {
            *d4++ = *s4++;
        }
        kr_w1 *d = (kr_w1 *)d4;
        const kr_w1 *s = (const kr_w1 *)s4;
        for (; n != 0; n--) {
            *d++ = *s++;
        }
        return;
    }
    uint8_t *d = dst;
    const uint8_t *s = src;
    for (uint32_t i = 0; i < q->msg_size; i++) {
        d[i] = s[i];
    }
}

keel_rtos_err keel_rtos_queue_create(keel_rtos_queue *q, void *buffer, uint32_t msg_size,
                                     uint32_t capacity)
{
    if (q == NULL || buffer == NULL || msg_size == 0 || capacity == 0 ||
        (uint64_t)msg_size * capacity > UINT32_MAX) {
        return KEEL_RTOS_ERR_INVALID;
    }
    kr_list_init(&q->senders);
    kr_list_init(&q->receivers);
    q->buffer = buffer;
    q->msg_size = msg_size;
    q->capacity = capacity;
    q->bytes = msg_size * capacity;
    q->words = ((uintptr_t)buffer & 3u) == 0 && (msg_size & 3u) == 0 ? msg_size / 4u : 0u;
    q->count = q->head = q->tail = 0;
    return KEEL_RTOS_OK;
}

keel_rtos_err keel_rtos_queue_delete(keel_rtos_queue *q)
{
    keel_port_service_cost();
    if (q == NULL) {
        return KEEL_RTOS_ERR_INVALID;
    }
    keel_port_irq_t s = keel_port_lock();
    kr_wake_all(&q->senders, KEEL_RTOS_ERR_DELETED);
    kr_wake_all(&q->receivers, KEEL_RTOS_ERR_DELETED);
    q->count = q->head = q->tail = 0;
    kr_reschedule();
    keel_port_unlock(s);
    return KEEL_RTOS_OK;
}

keel_rtos_err keel_rtos_queue_send(keel_rtos_queue *q, const void *msg, uint32_t timeout)
{
    keel_port_service_cost();
    keel_port_irq_t s = keel_port_lock();
    if (!kr_list_empty(&q->receivers)) {
        keel_rtos_thread *r = kr_thread_of(q->receivers.next);
        kr_msg_copy(q, r->wait_data, msg);
        kr_wake(r, KEEL_RTOS_OK);
        kr_reschedule();
        keel_port_unlock(s);
        return KEEL_RTOS_OK;
    }
    if (q->count < q->capacity) {
        kr_msg_copy(q, q->buffer + q->tail, msg);
        q->tail += q->msg_size;
        if (q->tail == q->bytes) {
            q->tail = 0;
        }
        q->count++;
        keel_port_unlock(s);
        return KEEL_RTOS_OK;
    }
    if (timeout == KEEL_RTOS_NO_WAIT) {
        keel_port_unlock(s);
        return KEEL_RTOS_ERR_UNAVAILABLE;
    }
    keel_rtos_k.current->wait_data = (void *)(uintptr_t)msg;
    return kr_wait(&q->senders, timeout, s);
}

keel_rtos_err keel_rtos_queue_receive(keel_rtos_queue *q, void *msg, uint32_t timeout)
{
    keel_port_service_cost();
    keel_port_irq_t s = keel_port_lock();
    if (q->count != 0) {
        kr_msg_copy(q, msg, q->buffer + q->head);
        q->head += q->msg_size;
        if (q->head == q->bytes) {
            q->head = 0;
        }
        q->count--;
        if (!kr_list_empty(&q->senders)) {
            keel_rtos_thread *w = kr_thread_of(q->senders.next);
            kr_msg_copy(q, q->buffer + q->tail, w->wait_data);
            q->tail += q->msg_size;
            if (q->tail == q->bytes) {
                q->tail = 0;
            }
            q->count++;
            kr_wake(w, KEEL_RTOS_OK);
            kr_reschedule();
        }
        keel_port_unlock(s);
        return KEEL_RTOS_OK;
    }
    if (timeout == KEEL_RTOS_NO_WAIT) {
        keel_port_unlock(s);
        return KEEL_RTOS_ERR_UNAVAILABLE;
    }
    keel_rtos_k.current->wait_data = msg;
    return kr_wait(&q->receivers, timeout, s);
}

uint32_t keel_rtos_queue_count(const keel_rtos_queue *q)
{
    return q->count;
}

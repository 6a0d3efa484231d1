/* rq.h — a session's request queue on a backend, ordered by deadline.
 *
 * A growable ring of request pointers. Requests of one session mostly arrive
 * in deadline order (same SLO, FIFO network), so insertion scans back from the
 * tail: O(1) amortized, O(n) only when the network reorders. Ties keep arrival
 * order. Batching policies read it with nx_rq_at() and take from the front. */
#ifndef NX_RQ_H
#define NX_RQ_H

#include "env.h"

typedef struct nx_rq {
    nx_req **buf;
    uint32_t cap;   /* power of two */
    uint32_t head;  /* index of the front */
    uint32_t len;
} nx_rq;

void nx_rq_init(nx_rq *q);
void nx_rq_free(nx_rq *q);
void nx_rq_push(nx_rq *q, nx_req *r);

static inline uint32_t nx_rq_len(const nx_rq *q) { return q->len; }
static inline nx_req *nx_rq_at(const nx_rq *q, uint32_t i)
{
    return q->buf[(q->head + i) & (q->cap - 1)];
}
static inline nx_req *nx_rq_front(const nx_rq *q) { return q->len ? nx_rq_at(q, 0) : NULL; }
static inline nx_req *nx_rq_pop(nx_rq *q)
{
    if (!q->len)
        return NULL;
    nx_req *r = q->buf[q->head];
    q->head = (q->head + 1) & (q->cap - 1);
    q->len--;
    return r;
}

#endif

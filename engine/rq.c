/* rq.c — the deadline-ordered request ring used by backends (see rq.h). */
#include "rq.h"

#include <stdlib.h>
#include <string.h>

void nx_rq_init(nx_rq *q)
{
    q->cap = 64;
    q->buf = nx_malloc(sizeof(nx_req *) * q->cap);
    q->head = 0;
    q->len = 0;
}

void nx_rq_free(nx_rq *q)
{
    free(q->buf);
    memset(q, 0, sizeof *q);
}

static void grow(nx_rq *q)
{
    uint32_t ncap = q->cap * 2;
    nx_req **nb = nx_malloc(sizeof(nx_req *) * ncap);
    for (uint32_t i = 0; i < q->len; i++)
        nb[i] = nx_rq_at(q, i);
    free(q->buf);
    q->buf = nb;
    q->cap = ncap;
    q->head = 0;
}

void nx_rq_push(nx_rq *q, nx_req *r)
{
    if (q->len == q->cap)
        grow(q);
    uint32_t mask = q->cap - 1;
    uint32_t i = q->len;
    /* shift later-deadline requests one slot back */
    while (i > 0) {
        nx_req *prev = q->buf[(q->head + i - 1) & mask];
        if (prev->deadline <= r->deadline)
            break;
        q->buf[(q->head + i) & mask] = prev;
        i--;
    }
    q->buf[(q->head + i) & mask] = r;
    q->len++;
}

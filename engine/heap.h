/* heap.h — the one event queue of the project: a binary min-heap of intrusive
 * events ordered by (time, seq), as libuv's timer heap. Equal times pop in
 * the order the events were armed (their seq), so a seeded run is
 * bit-identical. Used by the simulator's event queue, the real loop's timers
 * and the workload's arrival merge; the heap holds pointers, never copies,
 * and never allocates per event once it has grown. */
#ifndef NX_HEAP_H
#define NX_HEAP_H

#include "env.h"

typedef struct nx_heap {
    nx_event **a;
    size_t n, cap;
} nx_heap;

static inline bool nx_event_before(const nx_event *x, const nx_event *y)
{
    return x->time < y->time || (x->time == y->time && x->seq < y->seq);
}

void nx_heap_init(nx_heap *h);
void nx_heap_free(nx_heap *h);
void nx_heap_grow(nx_heap *h);
/* Remove ev if it is queued (a linear search: cancels are rare); returns
 * whether it was. */
bool nx_heap_remove(nx_heap *h, nx_event *ev);
static inline nx_event *nx_heap_top(const nx_heap *h) { return h->n ? h->a[0] : NULL; }

/* Push and pop are inline: they are the simulator's inner loop. */
static inline void nx_heap_sift_up(nx_heap *h, size_t i, nx_event *ev)
{
    nx_event **a = h->a;
    while (i > 0) {
        size_t p = (i - 1) >> 1;
        if (!nx_event_before(ev, a[p]))
            break;
        a[i] = a[p];
        i = p;
    }
    a[i] = ev;
}

static inline void nx_heap_sift_down(nx_heap *h, size_t i, nx_event *ev)
{
    nx_event **a = h->a;
    size_t n = h->n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && nx_event_before(a[c + 1], a[c]))
            c++;
        if (!nx_event_before(a[c], ev))
            break;
        a[i] = a[c];
        i = c;
    }
    a[i] = ev;
}

/* Insert ev (its time and seq already set). */
static inline void nx_heap_push(nx_heap *h, nx_event *ev)
{
    if (h->n == h->cap)
        nx_heap_grow(h);
    nx_heap_sift_up(h, h->n++, ev);
}

/* Remove and return the earliest event; the heap must not be empty. */
static inline nx_event *nx_heap_pop(nx_heap *h)
{
    NX_ASSERT(h->n > 0);
    nx_event *top = h->a[0];
    nx_event *last = h->a[--h->n];
    if (h->n > 0)
        nx_heap_sift_down(h, 0, last);
    return top;
}

#endif

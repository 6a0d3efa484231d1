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
/* Insert ev (its time and seq already set). */
void nx_heap_push(nx_heap *h, nx_event *ev);
/* Remove and return the earliest event; the heap must not be empty. */
nx_event *nx_heap_pop(nx_heap *h);
/* Remove ev if it is queued (a linear search: cancels are rare); returns
 * whether it was. */
bool nx_heap_remove(nx_heap *h, nx_event *ev);
static inline nx_event *nx_heap_top(const nx_heap *h) { return h->n ? h->a[0] : NULL; }

#endif

/* heap.c — the (time, seq) min-heap of events; see heap.h. */
#include "heap.h"

#include <stdlib.h>
#include <string.h>

void nx_heap_init(nx_heap *h)
{
    memset(h, 0, sizeof *h);
}

void nx_heap_free(nx_heap *h)
{
    free(h->a);
    memset(h, 0, sizeof *h);
}

void nx_heap_grow(nx_heap *h)
{
    h->cap = h->cap ? h->cap * 2 : 1024;
    h->a = nx_realloc(h->a, sizeof(nx_event *) * h->cap);
}

bool nx_heap_remove(nx_heap *h, nx_event *ev)
{
    for (size_t i = 0; i < h->n; i++) {
        if (h->a[i] != ev)
            continue;
        nx_event *last = h->a[--h->n];
        if (i < h->n) {
            /* the moved element may belong above or below slot i */
            if (i > 0 && nx_event_before(last, h->a[(i - 1) >> 1]))
                nx_heap_sift_up(h, i, last);
            else
                nx_heap_sift_down(h, i, last);
        }
        return true;
    }
    return false;
}

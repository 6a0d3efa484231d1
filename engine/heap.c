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

static void sift_up(nx_heap *h, size_t i, nx_event *ev)
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

static void sift_down(nx_heap *h, size_t i, nx_event *ev)
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

void nx_heap_push(nx_heap *h, nx_event *ev)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 1024;
        h->a = nx_realloc(h->a, sizeof(nx_event *) * h->cap);
    }
    sift_up(h, h->n++, ev);
}

nx_event *nx_heap_pop(nx_heap *h)
{
    NX_ASSERT(h->n > 0);
    nx_event *top = h->a[0];
    nx_event *last = h->a[--h->n];
    if (h->n > 0)
        sift_down(h, 0, last);
    return top;
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
                sift_up(h, i, last);
            else
                sift_down(h, i, last);
        }
        return true;
    }
    return false;
}

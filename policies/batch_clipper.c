/* batch_clipper.c — Clipper-style adaptive batching (AIMD), the batching the
 * paper kept when it ran Clipper as a baseline (footnote 2).
 *
 * Each session has a batch limit that starts at 1. A batch takes up to the
 * limit from the head of the queue, eagerly (it never waits). After a full
 * batch whose measured latency stayed within the latency objective the limit
 * grows by `aimd_step`; a batch over the objective shrinks it by
 * `aimd_backoff` (Clipper: 10 %). The objective is the session's SLO budget,
 * as Clipper tunes batch latency against the SLO. Like Clipper, it drops
 * nothing: late requests are still served and count as late. The limit never
 * exceeds the profile's largest batch. */
#include "ops.h"

#include <stdlib.h>

typedef struct aimd {
    int limit;           /* the current batch limit */
} aimd;

static void init(nx_bsess *bs)
{
    aimd *a = nx_malloc(sizeof *a);
    a->limit = 1;
    bs->state = a;
}

static void fini(nx_bsess *bs) { free(bs->state); }

static int form(nx_bsess *bs, nx_time now, nx_req **out, int max, nx_drop_fn drop,
                void *drop_ctx, nx_time *wake)
{
    (void)now, (void)drop, (void)drop_ctx, (void)wake;
    const aimd *a = bs->state;
    int b = a->limit < max ? a->limit : max;
    if ((uint32_t)b > nx_rq_len(&bs->q))
        b = (int)nx_rq_len(&bs->q);
    for (int i = 0; i < b; i++)
        out[i] = nx_rq_pop(&bs->q);
    return b;
}

static void done(nx_bsess *bs, int size, nx_time latency)
{
    aimd *a = bs->state;
    const nx_profile *p = bs->prof;
    nx_time objective = NX_US(bs->slo_us - p->pre_us - p->post_us);
    if (latency > objective) {
        int nl = (int)(a->limit * bs->bp->aimd_backoff);
        a->limit = nl < 1 ? 1 : nl;
    } else if (size >= a->limit) {
        a->limit += bs->bp->aimd_step;
        if (a->limit > p->max_batch)
            a->limit = p->max_batch;
    }
}

const nx_batching_ops nx_batch_clipper_ops = {
    .name = "clipper_aimd",
    .summary = "Clipper AIMD batch limit against the SLO; eager, never drops",
    .init = init,
    .fini = fini,
    .form = form,
    .done = done,
};

/* batch_early_drop.c — Nexus's early drop (sliding window), the default
 * batching policy of the original backend (backend_batch_policy 0).
 *
 * Take b = min(planned batch, queue length) and the finish time of a batch of
 * b; walk the queue in deadline order: a request whose deadline falls before
 * that finish is dropped now, otherwise it joins the batch. Whenever fewer
 * requests remain than b, b shrinks to what remains and the finish time is
 * recomputed. The effect is a window of the planned batch size sliding down
 * the queue to the first request that can survive a full batch: requests that
 * could not be served in time are dropped early instead of forcing small
 * batches (the paper's §6.3, Fig. 9). */
#include "ops.h"

static int form(nx_bsess *bs, nx_time now, nx_req **out, int max, nx_drop_fn drop,
                void *drop_ctx, nx_time *wake)
{
    (void)wake;
    int b = bs->target_batch < max ? bs->target_batch : max;
    if (b < 1)
        b = 1;
    if ((uint32_t)b > nx_rq_len(&bs->q))
        b = (int)nx_rq_len(&bs->q);
    nx_time finish = now + nx_bsess_lat(bs, b);
    int taken = 0;
    while (taken < b && nx_rq_len(&bs->q) > 0) {
        nx_req *r = nx_rq_pop(&bs->q);
        if (r->deadline < finish) {
            bs->dropped++;
            drop(drop_ctx, r);
        } else {
            out[taken++] = r;
        }
        int avail = taken + (int)nx_rq_len(&bs->q);
        if (b > avail) {
            b = avail;
            finish = now + nx_bsess_lat(bs, b);
        }
    }
    return taken;
}

const nx_batching_ops nx_batch_early_drop_ops = {
    .name = "early_drop",
    .summary = "Nexus sliding-window early drop: drop requests that cannot survive a full batch",
    .form = form,
    .done = NULL,
};

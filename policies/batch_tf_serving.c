/* batch_tf_serving.c — TF-Serving-style batching: a fixed maximum batch size
 * (the planned batch: the largest whose SLO is not violated, as the paper's
 * TF-Serving baseline chose it) and a batch timeout. A batch closes when the
 * queue holds a full batch, or when its oldest request has waited
 * `tf_timeout_ms` in the queue. Nothing is dropped: late requests are served
 * and count as late. */
#include "ops.h"

static int form(nx_bsess *bs, nx_time now, nx_req **out, int max, nx_drop_fn drop,
                void *drop_ctx, nx_time *wake)
{
    (void)drop, (void)drop_ctx;
    int cap = bs->target_batch < max ? bs->target_batch : max;
    if (cap < 1)
        cap = 1;
    int avail = (int)nx_rq_len(&bs->q);
    if (avail < cap) {
        /* the queue is deadline-ordered; the oldest arrival is the one that
         * has waited longest (same SLO per session) */
        nx_time close = nx_rq_front(&bs->q)->ready + NX_MS(bs->bp->tf_timeout_ms);
        if (now < close) {
            *wake = close;
            return 0;
        }
    }
    int b = avail < cap ? avail : cap;
    for (int i = 0; i < b; i++)
        out[i] = nx_rq_pop(&bs->q);
    return b;
}

const nx_batching_ops nx_batch_tf_serving_ops = {
    .name = "tf_serving",
    .summary = "TF-Serving max batch + batch timeout; never drops",
    .form = form,
    .done = NULL,
};

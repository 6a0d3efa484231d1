/* batch_deferred.c — Symphony-style deferred batching (Chen et al., "Symphony:
 * Optimized DNN Model Serving using Deferred Batch Scheduling").
 *
 * The batching decision moves to the frontend, which sees every request of a
 * session: it holds them and dispatches a whole batch to whichever of the
 * session's GPUs frees first, waiting as long as the earliest request's
 * deadline still allows (so batches grow), and dropping only requests that
 * could not be served even alone (engine/dispatch.c, the frontend's dispatcher).
 * On the backend a dispatched batch arrives as one message and runs as it is:
 * this form() takes the queue in order, up to the largest batch, without
 * waiting and without dropping. */
#include "ops.h"

static int form(nx_bsess *bs, nx_time now, nx_req **out, int max, nx_drop_fn drop,
                void *drop_ctx, nx_time *wake)
{
    (void)now, (void)drop, (void)drop_ctx, (void)wake;
    int b = (int)nx_rq_len(&bs->q) < max ? (int)nx_rq_len(&bs->q) : max;
    for (int i = 0; i < b; i++)
        out[i] = nx_rq_pop(&bs->q);
    return b;
}

const nx_batching_ops nx_batch_deferred_ops = {
    .name = "deferred",
    .summary = "Symphony: central deferred batching at the frontend, whole batches to the first free GPU",
    .central = true,
    .form = form,
    .done = NULL,
};

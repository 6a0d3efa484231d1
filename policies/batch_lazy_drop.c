/* batch_lazy_drop.c — lazy drop (Nexus backend_batch_policy 1, "earliest"):
 * drop a request only once even a batch of one can no longer meet its
 * deadline, then size the batch to what the earliest remaining request's
 * budget allows. Under Poisson arrivals stale requests at the head of the
 * queue keep batches small, which is why the paper replaces it with early
 * drop (§6.3, Fig. 5 and 9). */
#include "ops.h"

static int form(nx_bsess *bs, nx_time now, nx_req **out, int max, nx_drop_fn drop,
                void *drop_ctx, nx_time *wake)
{
    (void)wake;
    nx_time one = nx_bsess_lat(bs, 1);
    while (nx_rq_len(&bs->q) > 0 && nx_rq_front(&bs->q)->deadline < now + one) {
        bs->dropped++;
        drop(drop_ctx, nx_rq_pop(&bs->q));
    }
    int avail = (int)nx_rq_len(&bs->q);
    if (avail == 0)
        return 0;
    int cap = bs->target_batch < max ? bs->target_batch : max;
    if (cap < 1)
        cap = 1;
    if (cap > avail)
        cap = avail;
    nx_time budget = nx_rq_front(&bs->q)->deadline - now;
    int b = 1;
    while (b < cap && nx_bsess_lat(bs, b + 1) <= budget)
        b++;
    for (int i = 0; i < b; i++)
        out[i] = nx_rq_pop(&bs->q);
    return b;
}

const nx_batching_ops nx_batch_lazy_drop_ops = {
    .name = "lazy_drop",
    .summary = "drop only when a batch of one would be late; batch sized by the earliest deadline",
    .form = form,
    .done = NULL,
};

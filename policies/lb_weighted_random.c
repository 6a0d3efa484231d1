/* lb_weighted_random.c — weighted random routing (Nexus load_balance 1, the
 * paper-era default): draw u in [0, sum of weights) and walk the routes.
 * The original's fallback loop could index past the end of the backend list
 * when rounding left u at the very top (reference/nexus.md §5); here the
 * search cannot leave the route list. */
#include "policies.h"

/* Binary search for the first cumulative weight above u: O(log n) however
 * many GPUs a session spans. */
int nx_lb_weighted_pick(const nx_route *r, uint64_t *rng)
{
    double u = nx_rng_uniform(rng) * r->wsum;
    int lo = 0, hi = r->n - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (u < r->cum[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static int pick(nx_route *r, const int *outstanding, uint64_t *rng)
{
    (void)outstanding;
    return nx_lb_weighted_pick(r, rng);
}

const nx_lb_ops nx_lb_weighted_random_ops = {
    .name = "weighted_random",
    .summary = "weighted random over route weights",
    .pick = pick,
};

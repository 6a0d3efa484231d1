/* lb_drr.c — deficit round robin (Nexus load_balance 3, its default since
 * 2020). Each route's quantum is its weight over the smallest weight; the
 * cursor stays on a route while its deficit covers a request and moves on
 * after topping it up, so route i gets runs of about w_i / w_min requests per
 * round. Deterministic; weighted random only if 2n steps find nothing (it
 * cannot happen with positive weights, but the bound keeps the loop finite). */
#include "policies.h"

static int pick(nx_route *r, const int *outstanding, uint64_t *rng)
{
    (void)outstanding;
    double wmin = r->wmin;
    if (!(wmin > 0))
        return nx_lb_weighted_pick(r, rng);
    for (int step = 0; step < 2 * r->n + 1; step++) {
        int i = r->cursor;
        if (r->deficit[i] >= 1.0) {
            r->deficit[i] -= 1.0;
            return i;
        }
        r->deficit[i] += r->w[i] / wmin;
        r->cursor = (i + 1) % r->n;
    }
    return nx_lb_weighted_pick(r, rng);
}

const nx_lb_ops nx_lb_drr_ops = {
    .name = "drr",
    .summary = "deficit round robin with quanta proportional to route weights",
    .pick = pick,
};

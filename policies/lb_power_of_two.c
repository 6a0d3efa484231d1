/* lb_power_of_two.c — power of two choices (Nexus load_balance 2): two
 * weighted-random draws, keep the less loaded. The original asked each
 * backend for its utilization over an RPC cached for 10 ms; here the load is
 * what the frontend knows without asking: its requests in flight at each GPU,
 * normalised by the route's weight. */
#include "policies.h"

static int pick(nx_route *r, const int *outstanding, uint64_t *rng)
{
    int a = nx_lb_weighted_pick(r, rng);
    if (r->n == 1)
        return a;
    int b = nx_lb_weighted_pick(r, rng);
    double la = outstanding[r->gpu[a]] / r->w[a];
    double lb = outstanding[r->gpu[b]] / r->w[b];
    return lb < la ? b : a;
}

const nx_lb_ops nx_lb_power_of_two_ops = {
    .name = "power_of_two",
    .summary = "two weighted-random choices, the one with fewer requests in flight per weight wins",
    .pick = pick,
};

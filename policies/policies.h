/* policies.h — the registry of policy ops tables, looked up by the names that
 * experiment files use (nx_combo.placement, .batching, .lb).
 *
 * Adding a policy is one file under policies/ with one const ops table, one
 * extern line here and one row in the matching table of registry.c. */
#ifndef NX_POLICIES_H
#define NX_POLICIES_H

#include <stddef.h>

#include "plan.h"
#include "ops.h"

/* ---- placement (interface in plan.h) ---------------------------------------- */

extern const nx_placement_ops nx_place_squishy_ops, nx_place_oblivious_ops;

/* The placement policy called `name`, or NULL. */
const nx_placement_ops *nx_placement_find(const char *name);
/* The known names, comma-separated, into buf (for "unknown policy" messages). */
void nx_placement_list(char *buf, size_t n);

/* ---- batching (interface in ops.h) ------------------------------------------ */

extern const nx_batching_ops nx_batch_early_drop_ops, nx_batch_lazy_drop_ops,
    nx_batch_clipper_ops, nx_batch_tf_serving_ops, nx_batch_deferred_ops;

const nx_batching_ops *nx_batching_find(const char *name);
void nx_batching_list(char *buf, size_t n);

/* ---- load balancing (interface in ops.h) ------------------------------------- */

extern const nx_lb_ops nx_lb_drr_ops, nx_lb_drr_runs_ops, nx_lb_weighted_random_ops,
    nx_lb_power_of_two_ops;

const nx_lb_ops *nx_lb_find(const char *name);
void nx_lb_list(char *buf, size_t n);

/* Weighted random pick over a route (lb_weighted_random.c); other load
 * balancers fall back to it. */
int nx_lb_weighted_pick(const nx_route *r, uint64_t *rng);

#endif

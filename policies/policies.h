/* policies.h — the registry of policy ops tables, looked up by the names that
 * experiment files use (nx_combo.placement, .batching, .lb, .split).
 *
 * Adding a policy is one file under policies/ with one const ops table, one
 * extern line here and one row in the matching table of registry.c. */
#ifndef NX_POLICIES_H
#define NX_POLICIES_H

#include <stddef.h>

#include "plan.h"
#include "ops.h"
#include "catalog.h"

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

/* ---- query SLO split (engine/split.c; the scheduler runs the mode) ----------- */

/* The split policy called name ("dp", "even"): 0 and *mode, or NX_ERR_NOTFOUND. */
int nx_split_find(const char *name, nx_split_mode *mode);
void nx_split_list(char *buf, size_t n);

/* ---- a whole combination ------------------------------------------------------ */

/* Resolve every policy name of combo; an unknown one is NX_ERR_NOTFOUND with
 * "PATH: policy 'NAME': unknown KIND 'X' (known: ...)". */
int nx_policies_resolve(const nx_combo *combo, const char *path, nx_policy_set *out,
                        nx_errbuf *eb);

/* Weighted random pick over a route (lb_weighted_random.c); other load
 * balancers fall back to it. */
int nx_lb_weighted_pick(const nx_route *r, uint64_t *rng);

#endif

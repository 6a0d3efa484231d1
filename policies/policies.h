/* policies.h — the registry of policy ops tables, looked up by the names that
 * experiment files use (nx_combo.placement, .batching, .lb).
 *
 * Adding a policy is one file under policies/ with one const ops table, one
 * extern line here and one row in the matching table of registry.c. */
#ifndef NX_POLICIES_H
#define NX_POLICIES_H

#include <stddef.h>

#include "plan.h"

/* ---- placement (interface in plan.h) ---------------------------------------- */

extern const nx_placement_ops nx_place_squishy_ops, nx_place_oblivious_ops;

/* The placement policy called `name`, or NULL. */
const nx_placement_ops *nx_placement_find(const char *name);
/* The known names, comma-separated, into buf (for "unknown policy" messages). */
void nx_placement_list(char *buf, size_t n);

/* ---- batching and load balancing (interfaces in ops.h) ---------------------- */
/* Their tables live for now in exec_policies.h / registry_exec.c; when they
 * move here: the extern ops tables, nx_batching_find/list and nx_lb_find/list,
 * following the placement pattern above. */

#endif

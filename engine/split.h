/* split.h — splitting an app's end-to-end SLO among the stages of its DAG.
 *
 * Each stage v has a request rate R_v and a cost c_v(L) = R_v / T_v(L): the
 * GPUs it needs if its session's SLO is L, where T_v(L) is the best
 * single-GPU throughput under the saturated rule (b / l(b) over batches with
 * 2 l(b) <= L minus CPU and network time; Nexus's GetMaxThroughput). A split
 * gives every stage a budget so that the budgets along every root-to-leaf
 * path sum to at most the SLO; the best split minimises sum_v c_v(L_v).
 *
 * Time is discretised into `steps` equal steps of SLO/steps.
 *  - Trees (every stage has at most one parent; several roots hang off a
 *    virtual root): Nexus's dynamic program (reference/nexus.md §2b),
 *    f(u, t) = min_k [ c_u(k) + sum_children f(c, t - k) ], O(n steps^2).
 *  - DAGs (a stage with several parents, a join): a stage starts when its
 *    last parent finishes, so a split is a finish step F_v per stage with
 *    L_v = F_v - max_parents F_p >= 1 step and F_v <= steps. The DP walks the
 *    stages in topological order keeping, as its state, the finish steps of
 *    the stages that still have unvisited children (the frontier); it is
 *    exact, with steps^(frontier+1) work per stage. When that would exceed
 *    NX_SPLIT_MAX_WORK the step count is lowered until it fits (reported in
 *    the result), so the answer stays exact on a coarser grid.
 *  - Even split: L_v = SLO / (stages on the longest root-to-leaf path through
 *    v): every path sums to at most the SLO. The paper's baseline. */
#ifndef NX_SPLIT_H
#define NX_SPLIT_H

#include "experiment.h"

#define NX_SPLIT_MAX_WORK 50000000.0

typedef struct nx_split_in {
    const nx_app *app;       /* stages with parents, in topological order */
    const double *rate;      /* per stage, req/s */
    double multiplier;       /* profile multiplier */
    double net_allowance_us; /* per call */
    int steps;
} nx_split_in;

typedef struct nx_split_out {
    double budget_us[NX_APP_MAX_STAGES];
    double gpus;             /* sum of c_v at these budgets (inf if infeasible) */
    int steps_used;
} nx_split_out;

/* c_v(L): GPUs stage v needs at SLO budget L (µs) and rate r; INFINITY when
 * no batch fits; 0 when r is 0 and some batch fits. */
double nx_split_stage_cost(const nx_split_in *in, int v, double budget_us);
/* Cost of given budgets (sum of stage costs). */
double nx_split_cost(const nx_split_in *in, const double *budget_us);
bool nx_split_is_tree(const nx_app *app);
int nx_split_dp(const nx_split_in *in, nx_split_out *out);
int nx_split_even(const nx_split_in *in, nx_split_out *out);
/* Exhaustive search over all finish-step assignments (for tests; tiny inputs). */
int nx_split_brute(const nx_split_in *in, nx_split_out *out);

#endif

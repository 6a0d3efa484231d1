/* search.h — the paper's throughput metric: the highest offered rate whose bad
 * rate stays within 1 %, found by bisection over a rate scale applied to the
 * whole workload. */
#ifndef NX_SEARCH_H
#define NX_SEARCH_H

#include "report.h"

#define NX_BAD_RATE_TARGET 0.01

typedef struct nx_search_opts {
    uint64_t seed;
    bool progress;
    bool keep_requests;     /* keep the records of the reported run */
} nx_search_opts;

/* Fills out->run (the run at the highest passing scale, or at the lowest scale
 * if none passes), out->max_rate and out->sweep. */
int nx_search_max_rate(const nx_experiment *x, const nx_combo *c, const nx_search_opts *o,
                       nx_combo_report *out, nx_errbuf *eb);
void nx_combo_report_free(nx_combo_report *r);

#endif

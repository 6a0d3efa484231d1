/* run.h — one simulated run: an experiment, one policy combination and a rate
 * scale, through the engine's scheduler, frontends and backends on the
 * simulator; the metrics it produced are an nx_run_result (engine/result.h). */
#ifndef NX_RUN_H
#define NX_RUN_H

#include "experiment.h"
#include "result.h"

typedef struct nx_run_opts {
    double scale;              /* multiply every app's rate (and the trace's rate_scale) */
    uint64_t seed;
    bool keep_requests;        /* keep per-request records in the result */
    bool progress;             /* progress line on stderr for long runs */
    const char *label;         /* for the progress line */
} nx_run_opts;

/* Run; fills res (free with nx_run_result_free). Errors: an unknown policy
 * name (NX_ERR_NOTFOUND with the list of known ones). */
int nx_run(const nx_experiment *x, const nx_combo *combo, const nx_run_opts *o,
           nx_run_result *res, nx_errbuf *eb);

#endif

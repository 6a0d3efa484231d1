/* workload.h — the client arrivals of an experiment as an iterator: every
 * query's time and app, in time order, exactly as the simulator submits them
 * and the real load generator sends them (same experiment, scale and seed:
 * same queries).
 *
 * One generator per app (Poisson, Gamma with a CV, uniform at a random
 * phase, piecewise-rate Poisson) and one shared trace generator that maps
 * each trace arrival onto the apps whose workload is `trace` (round robin,
 * hash, Zipf or weights); the generators are merged by an nx_heap, ties in
 * the order they were armed. Arrivals stop at the experiment's duration. */
#ifndef NX_WORKLOAD_H
#define NX_WORKLOAD_H

#include "experiment.h"
#include "heap.h"

#include <gsl/gsl_rng.h>

typedef struct nx_wgen nx_wgen;

typedef struct nx_arrivals {
    const nx_experiment *x;
    double scale;
    nx_time end;             /* duration: no arrival at or after it */
    nx_time now;             /* the last arrival returned */
    gsl_rng *rng;            /* the workload's own randomness */
    nx_wgen *gens;
    int ngens;
    nx_heap heap;
    uint64_t seq;
    uint64_t count;          /* arrivals returned so far */
    int *trace_apps;         /* apps fed by the trace, and their cumulative shares */
    double *trace_cdf;
    int ntrace_apps;
    uint64_t trace_rr;
} nx_arrivals;

/* Arrivals of x with every rate multiplied by scale, from seed. */
void nx_arrivals_init(nx_arrivals *a, const nx_experiment *x, double scale, uint64_t seed);
void nx_arrivals_free(nx_arrivals *a);
/* The next arrival: its time (ns from t = 0) and app; false when no arrival
 * is left before the duration. */
bool nx_arrivals_next(nx_arrivals *a, nx_time *t, int *app);

/* The mean query rate app a is expected to see (req/s, scaled): what the
 * scheduler plans for at t = 0. */
double nx_workload_rate(const nx_experiment *x, int a, double scale);
/* Mean calls of stage st per call of its (first) parent. */
double nx_workload_mean_fanout(const nx_experiment *x, const nx_stage *st);

#endif

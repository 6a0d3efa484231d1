/* stats.h — the run's metrics from per-request records, the same in sim and
 * real mode: offered rate, goodput, bad rate (dropped + late) / sent, latency
 * percentiles of answered requests, per-app counts, and the time-weighted
 * number of GPUs a plan timeline used. Pure computation: no I/O. */
#ifndef NX_STATS_H
#define NX_STATS_H

#include "env.h"

typedef struct nx_app_stats {
    uint64_t sent, ok, late, dropped;
    uint64_t unanswered;   /* of late: still queued at the end of the run */
} nx_app_stats;

typedef struct nx_stats {
    nx_time win_start, win_end;   /* requests arriving in [start, end) count */
    int napps;
    nx_app_stats *apps;
    uint64_t sent, ok, late, dropped, unanswered;
    double *lat_ms;               /* answered requests' latency */
    size_t nlat, caplat;
    double latsum;
} nx_stats;

/* After nx_stats_finish, st->lat_ms[0..nlat) is sorted (the latency CDF). */
typedef struct nx_metrics {
    double window_s;
    uint64_t sent, ok, late, dropped;
    uint64_t unanswered;   /* counted in late */
    double offered_rate, goodput, bad_rate;
    double lat_p50_ms, lat_p90_ms, lat_p99_ms, lat_max_ms, lat_mean_ms;
} nx_metrics;

void nx_stats_init(nx_stats *st, int napps, nx_time win_start, nx_time win_end);
void nx_stats_free(nx_stats *st);
/* Count one finished query (status OK, LATE, DROPPED or UNANSWERED). */
void nx_stats_add(nx_stats *st, const nx_query *r);
/* Sort the latencies and fill m. */
void nx_stats_finish(nx_stats *st, nx_metrics *m);

/* Time-weighted mean of a step function given at points (t_s[k], v[k]) over
 * [ws, we] seconds: each value holds until the next point. */
double nx_stats_step_mean(const double *t_s, const double *v, int n, double ws, double we);

/* Mean and sample standard deviation of timing samples x[0..n) (n >= 1), with
 * stalls set aside when k > 0: a sample above median + k * 1.4826 * MAD (the
 * median absolute deviation, scaled to a normal's sigma; at least 1 % of the
 * median) is a host stall, not the model, and is dropped (one-sided: nothing
 * runs faster than the model). k <= 0: every sample. Sorts x. Returns the
 * samples kept. Profiles: nexus-profile --stats robust (k = 5). */
int nx_stats_robust(double *x, int n, double k, double *mean, double *sd);

#endif

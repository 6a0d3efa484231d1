/* result.h — the metrics of one run, the same shape for a simulated run
 * (sim/run.c) and a real one (real/daemon/loadgen.c), so one writer
 * (io/report.c) writes both as summary.json and requests.csv. Plain data: the
 * result owns its arrays; nx_run_result_free releases them. */
#ifndef NX_RESULT_H
#define NX_RESULT_H

#include "env.h"
#include "ops.h"
#include "plan.h"
#include "stats.h"

typedef struct nx_timeline_pt {
    double t_s;
    int used;           /* GPUs with a session in the plan */
    double planned;     /* total planned throughput (req/s) */
    char why[12];       /* "initial", "trigger", "periodic" */
    double *slo_ms;     /* per session: its SLO (stage budget) from this epoch on */
} nx_timeline_pt;

typedef struct nx_run_result {
    double scale;
    double window_s;           /* measured window: [warmup, duration) */
    uint64_t sent, ok, late, dropped;
    uint64_t unanswered;       /* of late: never answered before the run ended */
    double offered_rate;       /* req/s sent in the window */
    double goodput;            /* good req/s in the window */
    double bad_rate;           /* (dropped + late) / sent */
    double lat_p50_ms, lat_p90_ms, lat_p99_ms, lat_max_ms, lat_mean_ms; /* answered requests */
    double gpus_used_avg;      /* time-weighted over the window */
    double util_mean;          /* mean over GPUs busy at some point of the window */
    double *util;              /* per GPU, busy / window */
    int ngpu;
    nx_timeline_pt *timeline;  /* one point per epoch */
    int ntimeline;
    uint64_t epochs, triggers;
    nx_app_stats *apps;        /* per app, in the window */
    double *lat_sorted;        /* latencies (ms) of answered queries in the window, sorted */
    size_t nlat;
    int napps;
    nx_plan final_plan;        /* the last plan */
    uint64_t events;           /* simulator events fired */
    uint64_t total_requests;   /* all requests generated (not just the window) */
    double wall_s;
    uint64_t splits;           /* epochs that adopted a new SLO split */
    uint64_t failures, recoveries;   /* backends declared dead / registered again */
    uint64_t retried, failed_over;   /* calls caught on a dead backend: sent again / dropped */
    /* the sessions: one per app, one per stage of a DAG app (owned) */
    nx_session *sessions;
    int nsess;
    /* per-query records (only when keep_requests) */
    nx_query *reqs;
    size_t nreqs;
} nx_run_result;

void nx_run_result_free(nx_run_result *r);
/* Copy the request metrics of m (window, counts, rates, latency percentiles). */
void nx_run_result_set_metrics(nx_run_result *r, const nx_metrics *m);

#endif

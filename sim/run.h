/* run.h — one simulated run: an experiment, one policy combination and a rate
 * scale, through the engine's scheduler, frontends and backends on the
 * simulator; and the metrics the run produced. */
#ifndef NX_RUN_H
#define NX_RUN_H

#include "experiment.h"
#include "plan.h"
#include "env.h"
#include "stats.h"
#include "ops.h"

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
void nx_run_result_free(nx_run_result *r);

#endif

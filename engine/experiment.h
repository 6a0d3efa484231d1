/* experiment.h — the experiment description: cluster, apps (sessions), workload
 * per app, policy combinations to compare, run timing, scheduler parameters.
 *
 * Parsed from YAML (engine/config_experiment.c, from a memory buffer: the engine
 * does no I/O; io/load.c reads the files). Every field has a table row there
 * with its type, range and default; an unknown key is an error naming file:line. */
#ifndef NX_EXPERIMENT_H
#define NX_EXPERIMENT_H

#include "nx.h"
#include "profile.h"

typedef enum nx_wl_kind {
    NX_WL_POISSON = 0,   /* exponential inter-arrivals at `rate` */
    NX_WL_GAMMA,         /* Gamma inter-arrivals with mean 1/rate and coefficient of variation `cv` */
    NX_WL_UNIFORM,       /* constant inter-arrival 1/rate (the paper's default for video frames) */
    NX_WL_PIECEWISE,     /* Poisson with a rate that steps at given times */
    NX_WL_TRACE,         /* arrivals taken from the experiment's trace, mapped onto apps */
} nx_wl_kind;

typedef struct nx_wl_step {
    double at_s;   /* from this time on (seconds since start) ... */
    double rate;   /* ... the rate is this (req/s) */
} nx_wl_step;

typedef struct nx_workload {
    nx_wl_kind kind;
    double rate;          /* req/s (POISSON, GAMMA, UNIFORM); for TRACE: the app's share weight */
    double cv;            /* GAMMA only */
    nx_wl_step *steps;    /* PIECEWISE: sorted by at_s, first at 0 */
    int nsteps;
} nx_workload;

typedef enum nx_fanout_kind {
    NX_FANOUT_CONST = 0,  /* exactly `value` calls per parent call (rounded) */
    NX_FANOUT_POISSON,    /* Poisson(`value`) calls per parent call */
    NX_FANOUT_TRACE,      /* the trace's second column x `value`, rounded, per parent call,
                             taken cyclically */
} nx_fanout_kind;

typedef struct nx_fanout {
    nx_fanout_kind kind;
    double value;         /* the constant, the Poisson mean, or the trace column's scale */
} nx_fanout;

#define NX_STAGE_MAX_PARENTS 4
#define NX_APP_MAX_STAGES 16

/* One model call of an app's DAG. A root stage makes `fanout` calls per
 * query (default 1: e.g. 6 digit crops of a frame). Other stages' calls go
 * out when their parents' calls have answered: with one parent, `fanout`
 * calls per parent call as each parent reply arrives; with several (a join),
 * once all parents' calls have answered, `fanout` per call of the first
 * parent. */
typedef struct nx_stage {
    char name[NX_NAME_MAX];
    char model[NX_NAME_MAX];
    char precision[16];
    char after[NX_STAGE_MAX_PARENTS][NX_NAME_MAX]; /* parent stage names (config) */
    int nparents;
    int parents[NX_STAGE_MAX_PARENTS];             /* resolved: stage indices */
    nx_fanout fanout;
    const nx_profile *profile;  /* the whole model */
    int group;                  /* prefix-sharing group in the model DB, -1 if none */
    const nx_profile *prefix, *suffix; /* its shared prefix and own suffix */
} nx_stage;

typedef struct nx_app {
    char name[NX_NAME_MAX];
    char model[NX_NAME_MAX];  /* a single-model app: its model (one stage named like the app) */
    char precision[16];       /* "" = the first profile of the model */
    double slo_ms;            /* end to end */
    nx_workload wl;
    nx_stage *stages;         /* in topological order after parsing */
    int nstages;
    const nx_profile *profile; /* single-model apps: stages[0].profile */
} nx_app;

typedef enum nx_trace_map {
    NX_TRACE_MAP_ROUND_ROBIN = 0,
    NX_TRACE_MAP_ZIPF,      /* app i gets weight 1/(i+1)^zipf_s */
    NX_TRACE_MAP_HASH,      /* by a hash of the request index (deterministic) */
    NX_TRACE_MAP_WEIGHT,    /* by the apps' workload `rate` fields used as weights */
} nx_trace_map;

typedef struct nx_trace {
    double *t_s;          /* arrival times, seconds, relative to the first, sorted */
    double *size;         /* optional per-request value (2nd column), or NULL */
    size_t n;
} nx_trace;

typedef struct nx_trace_cfg {
    char file[512];       /* path as written in the experiment (resolved relative to it) */
    double time_scale;    /* multiply trace times by this (0.5 = twice as fast) */
    double rate_scale;    /* replicate (>1) or thin (<1) arrivals: each trace arrival yields
                             floor(s) or ceil(s) requests, with the fractional part drawn */
    nx_trace_map map;
    double zipf_s;
    bool loop;            /* replay the trace in a loop until the run's duration */
    nx_trace trace;       /* loaded data */
} nx_trace_cfg;

/* One combination of policies to compare. */
typedef struct nx_combo {
    char name[NX_NAME_MAX];
    char placement[NX_NAME_MAX];  /* "squishy", "batch_oblivious" */
    char batching[NX_NAME_MAX];   /* "early_drop", "lazy_drop", "clipper_aimd", "tf_serving" */
    char lb[NX_NAME_MAX];         /* "drr", "weighted_random", "power_of_two" */
    char split[NX_NAME_MAX];      /* query SLO split: "dp" (Nexus) or "even" */
    bool prefix;                  /* prefix batching of models that share a prefix (true) */
    bool overlap;                 /* CPU pre/post-processing overlaps the GPU (true); false:
                                     the GPU waits for its batch's pre- and post-processing
                                     on the node's cpu_cores (the paper's -OL) */
    int gpu_sharing;              /* nx_gpu_sharing */
} nx_combo;

typedef enum nx_gpu_sharing {
    NX_GPU_EXCLUSIVE = 0,  /* one batch at a time, sessions round-robin (Nexus) */
    NX_GPU_CONCURRENT,     /* one model server per session, batches run concurrently and slow
                              each other down by the cluster's interference table (the paper's
                              TF Serving and Clipper) */
} nx_gpu_sharing;

/* Pre- and post-processing cost per request of each model on one host's CPU
 * (one core), as written by `nexus-profile --prepost-only`: the experiment's
 * cluster.cpu_profile. */
typedef struct nx_prepost_entry {
    char model[NX_NAME_MAX];
    double pre_us, post_us;
} nx_prepost_entry;

typedef struct nx_prepost {
    char host[256];
    nx_prepost_entry *e;
    int n;
} nx_prepost;

/* GPU interference: mean per-batch latency of one stream when k = 1..nk
 * streams run the same model and batch concurrently on one GPU (the
 * experiment's cluster.interference). */
#define NX_IFX_MAX_K 16

typedef struct nx_ifx_entry {
    char model[NX_NAME_MAX];
    char precision[16];
    int batch;
    double lat_us[NX_IFX_MAX_K];
    int nk;
} nx_ifx_entry;

typedef struct nx_interference {
    char gpu[NX_NAME_MAX];
    nx_ifx_entry *e;      /* sorted by (model, precision, batch) after parsing */
    int n;
} nx_interference;

/* One (model, precision)'s rows of a table: e[0..n-1], increasing batch. */
typedef struct nx_ifx_curve {
    const nx_ifx_entry *e;
    int n;
} nx_ifx_curve;

typedef struct nx_sched_params {
    double epoch_s;        /* 30: epoch every this many seconds */
    double min_epoch_s;    /* 10: earliest epoch after the last when a trigger fires */
    double beacon_s;       /* 1: rate sampling / trigger check period */
    double report_s;       /* 2: frontends report their per-second counts this often */
    double avg_interval_s; /* 10: EWMA time constant; alpha = 1 - exp(-beacon/avg) */
    int history;           /* 30: samples needed before a session can trigger */
    double low, high;      /* 0.8, 1.1: trigger band around allocated throughput */
    double profile_multiplier; /* 1.0: l(b) = mult * (mean + std) */
    bool adaptive;         /* true: epochs run; false: the initial plan stays */
    double split_gain;     /* 0.1: adopt a new SLO split if it needs this much fewer GPUs */
    double keepalive_timeout_s; /* 3: a backend silent this long is dead (Nexus: 3 beacons) */
    int split_steps;       /* 100: time steps of the SLO-split DP over the app SLO */
} nx_sched_params;

typedef struct nx_batch_params {
    double tf_timeout_ms;  /* TF-Serving batch_timeout (default 1 ms) */
    int aimd_step;         /* Clipper additive increase (default 2) */
    double aimd_backoff;   /* Clipper multiplicative decrease (default 0.9) */
    double dispatch_slack_us; /* deferred batching: start this much before the latest
                                 start, for late timers and network jitter (100) */
} nx_batch_params;

/* Failure injection: backend `gpu` dies at `at_s` and restarts `down_s`
 * later (0: stays down). */
typedef struct nx_failure {
    int gpu;
    double at_s;
    double down_s;
} nx_failure;

typedef struct nx_experiment {
    char name[NX_NAME_MAX];
    char path[512];         /* the file it came from */
    /* cluster */
    int gpus;
    char gpu_type[NX_NAME_MAX];
    double gpu_mem_mb;      /* memory per GPU: gpu_mem_gb x 1024 (default 80 GB = 81920 MB) */
    double batch_overhead_us; /* a real backend's cost per batch beyond its executor's run
                                 (hand-over to the executor thread and back, the next batch's
                                 formation): the simulator adds it to every batch (default 0) */
    double switch_overhead; /* a batch whose model differs from the previous batch's on its GPU
                               runs this fraction longer (weights, kernels and buffers gone cold;
                               measured +25 % in the H100 mix): the simulator multiplies its
                               drawn time by 1 + it (default 0) */
    char profile_dir[512];  /* resolved relative to the experiment file */
    int cpu_cores;          /* CPU cores per backend node for pre/post-processing (0: as many
                               as needed, each request's pre/post a pure delay) */
    char cpu_profile[512];  /* "" or a pre/post cost table that replaces the profiles' */
    char interference[512]; /* "" or the GPU interference table (gpu_sharing: concurrent) */
    nx_prepost prepost;     /* loaded cpu_profile */
    nx_interference ifx;    /* loaded interference table */
    /* apps */
    nx_app *apps;
    int napps;
    /* optional trace */
    bool has_trace;
    nx_trace_cfg trace;
    /* policies */
    nx_combo *combos;
    int ncombos;
    /* timing */
    double duration_s;
    double warmup_s;
    uint64_t seed;
    nx_failure *failures;
    int nfailures;
    double net_delay_us;    /* one-way network delay, mean */
    double net_jitter_us;   /* uniform jitter added to each message, [0, jitter) */
    nx_sched_params sched;
    nx_batch_params batch;
    /* max-rate search bounds (rate scale factors) */
    double search_lo, search_hi;
    int search_iters;
} nx_experiment;

void nx_experiment_init(nx_experiment *x);  /* defaults */
void nx_experiment_free(nx_experiment *x);

/* Parse YAML from a buffer. `path` is only used in messages ("path:line: ...")
 * and to resolve relative paths. Does not load profiles or the trace. */
int nx_experiment_parse(nx_experiment *x, const char *text, size_t len,
                        const char *path, nx_errbuf *eb);

/* Parse one profile (YAML) from a buffer; calls nx_profile_finish(). */
int nx_profile_parse(nx_profile *p, const char *text, size_t len,
                     const char *path, nx_errbuf *eb);

/* Parse a trace CSV from a buffer: a header line is optional; the first column
 * is either seconds (a number) or a wall-clock timestamp "YYYY-MM-DD HH:MM:SS[.frac]";
 * times become relative to the first arrival. An empty trace is NX_ERR_EMPTY. */
int nx_trace_parse(nx_trace *t, const char *text, size_t len, const char *path,
                   nx_errbuf *eb);
void nx_trace_free(nx_trace *t);

/* Parse a pre/post cost table (YAML: host, models: [{model, preprocess_us,
 * postprocess_us}]) from a buffer. */
int nx_prepost_parse(nx_prepost *t, const char *text, size_t len, const char *path,
                     nx_errbuf *eb);
void nx_prepost_free(nx_prepost *t);
/* Replace the pre/post cost of every profile in db whose model has a row in
 * t (a prefix-group variant's, by the model of its full profile). */
void nx_prepost_apply(const nx_prepost *t, nx_modeldb *db);

/* Parse an interference table (YAML: gpu, entries: [{model, precision, batch,
 * latency_us: [l1, ..., lk]}]) from a buffer; rows are sorted by (model,
 * precision, batch), which must be unique, and every latency must be > 0. */
int nx_interference_parse(nx_interference *t, const char *text, size_t len, const char *path,
                          nx_errbuf *eb);
void nx_interference_free(nx_interference *t);
/* The rows of (model, precision); returns false (c->n = 0) when there are none. */
bool nx_interference_curve(const nx_interference *t, const char *model, const char *precision,
                           nx_ifx_curve *c);
/* The slowdown of a batch of b while k batches (itself included) run on its
 * GPU: latency(k)/latency(1) of the curve, linear in b between its rows and
 * constant beyond them; past the last measured k, extended linearly in k
 * from the last two (processor sharing adds a constant per stream). k <= 1
 * gives exactly 1. */
double nx_ifx_slowdown(const nx_ifx_curve *c, int b, int k);

/* After profiles are loaded: resolve each app's model in db, check that a
 * batch of 1 fits its SLO at all (else NX_ERR_INFEASIBLE naming the app). */
int nx_experiment_resolve(nx_experiment *x, const nx_modeldb *db, nx_errbuf *eb);

#endif

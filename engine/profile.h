/* profile.h — a model's batching profile on one GPU type, and the model DB.
 *
 * A profile is measured at (possibly sparse) batch sizes; nx_profile_finish()
 * interpolates mean/std latency and memory linearly (GSL) onto every batch
 * 1..max_batch, where max_batch is the largest measured batch. Nothing is
 * extrapolated past it: a batch above max_batch does not exist for the planner.
 * Below the smallest measured batch, a batch costs what the smallest measured
 * one costs (it can always be padded up to it), never less.
 *
 * `padded: true` describes an executor that runs only the measured batch sizes
 * and pads a batch up to the next one (the real CUDA backend, which captures
 * one CUDA graph per size): batch b then costs the smallest measured batch
 * >= b (a step function), not the linear interpolation.
 *
 * The planner's latency ℓ(b) is  multiplier * (mean(b) + std(b))  (Nexus uses
 * 1.15*(mean+std); the multiplier is the scheduler's `profile_multiplier`),
 * computed in one place: nx_latency_est_us() (latency.h). */
#ifndef NX_PROFILE_H
#define NX_PROFILE_H

#include "nx.h"

#define NX_NAME_MAX 64

typedef struct nx_profile_point {
    int batch;
    double mean_us, std_us, mem_mb;
} nx_profile_point;

typedef struct nx_profile {
    char model[NX_NAME_MAX];
    char gpu[NX_NAME_MAX];
    char precision[16];
    int input_shape[8];
    int input_ndim;
    double pre_us, post_us;  /* CPU cost per request (pre- and post-processing) */
    bool padded;             /* a batch costs the next measured batch (see above) */
    char *provenance;        /* free text: where the numbers came from (owned) */

    /* measured points, sorted by batch, unique */
    nx_profile_point *points;
    int npoints;

    /* dense tables filled by nx_profile_finish(), index 1..max_batch */
    int max_batch;
    double *mean_us;
    double *std_us;
    double *mem_mb;
} nx_profile;

void nx_profile_init(nx_profile *p);
void nx_profile_free(nx_profile *p);
/* Sort points, check them (batch >= 1, latency > 0, unique batches) and
 * interpolate dense tables. Returns 0 or NX_ERR_CONFIG with a message. */
int nx_profile_finish(nx_profile *p, nx_errbuf *eb);

static inline double nx_profile_mean(const nx_profile *p, int b) { return p->mean_us[b]; }
static inline double nx_profile_std(const nx_profile *p, int b) { return p->std_us[b]; }
static inline double nx_profile_mem(const nx_profile *p, int b) { return p->mem_mb[b]; }

/* Prefix sharing, declared in the profile directory's modeldb.yml: models
 * that share their first layers (e.g. ResNet-50 variants that differ in the
 * last layer). `prefix` and each `suffix` name profiles of the shared trunk
 * and of the model's own last layers; `full` names the profile of the whole
 * model when it runs alone. */
typedef struct nx_prefix_member {
    char model[NX_NAME_MAX];
    char full[NX_NAME_MAX];
    char suffix[NX_NAME_MAX];
} nx_prefix_member;

typedef struct nx_prefix_group {
    char name[NX_NAME_MAX];
    char prefix[NX_NAME_MAX];
    nx_prefix_member *models;
    int nmodels;
} nx_prefix_group;

/* The model DB: profiles keyed by model name, for one GPU type, and the
 * prefix-sharing groups. */
typedef struct nx_modeldb {
    nx_profile *profiles;
    int n, cap;
    nx_prefix_group *groups;
    int ngroups;
} nx_modeldb;

/* Parse modeldb.yml (share_prefix groups) from a buffer into db. */
int nx_modeldb_parse(nx_modeldb *db, const char *text, size_t len, const char *path,
                     nx_errbuf *eb);
/* The group and member of a shared-prefix model, or -1. */
int nx_modeldb_find_member(const nx_modeldb *db, const char *model, int *member);

void nx_modeldb_init(nx_modeldb *db);
void nx_modeldb_free(nx_modeldb *db);
/* Takes ownership of *p's contents (p is zeroed). Fails on a duplicate
 * (model, precision). */
int nx_modeldb_add(nx_modeldb *db, nx_profile *p, nx_errbuf *eb);
/* Find by model name and precision; precision NULL or "" matches the first
 * profile of that model in insertion order. */
const nx_profile *nx_modeldb_find(const nx_modeldb *db, const char *model,
                                  const char *precision);

#endif

/* profile.c — batching profiles: validation, dense interpolation (GSL linear
 * interpolation between measured batch sizes) and the model DB lookup table. */
#include "profile.h"

#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_interp.h>

void nx_profile_init(nx_profile *p)
{
    memset(p, 0, sizeof *p);
}

void nx_profile_free(nx_profile *p)
{
    free(p->provenance);
    free(p->points);
    free(p->mean_us);
    free(p->std_us);
    free(p->mem_mb);
    memset(p, 0, sizeof *p);
}

static int cmp_point(const void *a, const void *b)
{
    const nx_profile_point *x = a, *y = b;
    return (x->batch > y->batch) - (x->batch < y->batch);
}

/* Fill dst[1..maxb] from (xs, ys): linear between points, the first point's
 * value below it. With one point every batch up to it gets that value. */
static void densify(double *dst, int maxb, const double *xs, const double *ys, int n,
                    bool step)
{
    if (step) { /* the smallest measured batch >= b */
        int k = 0;
        for (int b = 1; b <= maxb; b++) {
            while (xs[k] < b)
                k++;
            dst[b] = ys[k];
        }
        return;
    }
    if (n == 1) {
        for (int b = 1; b <= maxb; b++)
            dst[b] = ys[0];
        return;
    }
    gsl_interp *it = gsl_interp_alloc(gsl_interp_linear, (size_t)n);
    gsl_interp_accel *acc = gsl_interp_accel_alloc();
    NX_ASSERT(it && acc);
    gsl_interp_init(it, xs, ys, (size_t)n);
    for (int b = 1; b <= maxb; b++) {
        double x = b < xs[0] ? xs[0] : (double)b;
        dst[b] = gsl_interp_eval(it, xs, ys, x, acc);
    }
    gsl_interp_accel_free(acc);
    gsl_interp_free(it);
}

int nx_profile_finish(nx_profile *p, nx_errbuf *eb)
{
    if (p->npoints <= 0) {
        nx_err_set(eb, NX_ERR_CONFIG, "profile of '%s' has no batch sizes", p->model);
        return NX_ERR_CONFIG;
    }
    qsort(p->points, (size_t)p->npoints, sizeof *p->points, cmp_point);
    for (int i = 0; i < p->npoints; i++) {
        const nx_profile_point *q = &p->points[i];
        if (q->batch < 1 || q->mean_us <= 0 || q->std_us < 0 || q->mem_mb < 0) {
            nx_err_set(eb, NX_ERR_CONFIG,
                       "profile of '%s': batch %d has batch < 1, latency <= 0 or a negative std/memory",
                       p->model, q->batch);
            return NX_ERR_CONFIG;
        }
        if (i > 0 && q->batch == p->points[i - 1].batch) {
            nx_err_set(eb, NX_ERR_CONFIG, "profile of '%s': batch %d measured twice",
                       p->model, q->batch);
            return NX_ERR_CONFIG;
        }
    }
    int n = p->npoints;
    int maxb = p->points[n - 1].batch;
    double *xs = nx_malloc(sizeof(double) * (size_t)n);
    double *ys = nx_malloc(sizeof(double) * (size_t)n);
    free(p->mean_us);
    free(p->std_us);
    free(p->mem_mb);
    p->mean_us = nx_calloc((size_t)maxb + 1, sizeof(double));
    p->std_us = nx_calloc((size_t)maxb + 1, sizeof(double));
    p->mem_mb = nx_calloc((size_t)maxb + 1, sizeof(double));
    for (int i = 0; i < n; i++)
        xs[i] = p->points[i].batch;
    for (int i = 0; i < n; i++)
        ys[i] = p->points[i].mean_us;
    densify(p->mean_us, maxb, xs, ys, n, p->padded);
    for (int i = 0; i < n; i++)
        ys[i] = p->points[i].std_us;
    densify(p->std_us, maxb, xs, ys, n, p->padded);
    for (int i = 0; i < n; i++)
        ys[i] = p->points[i].mem_mb;
    densify(p->mem_mb, maxb, xs, ys, n, p->padded);
    free(xs);
    free(ys);
    p->max_batch = maxb;
    return 0;
}

void nx_modeldb_init(nx_modeldb *db)
{
    memset(db, 0, sizeof *db);
}

int nx_modeldb_find_member(const nx_modeldb *db, const char *model, int *member)
{
    for (int g = 0; g < db->ngroups; g++)
        for (int m = 0; m < db->groups[g].nmodels; m++)
            if (strcmp(db->groups[g].models[m].model, model) == 0) {
                *member = m;
                return g;
            }
    return -1;
}

void nx_modeldb_free(nx_modeldb *db)
{
    for (int i = 0; i < db->n; i++)
        nx_profile_free(&db->profiles[i]);
    for (int g = 0; g < db->ngroups; g++)
        free(db->groups[g].models);
    free(db->groups);
    free(db->profiles);
    memset(db, 0, sizeof *db);
}

int nx_modeldb_add(nx_modeldb *db, nx_profile *p, nx_errbuf *eb)
{
    if (nx_modeldb_find(db, p->model, p->precision)) {
        nx_err_set(eb, NX_ERR_CONFIG, "model '%s' (%s) has two profiles", p->model,
                   p->precision);
        return NX_ERR_CONFIG;
    }
    if (db->n == db->cap) {
        db->cap = db->cap ? db->cap * 2 : 16;
        db->profiles = nx_realloc(db->profiles, sizeof(nx_profile) * (size_t)db->cap);
    }
    db->profiles[db->n++] = *p;
    memset(p, 0, sizeof *p);
    return 0;
}

const nx_profile *nx_modeldb_find(const nx_modeldb *db, const char *model,
                                  const char *precision)
{
    for (int i = 0; i < db->n; i++) {
        const nx_profile *p = &db->profiles[i];
        if (strcmp(p->model, model) != 0)
            continue;
        if (!precision || !precision[0] || strcmp(p->precision, precision) == 0)
            return p;
    }
    return NULL;
}

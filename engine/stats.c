/* stats.c — reduction of per-request records to a run's metrics (see stats.h).
 * Percentiles are GSL's quantiles of the sorted latencies (linear
 * interpolation between order statistics). */
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_sort_double.h>
#include <gsl/gsl_statistics_double.h>

/* Sort non-negative doubles: their IEEE bit patterns order like unsigned
 * integers, so an LSD radix sort (4 passes of 16 bits) does it in O(n);
 * latencies are never negative. */
static void sort_nonneg(double *a, size_t n)
{
    if (n < 2)
        return;
    uint64_t *x = nx_malloc(sizeof(uint64_t) * n);
    memcpy(x, a, sizeof(double) * n); /* the bits, without aliasing a double as an integer */
    uint64_t *tmp = nx_malloc(sizeof(uint64_t) * n);
    size_t *count = nx_malloc(sizeof(size_t) * 65536);
    uint64_t *src = x, *dst = tmp;
    for (int pass = 0; pass < 4; pass++) {
        int shift = 16 * pass;
        memset(count, 0, sizeof(size_t) * 65536);
        for (size_t i = 0; i < n; i++)
            count[(src[i] >> shift) & 0xffff]++;
        size_t sum = 0;
        for (size_t k = 0; k < 65536; k++) {
            size_t c = count[k];
            count[k] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[count[(src[i] >> shift) & 0xffff]++] = src[i];
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    /* four passes: the sorted data is back in x */
    memcpy(a, x, sizeof(double) * n);
    free(x);
    free(tmp);
    free(count);
}

void nx_stats_init(nx_stats *st, int napps, nx_time win_start, nx_time win_end)
{
    memset(st, 0, sizeof *st);
    st->napps = napps;
    st->apps = nx_calloc((size_t)napps, sizeof(nx_app_stats));
    st->win_start = win_start;
    st->win_end = win_end;
}

void nx_stats_free(nx_stats *st)
{
    free(st->apps);
    free(st->lat_ms);
    memset(st, 0, sizeof *st);
}

void nx_stats_add(nx_stats *st, const nx_query *r)
{
    if (r->arrival < st->win_start || r->arrival >= st->win_end)
        return;
    NX_ASSERT(r->app >= 0 && r->app < st->napps);
    nx_app_stats *as = &st->apps[r->app];
    st->sent++;
    as->sent++;
    switch (r->status) {
    case NX_REQ_OK:
        st->ok++;
        as->ok++;
        break;
    case NX_REQ_LATE:
        st->late++;
        as->late++;
        break;
    case NX_REQ_UNANSWERED:
        st->late++;
        as->late++;
        st->unanswered++;
        as->unanswered++;
        return;
    default:
        st->dropped++;
        as->dropped++;
        return;
    }
    if (st->nlat == st->caplat) {
        st->caplat = st->caplat ? st->caplat * 2 : 4096;
        st->lat_ms = nx_realloc(st->lat_ms, sizeof(double) * st->caplat);
    }
    double ms = NX_TO_MS(r->finish - r->arrival);
    st->lat_ms[st->nlat++] = ms;
    st->latsum += ms;
}

void nx_stats_finish(nx_stats *st, nx_metrics *m)
{
    memset(m, 0, sizeof *m);
    m->window_s = NX_TO_SEC(st->win_end - st->win_start);
    m->sent = st->sent;
    m->ok = st->ok;
    m->late = st->late;
    m->dropped = st->dropped;
    m->unanswered = st->unanswered;
    if (m->window_s > 0) {
        m->offered_rate = (double)st->sent / m->window_s;
        m->goodput = (double)st->ok / m->window_s;
    }
    m->bad_rate = st->sent ? (double)(st->late + st->dropped) / (double)st->sent : 0;
    size_t n = st->nlat;
    if (n > 0) {
        for (size_t i = 0; i < n; i++) /* -0.0 would sort last */
            if (!(st->lat_ms[i] > 0))
                st->lat_ms[i] = 0;
        sort_nonneg(st->lat_ms, n);
        m->lat_p50_ms = gsl_stats_quantile_from_sorted_data(st->lat_ms, 1, n, 0.50);
        m->lat_p90_ms = gsl_stats_quantile_from_sorted_data(st->lat_ms, 1, n, 0.90);
        m->lat_p99_ms = gsl_stats_quantile_from_sorted_data(st->lat_ms, 1, n, 0.99);
        m->lat_max_ms = st->lat_ms[n - 1];
        m->lat_mean_ms = st->latsum / (double)n;
    }
}

double nx_stats_step_mean(const double *t_s, const double *v, int n, double ws, double we)
{
    if (!(we > ws))
        return 0;
    double acc = 0;
    for (int k = 0; k < n; k++) {
        double a = t_s[k];
        double b = k + 1 < n ? t_s[k + 1] : we;
        if (a < ws)
            a = ws;
        if (b > we)
            b = we;
        if (b > a)
            acc += (b - a) * v[k];
    }
    return acc / (we - ws);
}

int nx_stats_robust(double *x, int n, double k, double *mean, double *sd)
{
    NX_ASSERT(n >= 1);
    gsl_sort(x, 1, (size_t)n);
    int kept = n;
    if (k > 0 && n >= 3) {
        double med = gsl_stats_median_from_sorted_data(x, 1, (size_t)n);
        double *dev = nx_malloc(sizeof *dev * (size_t)n);
        for (int i = 0; i < n; i++)
            dev[i] = fabs(x[i] - med);
        gsl_sort(dev, 1, (size_t)n);
        double mad = 1.4826 * gsl_stats_median_from_sorted_data(dev, 1, (size_t)n);
        free(dev);
        if (mad < 0.01 * med)
            mad = 0.01 * med;
        double cut = med + k * mad;
        while (kept > 1 && x[kept - 1] > cut)
            kept--;
    }
    *mean = gsl_stats_mean(x, 1, (size_t)kept);
    *sd = kept > 1 ? gsl_stats_sd_m(x, 1, (size_t)kept, *mean) : 0;
    return kept;
}

/* search.c — bisection for the highest rate scale whose bad rate is <= 1 %
 * (see search.h). Every probe is a full simulated run with the same seed, so
 * probes differ only in the load (common random numbers), which keeps the
 * bad rate close to monotone in the scale.
 *
 * The bracket is [search.lo, search.hi] from the experiment. The search
 * starts at lo (if lo fails, the max rate is 0) and scans up by x1.5 to the
 * first failing scale, then bisects `iters` times between the last passing
 * and the first failing scale. Scanning from below finds the first crossing
 * of the 1 % line even where the bad rate is not monotone in the load (a
 * tightly packed plan can fail at a low rate and pass at a higher one that
 * fills whole GPUs). If hi still passes, the result is flagged as capped. */
#include "search.h"
#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_pt(const void *a, const void *b)
{
    const nx_sweep_pt *x = a, *y = b;
    return (x->scale > y->scale) - (x->scale < y->scale);
}

static int probe(const nx_experiment *x, const nx_combo *c, const nx_search_opts *o, double scale,
                 nx_combo_report *out, nx_run_result *res, nx_errbuf *eb)
{
    char label[128];
    snprintf(label, sizeof label, "%s x%.3f", c->name, scale);
    nx_run_opts ro = {
        .scale = scale,
        .seed = o->seed,
        .keep_requests = false,
        .progress = o->progress,
        .label = label,
    };
    int rc = nx_run(x, c, &ro, res, eb);
    if (rc < 0)
        return rc;
    out->sweep = nx_realloc(out->sweep, sizeof(nx_sweep_pt) * (size_t)(out->nsweep + 1));
    out->sweep[out->nsweep++] = (nx_sweep_pt){scale, res->offered_rate, res->goodput,
                                             res->bad_rate, res->gpus_used_avg};
    return 0;
}

int nx_search_max_rate(const nx_experiment *x, const nx_combo *c, const nx_search_opts *o,
                       nx_combo_report *out, nx_errbuf *eb)
{
    memset(out, 0, sizeof *out);
    out->combo = c;
    out->searched = true;
    double lo = x->search_lo, hi = x->search_hi;
    nx_run_result best, cur;
    int rc = probe(x, c, o, lo, out, &best, eb);
    if (rc < 0)
        return rc;
    if (best.bad_rate > NX_BAD_RATE_TARGET) { /* fails even at the bottom */
        out->run = best;
        out->max_rate = 0;
        goto done;
    }
    /* scan up by x1.5 to the first failing scale */
    double pass = lo, fail = -1;
    while (pass < hi) {
        double next = pass * 1.5 < hi ? pass * 1.5 : hi;
        if ((rc = probe(x, c, o, next, out, &cur, eb)) < 0)
            goto err;
        if (cur.bad_rate <= NX_BAD_RATE_TARGET) {
            pass = next;
            nx_run_result_free(&best);
            best = cur;
        } else {
            fail = next;
            nx_run_result_free(&cur);
            break;
        }
    }
    if (fail < 0) { /* the upper bound still passes */
        out->run = best;
        out->max_rate = best.offered_rate;
        out->max_rate_capped = true;
        goto done;
    }
    for (int i = 0; i < x->search_iters; i++) {
        double mid = 0.5 * (pass + fail);
        if ((rc = probe(x, c, o, mid, out, &cur, eb)) < 0)
            goto err;
        if (cur.bad_rate <= NX_BAD_RATE_TARGET) {
            pass = mid;
            nx_run_result_free(&best);
            best = cur;
        } else {
            fail = mid;
            nx_run_result_free(&cur);
        }
    }
    out->run = best;
    out->max_rate = best.offered_rate;
done:
    qsort(out->sweep, (size_t)out->nsweep, sizeof(nx_sweep_pt), cmp_pt);
    if (o->keep_requests) {
        /* the probes kept no per-request records (they would cost memory
         * for every probe); the run is deterministic, so run the reported
         * scale again with them */
        double scale = out->run.scale;
        nx_run_result_free(&out->run);
        nx_run_opts ro = {.scale = scale, .seed = o->seed, .keep_requests = true,
                          .progress = o->progress, .label = c->name};
        if ((rc = nx_run(x, c, &ro, &out->run, eb)) < 0)
            return rc;
    }
    return 0;
err:
    nx_run_result_free(&best);
    return rc;
}

void nx_combo_report_free(nx_combo_report *r)
{
    nx_run_result_free(&r->run);
    free(r->sweep);
    memset(r, 0, sizeof *r);
}

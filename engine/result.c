/* result.c — freeing a run's result and filling its request metrics (see
 * result.h). */
#include "result.h"

#include <stdlib.h>
#include <string.h>

void nx_run_result_free(nx_run_result *r)
{
    free(r->util);
    for (int k = 0; k < r->ntimeline; k++)
        free(r->timeline[k].slo_ms);
    free(r->timeline);
    free(r->sessions);
    free(r->apps);
    free(r->lat_sorted);
    free(r->reqs);
    if (r->final_plan.gpu)
        nx_plan_free(&r->final_plan);
    memset(r, 0, sizeof *r);
}

void nx_run_result_set_metrics(nx_run_result *r, const nx_metrics *m)
{
    r->window_s = m->window_s;
    r->sent = m->sent;
    r->ok = m->ok;
    r->late = m->late;
    r->dropped = m->dropped;
    r->unanswered = m->unanswered;
    r->offered_rate = m->offered_rate;
    r->goodput = m->goodput;
    r->bad_rate = m->bad_rate;
    r->lat_p50_ms = m->lat_p50_ms;
    r->lat_p90_ms = m->lat_p90_ms;
    r->lat_p99_ms = m->lat_p99_ms;
    r->lat_max_ms = m->lat_max_ms;
    r->lat_mean_ms = m->lat_mean_ms;
}

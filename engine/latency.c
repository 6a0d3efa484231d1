/* latency.c — the drawn batch latency (see latency.h). */
#include "latency.h"

#include <gsl/gsl_randist.h>

nx_time nx_latency_draw(const nx_profile *p, int b, gsl_rng *rng)
{
    NX_ASSERT(b >= 1 && b <= p->max_batch);
    double mean = p->mean_us[b], sd = p->std_us[b];
    double us = mean;
    if (sd > 0) {
        double k = (mean / sd) * (mean / sd);
        us = gsl_ran_gamma(rng, k, sd * sd / mean);
    }
    nx_time t = NX_US(us);
    return t > 0 ? t : 1;
}

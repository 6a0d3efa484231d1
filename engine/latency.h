/* latency.h — the one latency model of the engine and the simulator.
 *
 *   nx_latency_est_us   what planning and batching assume a batch of b takes:
 *                       mult · (mean + std) at b, b clamped to [1, max batch]
 *                       (a batch above the largest measured one costs what
 *                       the largest costs; below one, what one costs)
 *   nx_latency_draw     what a batch of b does take in the simulator and the
 *                       emulated executor: a Gamma draw with the profile's
 *                       mean and std at b (shape (mean/std)², scale
 *                       std²/mean; std 0 gives the mean), at least 1 ns */
#ifndef NX_LATENCY_H
#define NX_LATENCY_H

#include "profile.h"

#include <gsl/gsl_rng.h>

static inline double nx_latency_est_us(const nx_profile *p, int b, double mult)
{
    if (b > p->max_batch)
        b = p->max_batch;
    if (b < 1)
        b = 1;
    return mult * (p->mean_us[b] + p->std_us[b]);
}

nx_time nx_latency_draw(const nx_profile *p, int b, gsl_rng *rng);

#endif

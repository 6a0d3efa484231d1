/* sched_state.h — what a global scheduler must keep to resume after a
 * restart without planning from zero: each session's rate estimates (the
 * per-frontend EWMAs, the summed rate, the planned rate and how many beacons
 * measured it), the stage budgets, the epoch counter and the current plan on
 * physical GPUs (the next plan is mapped onto it, so sessions stay where they
 * were), and which GPUs had a backend. Plain data: the real scheduler writes
 * it to a file and reads it back (real/node/statefile.c); the engine only
 * copies it out and in.
 *
 * Resuming: nx_scheduler_init(), nx_scheduler_import(), then
 * nx_scheduler_start(): the first epoch plans for the restored rates and maps
 * onto the restored plan, so with the same GPUs alive it is the plan the
 * scheduler had when the state was exported.
 *
 * The GPUs alive in the state are taken back on trust: alive but unconfirmed
 * (nx_scheduler.unconfirmed), their work kept in the plan and the routes,
 * while their backends attach again. A keep-alive confirms one (its table is
 * sent again, nothing is re-planned); one not heard from within the
 * keep-alive timeout of the import (nx_scheduler_set_unconfirmed()) is
 * declared dead at the next beacon, as any silent backend is (GPU down to the frontends, a "failure"
 * re-plan). nx_scheduler_set_alive() before the start settles a GPU at once
 * (the caller knows its backend is there, or that its slot is empty). */
#ifndef NX_SCHED_STATE_H
#define NX_SCHED_STATE_H

#include "scheduler.h"

typedef struct nx_sched_state {
    int nsess, nfrontends, ngpu;
    uint64_t epoch;            /* the engine's epoch number (tables and routes carry it) */
    double *plan_rate;         /* per session, req/s */
    double *rate;              /* per session, req/s */
    int *hist;                 /* per session: beacons with a rate measured */
    double *budget;            /* per session: SLO (stage budget), µs */
    double *ewma;              /* nsess x nfrontends, req/s */
    uint8_t *seen;             /* nsess x nfrontends */
    uint8_t *alive;            /* per GPU: it had a backend */
    nx_plan plan;              /* ngpu GPUs, 2 x nsess session ids (prefix units after
                                  the sessions) */
} nx_sched_state;

void nx_sched_state_init(nx_sched_state *st, int nsess, int nfrontends, int ngpu);
void nx_sched_state_free(nx_sched_state *st);

/* Copy sc's state out; st must have sc's dimensions (NX_ERR_INVAL otherwise). */
int nx_scheduler_export(const nx_scheduler *sc, nx_sched_state *st);
/* Before nx_scheduler_start(): take st's state over. NX_ERR_INVAL (sc
 * unchanged) if the dimensions differ or a value is out of range (a negative
 * or non-finite rate, a session id or batch out of range); why says which. */
int nx_scheduler_import(nx_scheduler *sc, const nx_sched_state *st, char *why, size_t n);

#endif

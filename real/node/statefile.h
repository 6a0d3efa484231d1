/* statefile.h — the scheduler's state file (--state): its plan and rate
 * estimates (engine/sched_state.h) in a small line-oriented text file,
 * written atomically (a temporary file in the same directory, fsync'ed, then
 * rename(2) over the old one, and the directory fsync'ed), so a reader sees
 * the old state or the new one, never half of one.
 *
 *   nexus-scheduler-state 1
 *   experiment NAME
 *   policy NAME
 *   catalog HEX               the catalog hash nodes must match
 *   dims NSESS NFRONTENDS NGPU
 *   epochs EPOCH TOTAL TRIGGERS
 *   session S PLAN_RATE RATE HIST BUDGET_US      one per session, in order
 *   ewma S F RATE                                one per measured (session, frontend)
 *   alloc GPU SESSION BATCH RATE THROUGHPUT      the plan, GPU by GPU
 *   backend SLOT INCARNATION ADDR                one per backend slot alive (its data
 *                                                address), so a restarted scheduler
 *                                                lists it to frontends before it attaches
 *   end
 *
 * A file without 'backend' lines (written before they existed) reads as one
 * where no backend was alive: nothing is taken back on trust.
 * Numbers are written with 17 significant digits (doubles round-trip). */
#ifndef NX_STATEFILE_H
#define NX_STATEFILE_H

#include "sched_state.h"

typedef struct nx_statefile_id {
    const char *experiment, *policy;
    uint64_t catalog;
} nx_statefile_id;

/* A backend slot's node as the file keeps it (the slots alive in st). */
typedef struct nx_statefile_node {
    uint64_t incarnation;
    char addr[128];
} nx_statefile_node;

/* nodes: st->ngpu entries, those of the slots alive in st are written. */
int nx_statefile_write(const char *path, const nx_statefile_id *id, const nx_sched_state *st,
                       const nx_statefile_node *nodes, uint64_t epochs, uint64_t triggers,
                       nx_errbuf *eb);
/* st: initialised with the dimensions expected; nodes: st->ngpu entries
 * (those of the slots alive in st are filled in). NX_ERR_NOTFOUND: no file;
 * NX_ERR_PARSE: malformed (eb names PATH:LINE); NX_ERR_CONFIG: another
 * experiment, policy, catalog or dimensions (eb says which). */
int nx_statefile_read(const char *path, const nx_statefile_id *id, nx_sched_state *st,
                      nx_statefile_node *nodes, uint64_t *epochs, uint64_t *triggers,
                      nx_errbuf *eb);
/* Whether a state file can be written at path (its directory exists and
 * is writable): checked at start, so a bad --state fails at once. */
int nx_statefile_check(const char *path, nx_errbuf *eb);

#endif

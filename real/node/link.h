/* link.h — a backend's or frontend's side of the control plane: its one
 * Attach stream to the scheduler (real/proto/nexus.proto). It registers with
 * the node's identity (kind, experiment, catalog hash, policy, the slot it
 * wants, its incarnation, a backend's data address), hands the daemon every
 * message the scheduler pushes, and when the stream ends attaches again after
 * half a second asking for the same slot — unless the scheduler refused the
 * node (a mismatched experiment: on_refused, fatal for the daemon) or the
 * daemon is leaving. Loop thread only. */
#ifndef NX_LINK_H
#define NX_LINK_H

#include "catalog.h"
#include "nexus.pb-c.h"
#include "rpc.h"

typedef struct nx_link_cfg {
    const char *who;              /* log prefix (the daemon's buffer: may change) */
    int kind;                     /* NEXUS__NODE_KIND__NODE_BACKEND or _FRONTEND */
    const nx_catalog *cat;
    const char *sched_addr;
    const char *data_addr;        /* backend: its Backend service */
    const char *executor;         /* backend */
    uint64_t incarnation;
    int want_slot;                /* -1: any */
    void (*on_registered)(void *ctx, const Nexus__Registered *r);
    void (*on_msg)(void *ctx, const Nexus__SchedMsg *m);  /* everything else it pushes */
    void (*on_refused)(void *ctx, const char *why);
    void *ctx;
} nx_link_cfg;

typedef struct nx_link {
    nx_link_cfg cfg;
    nx_rpc *rpc;
    nx_loop *loop;
    nx_rpc_channel *ch;
    nx_rpc_call *c;
    bool registered, leaving;
    int slot;
    nx_event retry;
} nx_link;

/* Connect and attach (waiting for the scheduler if it is not up yet). */
void nx_link_init(nx_link *l, nx_rpc *rpc, const nx_link_cfg *cfg);
/* Send m when registered; false otherwise. */
bool nx_link_send(nx_link *l, Nexus__NodeMsg *m);
/* Say Leave and attach no more (the stream ends with nx_rpc_shutdown()). */
void nx_link_leave(nx_link *l);

#endif

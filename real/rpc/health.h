/* health.h — the standard gRPC health service (grpc.health.v1.Health:
 * Check and Watch, real/proto/health.proto) for a daemon's server.
 *
 * A daemon names the services it reports ("" is the whole server) and flips
 * them between SERVING and NOT_SERVING as its state changes (registered,
 * planned, shutting down); Check answers the current status (NOT_FOUND for a
 * name never set), Watch sends it at once and again at every change
 * (SERVICE_UNKNOWN for a name not set yet, then its status once it is).
 * The methods are open: they need no bearer token (probes rarely carry one),
 * but TLS applies to them like every other call on the port.
 *
 * Everything runs on the loop thread. Bounded: at most NX_HEALTH_MAX_WATCH
 * watchers (more are refused RESOURCE_EXHAUSTED), and a watcher that leaves
 * 8 updates unread is closed. */
#ifndef NX_HEALTH_H
#define NX_HEALTH_H

#include "rpc.h"

#define NX_HEALTH_MAX_WATCH 256

enum nx_health_status { /* the protocol's ServingStatus numbers */
    NX_HEALTH_UNKNOWN = 0,
    NX_HEALTH_SERVING = 1,
    NX_HEALTH_NOT_SERVING = 2,
    NX_HEALTH_SERVICE_UNKNOWN = 3,
};

typedef struct nx_health nx_health;

int nx_health_init(nx_health **out);
/* After nx_rpc_shutdown() completed (its on_close callbacks released every
 * watcher). */
void nx_health_free(nx_health *h);
/* The two methods to add to the server's method table (they point at h). */
void nx_health_methods(nx_health *h, nx_rpc_method out[2]);
/* Set a service's status (creating it): watchers hear of a change. */
void nx_health_set(nx_health *h, const char *service, bool serving);
/* Every service NOT_SERVING (shutting down). */
void nx_health_set_all(nx_health *h, bool serving);
/* A service's status, NX_HEALTH_SERVICE_UNKNOWN if never set. */
int nx_health_get(const nx_health *h, const char *service);
/* Open Watch streams now. */
int nx_health_watchers(const nx_health *h);

#endif

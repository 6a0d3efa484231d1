/* wire.h — the engine's control messages to and from their protobuf form
 * (real/proto/nexus.proto), with every received field checked: a message
 * from the network that does not fit the catalog (a session out of range, a
 * batch above the profile's, routes whose offsets do not add up, a count
 * matrix of the wrong size) is an error with a reason, never an assertion in
 * the engine.
 *
 * *_to() fill a protobuf struct whose arrays point into the engine message
 * (and, for tables, into scratch the caller frees with nx_wire_table_done);
 * *_from() allocate the engine message, owned by the caller (free()). */
#ifndef NX_WIRE_H
#define NX_WIRE_H

#include "msg.h"
#include "ops.h"
#include "nexus.pb-c.h"

void nx_wire_table_to(const nx_table_msg *m, Nexus__ModelTable *t);
void nx_wire_table_done(Nexus__ModelTable *t);
int nx_wire_table_from(const Nexus__ModelTable *t, const nx_session *sess, int nsess,
                       nx_table_msg **out, char *why, size_t n);

void nx_wire_routes_to(const nx_routes_msg *m, Nexus__Routes *r);
/* gpu indices must be in [0, ngpu) */
int nx_wire_routes_from(const Nexus__Routes *r, int nsess, int ngpu, nx_routes_msg **out,
                        char *why, size_t n);
/* A copy of m keeping only the routes whose GPU keep[gpu] is true (keep NULL:
 * all of them); a session left with none has none. */
nx_routes_msg *nx_wire_routes_filter(const nx_routes_msg *m, const bool *keep);

void nx_wire_rates_to(const nx_rates_msg *m, Nexus__Rates *r);
int nx_wire_rates_from(const Nexus__Rates *r, int nsess, nx_rates_msg **out, char *why,
                       size_t n);

#endif

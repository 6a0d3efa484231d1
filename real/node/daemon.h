/* daemon.h — the start and the end every daemon shares: the loop first (it
 * sets the signal mask every later thread inherits), then the experiment's
 * catalog, then gRPC; and their release in the reverse order. */
#ifndef NX_DAEMON_H
#define NX_DAEMON_H

#include "setup.h"
#include "loop.h"
#include "rpc.h"

/* On failure everything opened so far is released and eb says why. */
int nx_daemon_open(nx_loop **loop, nx_setup *setup, nx_rpc **rpc, const char *path,
                   const char *policy, double scale, const nx_rpc_cfg *rcfg, nx_errbuf *eb);
/* After nx_rpc_shutdown() has completed (rpc may be NULL). */
void nx_daemon_close(nx_loop *loop, nx_setup *setup, nx_rpc *rpc);

#endif

/* daemon.c — a daemon's common start and end (see daemon.h). */
#include "daemon.h"

#include <string.h>

int nx_daemon_open(nx_loop **loop, nx_setup *setup, nx_rpc **rpc, const char *path,
                   const char *policy, double scale, const nx_rpc_cfg *rcfg, nx_errbuf *eb)
{
    memset(setup, 0, sizeof *setup);
    *rpc = NULL;
    int rc = nx_loop_init(loop, eb);
    if (rc < 0)
        return rc;
    if ((rc = nx_setup_load(setup, path, policy, scale, eb)) == 0 &&
        (rc = nx_rpc_init(rpc, *loop, rcfg, eb)) == 0)
        return 0;
    nx_setup_free(setup);
    nx_loop_free(*loop);
    *loop = NULL;
    return rc;
}

void nx_daemon_close(nx_loop *loop, nx_setup *setup, nx_rpc *rpc)
{
    nx_rpc_free(rpc);
    nx_setup_free(setup);
    nx_loop_free(loop);
}

/* exec_nodnn.c — the cpu and cuda executors when the DNN engine (real/dnn,
 * libnxdnn) is not part of the build: init says so (NX_ERR_NOTSUP), the
 * emulated executor still serves. */
#include "exec.h"

static int nodnn_init(void **state, const nx_bexec_cfg *cfg, nx_errbuf *eb)
{
    (void)cfg;
    *state = NULL;
    nx_err_set(eb, NX_ERR_NOTSUP,
               "this build has no DNN engine (real/dnn): use --executor emulated");
    return NX_ERR_NOTSUP;
}

static void nodnn_run(void *state, nx_batch *b, nx_xreq *const *x)
{
    (void)state;
    (void)b;
    (void)x;
    NX_ASSERT(!"nodnn_run: init failed, run must not be called");
}

static void nodnn_free(void *state) { (void)state; }

const nx_bexec_ops nx_bexec_cpu_ops = {
    .name = "cpu", .init = nodnn_init, .run = nodnn_run, .free = nodnn_free};
const nx_bexec_ops nx_bexec_cuda_ops = {
    .name = "cuda", .init = nodnn_init, .run = nodnn_run, .free = nodnn_free};

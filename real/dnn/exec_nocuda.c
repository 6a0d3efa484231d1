/* exec_nocuda.c — nx_exec_cuda_ops in a build without USE_CUDA=1 (SQLite's OMIT stubs): every
 * caller links against the same symbol, and init says "not supported" with what to do.
 * mk/dnn.mk links this file only when the CUDA executor (real/dnn/cuda/) is not built. */
#include "graph.h"

static int init(nx_exec **out, const nx_graph *g, nx_precision prec, int device, nx_errbuf *eb)
{
    *out = NULL;
    nx_err_set(eb, NX_ERR_NOTSUP, "the CUDA executor is not supported by this build "
               "(rebuild with `make USE_CUDA=1` on a machine with the CUDA toolkit and cuDNN)");
    return NX_ERR_NOTSUP;
}

static int run(nx_exec *e, int batch, const float *const *in, float *const *out, nx_errbuf *eb)
{
    nx_err_set(eb, NX_ERR_NOTSUP, "the CUDA executor is not supported by this build");
    return NX_ERR_NOTSUP;
}

static size_t memory(const nx_exec *e) { return 0; }
static void exec_free(nx_exec *e) {}

const nx_exec_ops nx_exec_cuda_ops = {
    .name = "cuda", .init = init, .run = run, .memory = memory, .free = exec_free,
};

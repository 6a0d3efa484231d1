/* cuda_plan.cu — the CUDA executor's memory plan.
 *
 * Every activation the steps read or write gets a storage (a view shares its source's),
 * with its lifetime: the first and last step that touch it. Storages are then packed into
 * device blocks greedy best-fit in step order, a block reused once the last reader of what
 * it held has run; the blocks are sized for the graph's max_batch and allocated once at
 * load, so serving never allocates, and filled pseudo-randomly (tuning never times zeros).
 * The plan is our own rather than one buffer per graph tensor: lowering's layout twins and
 * fusions change which tensors exist. Staging buffers for the inputs and outputs are fixed
 * storages outside the plan. workspace_need() sizes the one workspace that cuDNN and
 * cuBLASLt share. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_int.h"

namespace nxc {

/* ---- storage planning -------------------------------------------------------------------- */

int make_storage(nx_exec *e, size_t bytes, bool fixed)
{
    e->sto = (storage *)grow(e->sto, &e->capsto, e->nsto + 1, sizeof *e->sto);
    storage *s = &e->sto[e->nsto];
    s->bytes = (bytes + 255) & ~(size_t)255;
    s->first = INT32_MAX;
    s->last = -1;
    s->ptr = NULL;
    s->fixed = fixed;
    return e->nsto++;
}

static int storage_of(nx_exec *e, int t)
{
    xtensor *x = &e->xt[t];
    if (x->storage <= -2) {          /* a view: share the source's storage */
        int src = -2 - x->storage;
        x->storage = storage_of(e, src);
    } else if (x->storage == -1 && x->act) {
        x->storage = make_storage(e, (size_t)elems_at(x, e->max_batch) * dt_size(x->dt), false);
    }
    return x->storage;
}

int plan(nx_exec *e)
{
    /* lifetimes in step order; staging storages are fixed */
    for (int si = 0; si < e->nst; si++) {
        step *s = &e->st[si];
        int ins[NX_DNN_MAX_IO + 1], nin = 0;
        for (int i = 0; i < s->nin; i++)
            ins[nin++] = s->in[i];
        if (s->z >= 0)
            ins[nin++] = s->z;
        for (int i = 0; i < nin; i++) {
            if (!e->xt[ins[i]].act)
                continue;
            int so = storage_of(e, ins[i]);
            if (so < 0)
                return fail(e, NX_ERR_CONFIG, NULL, "tensor '%s' has no storage", e->xt[ins[i]].name);
            if (e->sto[so].first == INT32_MAX)
                e->sto[so].first = si;     /* read before any write: a staging buffer */
            if (e->sto[so].last < si)
                e->sto[so].last = si;
        }
        int so = storage_of(e, s->out);
        if (so >= 0) {
            if (e->sto[so].first > si)
                e->sto[so].first = si;
            if (e->sto[so].last < si)
                e->sto[so].last = si;
        }
    }
    /* greedy best fit over blocks, freed after their last reader */
    int nsto = e->nsto;
    int *block_of = (int *)nx_malloc((size_t)nsto * sizeof(int));
    bool *busy = (bool *)nx_calloc((size_t)nsto + 1, sizeof(bool));   /* blocks <= storages */
    e->block_bytes = (size_t *)nx_calloc((size_t)nsto + 1, sizeof(size_t));
    for (int i = 0; i < nsto; i++)
        block_of[i] = -1;
    for (int si = 0; si < e->nst; si++) {
        for (int k = 0; k < nsto; k++) {
            storage *s = &e->sto[k];
            if (s->fixed || s->first != si || block_of[k] >= 0)
                continue;
            int best = -1;
            for (int b = 0; b < e->nblocks; b++)
                if (!busy[b] && e->block_bytes[b] >= s->bytes &&
                    (best < 0 || e->block_bytes[b] < e->block_bytes[best]))
                    best = b;
            if (best < 0) {
                best = e->nblocks++;
                e->block_bytes[best] = s->bytes;
            }
            busy[best] = true;
            block_of[k] = best;
        }
        for (int k = 0; k < nsto; k++)
            if (!e->sto[k].fixed && e->sto[k].last == si && block_of[k] >= 0)
                busy[block_of[k]] = false;
    }
    free(busy);
    e->blocks = (void **)nx_calloc((size_t)e->nblocks + 1, sizeof(void *));
    int rc = 0;
    for (int b = 0; b < e->nblocks && !rc; b++) {
        rc = dev_alloc(e, &e->blocks[b], e->block_bytes[b], "activations");
        if (!rc)
            rc = k_fill(e->stream, e->dt, e->blocks[b], (long long)(e->block_bytes[b] / dt_size(e->dt)),
                        (unsigned)b + 1) == cudaSuccess ? 0
                 : fail(e, NX_ERR_IO, NULL, "fill kernel failed");
    }
    for (int k = 0; k < nsto && !rc; k++)
        if (!e->sto[k].fixed && block_of[k] >= 0)
            e->sto[k].ptr = e->blocks[block_of[k]];
    free(block_of);
    return rc;
}

void *ptr_of(nx_exec *e, int t)
{
    xtensor *x = &e->xt[t];
    if (!x->act)
        return x->cptr;
    return x->storage >= 0 ? e->sto[x->storage].ptr : NULL;
}

size_t workspace_need(nx_exec *e)
{
    size_t need = 32u << 20;
    for (int i = 0; i < e->nst; i++) {
        step *s = &e->st[i];
        if (s->kind != S_CONV)
            continue;
        if (conv_set_batch(e, s->conv, e->max_batch))
            continue;
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        int np = 0;
        cudnnSetConvolutionMathType(s->conv->cd, e->dt == DT_F16 ? CUDNN_TENSOR_OP_MATH : CUDNN_DEFAULT_MATH);
        if (cudnnGetConvolutionForwardAlgorithm_v7(e->dnn, s->conv->xd, s->conv->wd, s->conv->cd,
                                                   s->conv->yd, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                   &np, perf) != CUDNN_STATUS_SUCCESS)
            continue;
        for (int k = 0; k < np; k++)
            if (perf[k].status == CUDNN_STATUS_SUCCESS && perf[k].memory > need)
                need = perf[k].memory;
    }
    return need;
}

}  // namespace nxc

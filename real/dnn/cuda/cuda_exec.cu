/* cuda_exec.cu — nx_exec_cuda_ops: the CUDA executor of a prepared nx_graph (USE_CUDA=1).
 *
 * Load (init) lowers the graph into a list of steps, each one cuDNN convolution, one cuBLASLt
 * matrix product or one of our kernels (cuda_kernels.cu), and reserves everything for
 * g->max_batch once: weights converted to the executor's precision (KRSC for NHWC, plus the
 * layouts our own convolution kernels read), activation blocks planned by lifetime (our own
 * plan: the layout conversions and fusions below change which tensors exist), one workspace
 * shared by cuDNN and cuBLASLt, device staging and pinned host buffers for the inputs and
 * outputs. Serving never allocates.
 *
 * Layout: 4-D activations are NHWC in both precisions (fp16: tensor cores; fp32: TF32 tensor
 * cores, faster than NCHW on the H100); a tensor is converted to row-major (ONNX order) only
 * where an operator needs it. The fp32 NCHW input is converted inside the graph, and the
 * outputs back to fp32.
 *
 * Fusions beyond prepare's: a Relu/Clip after a Conv or Gemm, a residual Add (+Relu) after a
 * Conv (cuDNN conv -> +z -> +bias -> relu, or our epilogue), Gemm bias + Relu in cuBLASLt's
 * epilogue, Pad(0) + AveragePool, an Expand feeding a broadcasting binary op, the Reshape +
 * Transpose of a detection head over an NHWC tensor (a view), and Flatten/Reshape/Identity/
 * Dropout as views.
 *
 * Per batch size, on first use: each convolution is timed among cuDNN graph-API engines
 * (heuristics mode A, plain and fused variants), our depthwise and direct kernels, and for
 * small problems the legacy cudnnFindConvolutionForwardAlgorithmEx; each matrix product among
 * cuBLASLt's heuristic candidates. The steps then run once eagerly on real data and are
 * captured into one CUDA graph that later runs replay. run() copies the fp32 host inputs into
 * pinned buffers, copies them asynchronously on the executor's stream, replays the graph and
 * copies the outputs back; bench() times replays with device events.
 *
 * Every CUDA, cuDNN and cuBLAS call goes through CK(), which names the call, the file and
 * line and the device in the error message. An executor is used by one thread at a time.
 *
 * The executor is five files around one internal header (cuda_int.h: the executor's state,
 * the CK macro, the calls the files share, and the kernels' launchers): this one holds
 * init, run, bench and free (the ops table) and the error helpers; cuda_lower.cu turns the
 * graph into steps, cuda_plan.cu places activations in memory, cuda_run.cu enqueues one
 * step, cuda_tune.cu picks each convolution's and matrix product's algorithm per batch and
 * captures the batch's CUDA graph. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_int.h"

namespace nxc {

int ck_fail(nx_exec *e, int rc, const char *call, const char *file, int line,
            const char *msg)
{
    const char *base = strrchr(file, '/');
    nx_err_set(e->eb, rc, "%s failed: %s (%s:%d, GPU %d)", call, msg, base ? base + 1 : file, line,
               e->dev);
    return rc;
}

int fail(nx_exec *e, int rc, const nx_node *n, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n)
        nx_err_set(e->eb, rc, "node '%s' (%s): %s (CUDA executor)", n->name, nx_op_name(n->op), msg);
    else
        nx_err_set(e->eb, rc, "%s (CUDA executor)", msg);
    return rc;
}

/* NX_CUDA_DUMP=1: the lowered steps at load and each convolution's choice per batch, on
 * stderr (for reading what the executor made of a model). */
const char *const kind_name[] = {
    "conv", "gemm", "bn", "act", "binary", "pool", "gap", "concat", "copy", "softmax", "reduce",
    "pad",
};

static void cuda_free(nx_exec *e);

static void dump_steps(const nx_exec *e)
{
    for (int i = 0; i < e->nst; i++) {
        const step *s = &e->st[i];
        const xtensor *o = &e->xt[s->out];
        fprintf(stderr, "  step %3d %-7s %-28s", i, kind_name[s->kind],
                s->node >= 0 ? e->g->n[s->node].name : "(layout/staging)");
        for (int k = 0; k < s->nin && k < 3; k++)
            fprintf(stderr, " %s%s", e->xt[s->in[k]].name, e->xt[s->in[k]].layout ? "[nhwc]" : "");
        if (s->nin > 3)
            fprintf(stderr, " +%d", s->nin - 3);
        if (s->z >= 0)
            fprintf(stderr, " z=%s", e->xt[s->z].name);
        fprintf(stderr, " -> %s%s act %d\n", o->name, o->layout ? "[nhwc]" : "", s->act.kind);
    }
}

/* NX_CUDA_DUMP=1: device-to-device bandwidth (cudaMemcpy and our kernels) over the two
 * largest activation blocks, to read the kernels' times against. */
static void probe_bandwidth(nx_exec *e)
{
    int a = -1, b = -1;
    for (int i = 0; i < e->nblocks; i++) {
        if (a < 0 || e->block_bytes[i] > e->block_bytes[a]) {
            b = a;
            a = i;
        } else if (b < 0 || e->block_bytes[i] > e->block_bytes[b]) {
            b = i;
        }
    }
    if (a < 0 || b < 0)
        return;
    size_t bytes = e->block_bytes[b] & ~(size_t)255;
    long long n = (long long)(bytes / dt_size(e->dt));
    void *pa = e->blocks[a], *pb = e->blocks[b];
    act_p relu = {ACT_RELU, 0.0f, 0.0f};
    float t_cp = time_ms(e, 5, [&]() {
        return cudaMemcpyAsync(pa, pb, bytes, cudaMemcpyDeviceToDevice, e->stream) != cudaSuccess;
    });
    float t_act = time_ms(e, 5, [&]() { return k_act(e->stream, e->dt, pb, pa, n, relu) != cudaSuccess; });
    float t_epi = time_ms(e, 5, [&]() {
        return k_bias_act(e->stream, e->dt, pa, NULL, pb, n, 64, 1, relu) != cudaSuccess;
    });
    fprintf(stderr, "cuda: bandwidth over %.1f MB: cudaMemcpy %.0f GB/s, act (r+w) %.0f GB/s, "
            "residual epilogue (2r+w) %.0f GB/s\n", bytes / 1048576.0, 2 * bytes / t_cp / 1e6,
            2 * bytes / t_act / 1e6, 3 * bytes / t_epi / 1e6);
}

static int cuda_init(nx_exec **out, const nx_graph *g, nx_precision prec, int device,
                     nx_errbuf *eb)
{
    *out = NULL;
    if (!g || g->max_batch < 1 || g->ninputs < 1 || g->noutputs < 1) {
        nx_err_set(eb, NX_ERR_INVAL, "CUDA executor: the graph is not prepared (max_batch %d)",
                   g ? g->max_batch : 0);
        return NX_ERR_INVAL;
    }
    nx_exec *e = (nx_exec *)nx_calloc(1, sizeof *e);
    e->eb = eb;
    e->dev = device;
    e->prec = prec;
    e->dt = prec == NX_PREC_FP16 ? DT_F16 : DT_F32;
    /* NHWC for both precisions: with TF32 it measured 2-3x faster than NCHW at large batch
     * on the H100 (results/dnn-h100/); NX_CUDA_FP32_NCHW=1 keeps fp32 in NCHW */
    const char *lay = getenv("NX_CUDA_FP32_NCHW");
    e->conv_lay = e->dt == DT_F32 && lay && *lay == '1' ? LAY_ROW : LAY_NHWC;
    e->g = g;
    e->max_batch = g->max_batch;
    const char *cm = getenv("NX_CUDA_CONV");
    e->conv_mode = cm && !strcmp(cm, "legacy") ? CONV_LEGACY : cm && !strcmp(cm, "both") ? CONV_BOTH
                 : CONV_GRAPH;
    const char *nc = getenv("NX_CUDA_CANDIDATES");
    e->candidates = nc && atoi(nc) > 0 ? atoi(nc) : 8;
    const char *rtc = getenv("NX_CUDA_RTC");
    e->allow_rtc = rtc && *rtc == '1';
    const char *dump = getenv("NX_CUDA_DUMP");
    e->dump = dump && *dump == '1';
    int rc = 0;
    int ndev = 0;
    cudaError_t ce = cudaGetDeviceCount(&ndev);
    if (ce != cudaSuccess || device < 0 || device >= ndev) {
        nx_err_set(eb, NX_ERR_NOTSUP, "CUDA executor: no GPU %d (%d visible%s%s)", device,
                   ce == cudaSuccess ? ndev : 0, ce == cudaSuccess ? "" : ": ",
                   ce == cudaSuccess ? "" : cudaGetErrorString(ce));
        cudaGetLastError();
        free(e);
        return NX_ERR_NOTSUP;
    }
#define TRY(x) do { rc = (x); if (rc) goto fail_; } while (0)
#define TRYCK(call) do { auto st_ = (call); if (const char *m_ = st_msg(st_)) { \
        rc = ck_fail(e, st_rc(st_), #call, __FILE__, __LINE__, m_); goto fail_; } } while (0)
    TRYCK(cudaSetDevice(device));
    {
        cudaDeviceProp prop;
        TRYCK(cudaGetDeviceProperties(&prop, device));
        snprintf(e->dev_name, sizeof e->dev_name, "%s", prop.name);
    }
    TRYCK(cudaStreamCreateWithFlags(&e->stream, cudaStreamNonBlocking));
    TRYCK(cudaEventCreate(&e->ev0));
    TRYCK(cudaEventCreate(&e->ev1));
    TRYCK(cudnnCreate(&e->dnn));
    TRYCK(cudnnSetStream(e->dnn, e->stream));
    TRYCK(cublasLtCreate(&e->lt));
    e->graphs = (cudaGraphExec_t *)nx_calloc((size_t)e->max_batch + 1, sizeof(cudaGraphExec_t));
    TRY(lower(e));
    {
        size_t need = workspace_need(e);
        size_t cap = (size_t)1 << 30;
        const char *wmb = getenv("NX_CUDA_WORKSPACE_MB");
        if (wmb && *wmb) {
            char *end;
            long v = strtol(wmb, &end, 10);
            if (*end == 0 && v > 0 && v < (1L << 20))
                cap = (size_t)v << 20;
        }
        e->ws_size = need < cap ? need : cap;
        TRY(dev_alloc(e, &e->ws, e->ws_size, "the cuDNN/cuBLASLt workspace"));
    }
    /* staging: device buffers (fixed storages) and pinned host buffers */
    e->h_in = (float **)nx_calloc((size_t)g->ninputs + 1, sizeof(float *));
    e->h_out = (float **)nx_calloc((size_t)g->noutputs + 1, sizeof(float *));
    for (int i = 0; i < g->ninputs; i++) {
        storage *s = &e->sto[e->xt[e->in_stage[i]].storage];
        TRY(dev_alloc(e, &s->ptr, s->bytes, "input staging"));
        TRYCK(k_fill(e->stream, DT_F32, s->ptr, (long long)(s->bytes / 4), 99u + (unsigned)i));
        TRYCK(cudaHostAlloc((void **)&e->h_in[i], s->bytes, cudaHostAllocDefault));
    }
    for (int i = 0; i < g->noutputs; i++) {
        storage *s = &e->sto[e->xt[e->out_stage[i]].storage];
        TRY(dev_alloc(e, &s->ptr, s->bytes, "output staging"));
        TRYCK(cudaHostAlloc((void **)&e->h_out[i], s->bytes, cudaHostAllocDefault));
    }
    TRY(plan(e));
    TRYCK(cudaStreamSynchronize(e->stream));
    {
        if (e->dump) {
            fprintf(stderr, "cuda: %s %s on %s: %d steps, %d blocks, workspace %zu MB, %.1f MB\n",
                    g->name ? g->name : "?", prec == NX_PREC_FP16 ? "fp16" : "fp32", e->dev_name,
                    e->nst, e->nblocks, e->ws_size >> 20, (double)e->bytes / 1048576.0);
            dump_steps(e);
            probe_bandwidth(e);
        }
    }
    *out = e;
    return 0;
fail_:
    cuda_free(e);
    return rc ? rc : NX_ERR_IO;
#undef TRY
#undef TRYCK
}

static int cuda_run(nx_exec *e, int batch, const float *const *in, float *const *out,
                    nx_errbuf *eb)
{
    e->eb = eb;
    if (batch < 1 || batch > e->max_batch)
        return fail(e, NX_ERR_INVAL, NULL, "batch %d is outside 1..%d", batch, e->max_batch);
    CK(e, cudaSetDevice(e->dev));
    int rc = ensure_batch(e, batch);
    if (rc)
        return rc;
    const nx_graph *g = e->g;
    for (int i = 0; i < g->ninputs; i++) {
        const xtensor *t = &e->xt[e->in_stage[i]];
        size_t bytes = (size_t)elems_at(t, batch) * 4;
        memcpy(e->h_in[i], in[i], bytes);
        CK(e, cudaMemcpyAsync(e->sto[t->storage].ptr, e->h_in[i], bytes, cudaMemcpyHostToDevice,
                              e->stream));
    }
    CK(e, cudaGraphLaunch(e->graphs[batch], e->stream));
    for (int i = 0; i < g->noutputs; i++) {
        const xtensor *t = &e->xt[e->out_stage[i]];
        size_t bytes = (size_t)elems_at(t, batch) * 4;
        CK(e, cudaMemcpyAsync(e->h_out[i], e->sto[t->storage].ptr, bytes, cudaMemcpyDeviceToHost,
                              e->stream));
    }
    CK(e, cudaStreamSynchronize(e->stream));
    for (int i = 0; i < g->noutputs; i++) {
        const xtensor *t = &e->xt[e->out_stage[i]];
        memcpy(out[i], e->h_out[i], (size_t)elems_at(t, batch) * 4);
    }
    return 0;
}

static int cuda_bench(nx_exec *e, int batch, int warmup, int reps, double *us, nx_errbuf *eb)
{
    e->eb = eb;
    if (batch < 1 || batch > e->max_batch)
        return fail(e, NX_ERR_INVAL, NULL, "batch %d is outside 1..%d", batch, e->max_batch);
    CK(e, cudaSetDevice(e->dev));
    int rc = ensure_batch(e, batch);
    if (rc)
        return rc;
    for (int r = 0; r < warmup; r++)
        CK(e, cudaGraphLaunch(e->graphs[batch], e->stream));
    CK(e, cudaStreamSynchronize(e->stream));
    for (int r = 0; r < reps; r++) {
        CK(e, cudaEventRecord(e->ev0, e->stream));
        CK(e, cudaGraphLaunch(e->graphs[batch], e->stream));
        CK(e, cudaEventRecord(e->ev1, e->stream));
        CK(e, cudaEventSynchronize(e->ev1));
        float ms = 0.0f;
        CK(e, cudaEventElapsedTime(&ms, e->ev0, e->ev1));
        us[r] = ms * 1000.0;
    }
    return 0;
}

static size_t cuda_memory(const nx_exec *e) { return e ? e->bytes : 0; }

static const char *cuda_device(const nx_exec *e) { return e ? e->dev_name : "GPU"; }

static void cuda_free(nx_exec *e)
{
    if (!e)
        return;
    cudaSetDevice(e->dev);
    if (e->stream)
        cudaStreamSynchronize(e->stream);
    if (e->graphs)
        for (int b = 0; b <= e->max_batch; b++)
            if (e->graphs[b])
                cudaGraphExecDestroy(e->graphs[b]);
    free(e->graphs);
    for (int i = 0; i < e->nst; i++) {
        conv_t *cv = e->st[i].conv;
        if (cv) {
            if (cv->xd) cudnnDestroyTensorDescriptor(cv->xd);
            if (cv->yd) cudnnDestroyTensorDescriptor(cv->yd);
            if (cv->bd) cudnnDestroyTensorDescriptor(cv->bd);
            if (cv->wd) cudnnDestroyFilterDescriptor(cv->wd);
            if (cv->cd) cudnnDestroyConvolutionDescriptor(cv->cd);
            if (cv->ad) cudnnDestroyActivationDescriptor(cv->ad);
            free(cv->algo);
            free(cv->fused);
            free(cv->math);
            free(cv->gvar);
            free(cv->plan);
            free(cv);
        }
        gemm_t *gm = e->st[i].gemm;
        if (gm) {
            if (gm->md) cublasLtMatmulDescDestroy(gm->md);
            if (gm->la) cublasLtMatrixLayoutDestroy(gm->la);
            if (gm->lb) cublasLtMatrixLayoutDestroy(gm->lb);
            if (gm->lc) cublasLtMatrixLayoutDestroy(gm->lc);
            free(gm->algo);
            free(gm->tuned);
            free(gm);
        }
    }
    free(e->st);
    for (int i = e->nheld - 1; i >= 0; i--)
        cudnnBackendDestroyDescriptor(e->held[i]);
    free(e->held);
    for (int i = 0; i < e->nconsts; i++)
        cudaFree(e->consts[i]);
    free(e->consts);
    for (int b = 0; b < e->nblocks; b++)
        if (e->blocks && e->blocks[b])
            cudaFree(e->blocks[b]);
    free(e->blocks);
    free(e->block_bytes);
    for (int k = 0; k < e->nsto; k++)
        if (e->sto[k].fixed && e->sto[k].ptr)
            cudaFree(e->sto[k].ptr);
    free(e->sto);
    if (e->h_in)
        for (int i = 0; i < e->g->ninputs; i++)
            if (e->h_in[i])
                cudaFreeHost(e->h_in[i]);
    if (e->h_out)
        for (int i = 0; i < e->g->noutputs; i++)
            if (e->h_out[i])
                cudaFreeHost(e->h_out[i]);
    free(e->h_in);
    free(e->h_out);
    if (e->ws)
        cudaFree(e->ws);
    if (e->lt)
        cublasLtDestroy(e->lt);
    if (e->dnn)
        cudnnDestroy(e->dnn);
    if (e->ev0)
        cudaEventDestroy(e->ev0);
    if (e->ev1)
        cudaEventDestroy(e->ev1);
    if (e->stream)
        cudaStreamDestroy(e->stream);
    free(e->xt);
    free(e->uses);
    free(e->consumer);
    free(e->pad_src);
    free(e->expand_src);
    free(e->absorbed);
    free(e->in_stage);
    free(e->out_stage);
    free(e);
}

}  // namespace nxc

using namespace nxc;

extern "C" const nx_exec_ops nx_exec_cuda_ops = {
    /* .name = */ "cuda",
    /* .init = */ cuda_init,
    /* .run = */ cuda_run,
    /* .memory = */ cuda_memory,
    /* .free = */ cuda_free,
    /* .bench = */ cuda_bench,
    /* .device = */ cuda_device,
};

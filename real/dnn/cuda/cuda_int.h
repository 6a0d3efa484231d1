/* cuda_int.h — internal to real/dnn/cuda/, in two parts. First, the kernels that the CUDA
 * executor launches besides cuDNN and cuBLASLt (copies and layout conversion, epilogues,
 * element-wise, pooling, reductions, depthwise and small direct convolutions; cuda_kernels.cu).
 * Second, the executor's shared state (its tensors, steps, storages and struct nx_exec), the
 * one check macro for CUDA, cuDNN and cuBLAS calls (CK), and the calls its five files make of
 * each other: cuda_exec.cu (the ops table), cuda_lower.cu, cuda_plan.cu, cuda_run.cu and
 * cuda_tune.cu. Only those files call CUDA libraries.
 *
 * This header is CUDA C++ and is included only by the .cu files of this folder; nothing
 * outside real/dnn/cuda/ sees a CUDA type. Every launcher enqueues on the given stream (so it
 * can be captured into a CUDA graph), never synchronises and never allocates, and returns the
 * launch's cudaError_t. Element counts must stay below 2^31 (the executor checks at load).
 *
 * Tensors are described by views: logical dims (the ONNX order, NCHW for 4-D) and physical
 * strides in elements, so one kernel serves NCHW and NHWC storage, transposes, broadcasting
 * and concatenation slices. */
#ifndef NX_DNN_CUDA_INT_H
#define NX_DNN_CUDA_INT_H

extern "C" {
#include "graph.h"
}

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stdint.h>

namespace nxc {

enum dtype_t { DT_F32 = 0, DT_F16 = 1 };
enum act_kind { ACT_NONE = 0, ACT_RELU = 1, ACT_CLIP = 2, ACT_SIGMOID = 3 };
enum bin_op { BIN_ADD = 0, BIN_SUB = 1, BIN_MUL = 2, BIN_DIV = 3 };
enum red_op { RED_L2 = 0, RED_MEAN = 1 };

#define NXC_MAX_DIMS 8

struct act_p {
    int kind;
    float lo, hi;
};

/* A strided view: n logical dims d[], element strides s[] (0 = broadcast). */
struct view_t {
    int n;
    int d[NXC_MAX_DIMS];
    long long s[NXC_MAX_DIMS];
};

struct pool_p {
    int N, C, H, W, OH, OW;
    int kh, kw, sh, sw, dh, dw;
    int pt, pl, pb, pr;           /* pads: top, left, bottom, right */
    int is_max, count_include_pad;
    int nhwc;
};

static inline size_t dt_size(dtype_t t) { return t == DT_F16 ? 2 : 4; }
long long view_elems(const view_t &v);

/* dst = convert(src) over dst's logical dims (src has the same logical dims). */
cudaError_t k_copy(cudaStream_t s, dtype_t ts, const void *src, const view_t &sv, dtype_t td,
                   void *dst, const view_t &dv);
/* rows x cols block copy between row-major matrices with leading dims (elements). */
cudaError_t k_rows(cudaStream_t s, dtype_t t, const void *src, long long sld, void *dst,
                   long long dld, long long rows, long long cols);
/* y = act(y + bias[c] + z) with c = (i / inner) % C; bias and z may be NULL. */
cudaError_t k_bias_act(cudaStream_t s, dtype_t t, void *y, const void *bias, const void *z,
                       long long n, int C, long long inner, act_p a);
/* y = act(x * scale[c] + shift[c]) (scale/shift fp32), c as above. */
cudaError_t k_scale_shift(cudaStream_t s, dtype_t t, const void *x, void *y, const float *scale,
                          const float *shift, long long n, int C, long long inner, act_p a);
/* y = act(x) */
cudaError_t k_act(cudaStream_t s, dtype_t t, const void *x, void *y, long long n, act_p a);
/* y = act(a op b), same shape and layout */
cudaError_t k_bin_same(cudaStream_t s, dtype_t t, int op, const void *a, const void *b, void *y,
                       long long n, act_p act);
/* y = act(a op b) over y's logical dims; av/bv carry stride 0 on broadcast dims */
cudaError_t k_bin_bcast(cudaStream_t s, dtype_t t, int op, const void *a, const view_t &av,
                        const void *b, const view_t &bv, void *y, const view_t &yv, act_p act);
cudaError_t k_pool(cudaStream_t s, dtype_t t, const void *x, void *y, const pool_p &p);
/* mean over HW of an N x C x HW tensor (nhwc: stored N x HW x C); y is N x C */
cudaError_t k_gap(cudaStream_t s, dtype_t t, int nhwc, const void *x, void *y, int N, int C,
                  int HW);
/* softmax over n elements at stride `inner`, for outer x inner rows (contiguous tensor) */
cudaError_t k_softmax(cudaStream_t s, dtype_t t, const void *x, void *y, long long outer, int n,
                      long long inner);
/* y[o] = reduce over r of x[o, r]: ov maps an output index to x's offset (over y's logical
 * dims, reduced dims of size 1), rv spans the reduced dims with x's strides. */
cudaError_t k_reduce(cudaStream_t s, dtype_t t, int op, const void *x, const view_t &ov,
                     const view_t &rv, void *y, const view_t &yv);
/* constant pad of the last two logical dims: y[.., h, w] = x[.., h - top, w - left] or value */
cudaError_t k_pad(cudaStream_t s, dtype_t t, const void *x, const view_t &xv, void *y,
                  const view_t &yv, int top, int left, float value);
/* depthwise convolution, NHWC: y[n,oh,ow,c] = act(sum_{r,s} x[n,ih,iw,c] * w[r,s,c] + bias[c]
 * + z[n,oh,ow,c]); w in [R][S][C]; bias and z may be NULL */
struct dw_p {
    int N, C, H, W, OH, OW, R, S, sh, sw, dh, dw, pt, pl;
};
cudaError_t k_dwconv(cudaStream_t s, dtype_t t, const void *x, const void *w, const void *bias,
                     const void *z, void *y, const dw_p &p, act_p a);
/* direct convolution for small layers, NHWC in and out, weights KRSC (groups allowed): one
 * warp per output element, the lanes splitting the R*S*Cg reduction */
struct dconv_p {
    int N, C, H, W, K, OH, OW, R, S, Cg, Kg, sh, sw, dh, dw, pt, pl;
};
cudaError_t k_dconv(cudaStream_t s, dtype_t t, const void *x, const void *w, const void *bias,
                    const void *z, void *y, const dconv_p &p, act_p a);
/* direct convolution for small layers with K <= 128 and one group: one warp per 4 output
 * pixels, each lane 1..4 output channels; weights transposed to [R*S*C][K] (wt) */
cudaError_t k_dconv_px(cudaStream_t s, dtype_t t, const void *x, const void *wt,
                       const void *bias, const void *z, void *y, const dconv_p &p, act_p a);
/* direct convolution, K <= 128, one group, tiled through shared memory: a block computes 32
 * output pixels x all K channels, the reduction in chunks of 32 (weights wt as above) */
cudaError_t k_dconv_tile(cudaStream_t s, dtype_t t, const void *x, const void *wt,
                         const void *bias, const void *z, void *y, const dconv_p &p, act_p a);
/* deterministic pseudo-random fill in [-1, 1) (autotuning never times zeros) */
cudaError_t k_fill(cudaStream_t s, dtype_t t, void *p, long long n, unsigned seed);

}  // namespace nxc

/* ================================================================================================
 * The executor: what cuda_exec.cu, cuda_lower.cu, cuda_plan.cu, cuda_run.cu and cuda_tune.cu
 * share. Everything below is host code.
 * ============================================================================================== */

namespace nxc {

/* ---- the one check macro --------------------------------------------------------------- */

static inline const char *st_msg(cudaError_t s)
{
    return s == cudaSuccess ? NULL : cudaGetErrorString(s);
}
static inline const char *st_msg(cudnnStatus_t s)
{
    return s == CUDNN_STATUS_SUCCESS ? NULL : cudnnGetErrorString(s);
}
static inline const char *st_msg(cublasStatus_t s)
{
    return s == CUBLAS_STATUS_SUCCESS ? NULL : cublasLtGetStatusString(s);
}
static inline int st_rc(cudaError_t s)
{
    if (s == cudaErrorMemoryAllocation)
        return NX_ERR_NOMEM;
    if (s == cudaErrorNoDevice || s == cudaErrorInsufficientDriver || s == cudaErrorInvalidDevice)
        return NX_ERR_NOTSUP;
    return NX_ERR_IO;
}
static inline int st_rc(cudnnStatus_t s)
{
    if (s == CUDNN_STATUS_ALLOC_FAILED)
        return NX_ERR_NOMEM;
    if (s == CUDNN_STATUS_NOT_SUPPORTED)
        return NX_ERR_NOTSUP;
    return NX_ERR_IO;
}
static inline int st_rc(cublasStatus_t s)
{
    if (s == CUBLAS_STATUS_ALLOC_FAILED)
        return NX_ERR_NOMEM;
    if (s == CUBLAS_STATUS_NOT_SUPPORTED)
        return NX_ERR_NOTSUP;
    return NX_ERR_IO;
}

int ck_fail(nx_exec *e, int rc, const char *call, const char *file, int line, const char *msg);

/* CK(e, call): on failure set e->eb to "call failed: why (file:line, GPU n)" and return. */
#define CK(e, call)                                                                        \
    do {                                                                                   \
        auto st_ = (call);                                                                 \
        if (const char *m_ = st_msg(st_))                                                  \
            return ck_fail((e), st_rc(st_), #call, __FILE__, __LINE__, m_);                \
    } while (0)

/* ---- executor state ---------------------------------------------------------------------- */

enum { LAY_ROW = 0, LAY_NHWC = 1 };

/* The executor's view of a tensor: the graph's tensors first, then our own (layout twins,
 * padded inputs, input/output staging). */
struct xtensor {
    const char *name;
    int nd;
    int64_t d[NX_DNN_MAX_DIMS];  /* dims[0] = 1 stands for the batch for activations */
    bool act;                    /* an activation (scales with the batch) */
    dtype_t dt;
    int layout;                  /* LAY_NHWC only for 4-D tensors */
    int storage;                 /* -1: constant or not materialised */
    void *cptr;                  /* constants: device copy in dt (row-major), lazily */
    bool avail;                  /* produced by an earlier step (or a graph input) */
    int twin[2];                 /* the same tensor in the other layout, or -1 */
};

struct storage {
    size_t bytes;
    int first, last;
    void *ptr;
    bool fixed;                  /* staging buffer, not planned */
};

enum step_kind {
    S_CONV, S_GEMM, S_BN, S_ACT, S_BIN, S_POOL, S_GAP, S_CONCAT, S_COPY, S_SOFTMAX, S_REDUCE,
    S_PAD,
};

struct conv_t {
    cudnnTensorDescriptor_t xd, yd, bd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    cudnnActivationDescriptor_t ad;
    bool fusable;                /* act expressible as a cuDNN activation */
    bool has_bias;
    void *w, *bias;
    int C, H, W, K, OH, OW, Cg, R, S, group;
    int stride[2], dil[2], pad[4];
    /* per batch: algo >= 0 legacy cuDNN algorithm (fused: cudnnConvolutionBiasActivation-
     * Forward, math: its math type); ALGO_GRAPH: plan[b] of the graph API (gvar[b]: 0 conv
     * + our epilogue, 1 conv with the epilogue fused by cuDNN); ALGO_NONE: not tuned */
    int *algo;
    unsigned char *fused, *math, *gvar;
    cudnnBackendDescriptor_t *plan;
    cudnnBackendDescriptor_t vp[2];   /* variant packs: plain, fused */
    void *w_dw;                  /* depthwise: weights as [R][S][C] for our kernel, or NULL */
    void *w_t;                   /* K <= 128, one group: weights as [R][S][C][K], or NULL */
};
/* ALGO_DW: our depthwise kernel (k_dwconv); ALGO_DIRECT: our direct kernel for small layers
 * (k_dconv); both with bias, residual and activation */
enum { ALGO_NONE = -1, ALGO_GRAPH = -2, ALGO_DW = -3, ALGO_DIRECT = -4, ALGO_DIRECT_PX = -5,
       ALGO_DIRECT_TILE = -6 };
/* layers up to this many multiply-adds also time the direct kernel */
#define DIRECT_MAX_MACS (1LL << 26)

struct gemm_t {
    cublasLtMatmulDesc_t md;
    cublasLtMatrixLayout_t la, lb, lc;
    void *w, *bias;
    int64_t rows1, K, N;         /* rows per sample, inner, outputs */
    float alpha;
    bool lt_act;                 /* relu in the epilogue */
    cublasLtMatmulAlgo_t *algo;  /* per batch */
    unsigned char *tuned;
};

enum { CONV_GRAPH = 0, CONV_LEGACY = 1, CONV_BOTH = 2 };

struct step {
    int kind;
    int node;                    /* graph node, for messages; -1 for our own */
    int in[NX_DNN_MAX_IO], nin;
    int out;
    int z;                       /* conv residual input or -1 */
    act_p act;
    int op;                      /* bin/reduce op; pool: max */
    int axis;
    int perm[NX_DNN_MAX_DIMS];
    int nperm;                   /* copy: a transpose when > 0 */
    int axes[NX_DNN_MAX_DIMS], naxes;
    pool_p pool;
    int pads[4];
    float value;
    float *scale, *shift;        /* BN */
    conv_t *conv;
    gemm_t *gemm;
};

}  // namespace nxc

/* The executor (the C API's opaque nx_exec, graph.h). */
struct nx_exec {
    nx_errbuf *eb;
    int dev;
    char dev_name[256];
    nx_precision prec;
    nxc::dtype_t dt;
    int conv_lay;
    const nx_graph *g;
    int max_batch;

    cudaStream_t stream;
    cudaEvent_t ev0, ev1;
    cudnnHandle_t dnn;
    cublasLtHandle_t lt;

    nxc::xtensor *xt;
    int nxt, capxt;
    nxc::step *st;
    int nst, capst;
    nxc::storage *sto;
    int nsto, capsto;

    int *uses, *consumer;        /* per graph tensor: live readers (+1 if graph output), last */
    bool *absorbed;              /* per graph node: fused into another step */
    int *pad_src;                /* per graph tensor: Pad output -> its node, for pool fusion */
    int *expand_src;             /* per graph tensor: an Expand folded into the broadcasting
                                  * binary op that reads it -> the Expand's input */

    void *ws;
    size_t ws_size;
    void **blocks;
    size_t *block_bytes;
    int nblocks;
    void **consts;
    int nconsts, capconsts;
    size_t bytes;                /* device memory held */

    cudnnBackendDescriptor_t *held;  /* graph-API descriptors kept until free */
    int nheld, capheld;
    int conv_mode;               /* CONV_GRAPH, CONV_LEGACY or CONV_BOTH (NX_CUDA_CONV) */
    int candidates;              /* engine configurations timed per variant */
    bool allow_rtc;              /* runtime-compiled cuDNN engines (NX_CUDA_RTC=1) */
    bool dump;                   /* NX_CUDA_DUMP=1 */

    int *in_stage, *out_stage;   /* xtensor indices of the staging tensors */
    float **h_in, **h_out;       /* pinned */
    cudaGraphExec_t *graphs;     /* per batch */
};

namespace nxc {

/* cuda_exec.cu */
/* "node 'n' (Op): what (CUDA executor)" into e->eb (n may be NULL); returns rc. */
int fail(nx_exec *e, int rc, const nx_node *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Step kinds by name (NX_CUDA_DUMP=1). */
extern const char *const kind_name[];

/* Timing and quiet calls, for tuning (and NX_CUDA_DUMP's bandwidth probe). */
/* Mean milliseconds of `reps` calls of fn after one warm-up (one call when the warm-up took
 * over 2 ms: large problems vary little); <0 if a call failed. */
template <typename F> inline float time_ms(nx_exec *e, int reps, F fn)
{
    float ms = 0.0f;
    cudaEventRecord(e->ev0, e->stream);
    if (fn())
        return -1.0f;
    cudaEventRecord(e->ev1, e->stream);
    if (cudaEventSynchronize(e->ev1) != cudaSuccess)
        return -1.0f;
    cudaEventElapsedTime(&ms, e->ev0, e->ev1);
    if (ms > 2.0f)
        reps = 1;
    else if (ms < 0.05f)
        reps = 3 * reps;   /* tiny: more repetitions against timer noise */
    cudaEventRecord(e->ev0, e->stream);
    for (int r = 0; r < reps; r++)
        if (fn())
            return -1.0f;
    cudaEventRecord(e->ev1, e->stream);
    if (cudaEventSynchronize(e->ev1) != cudaSuccess)
        return -1.0f;
    cudaEventElapsedTime(&ms, e->ev0, e->ev1);
    return ms / (float)reps;
}

/* fn() with errors kept out of the caller's buffer (candidates that fail are skipped). */
template <typename F> inline int quietly(nx_exec *e, F fn)
{
    nx_errbuf quiet;
    nx_err_clear(&quiet);
    nx_errbuf *keep = e->eb;
    e->eb = &quiet;
    int r = fn();
    e->eb = keep;
    return r;
}

/* cuda_lower.cu */
/* The graph as steps (layouts, fusions, weights uploaded); 0 or a negative nx_err. */
int lower(nx_exec *e);
/* Elements of t at a batch size (activations scale with it). */
long long elems_at(const xtensor *t, int batch);
/* A view of t's storage at a batch size: logical dims, physical strides. */
view_t view_of(const xtensor *t, int batch);
/* p grown (realloc) to hold `need` elements of `size` bytes; *cap updated. */
void *grow(void *p, int *cap, int need, size_t size);
/* cudaMalloc counted in e->bytes, with "what" in the error. */
int dev_alloc(nx_exec *e, void **p, size_t bytes, const char *what);

/* cuda_plan.cu */
/* A new storage of `bytes` (fixed: a staging buffer outside the plan); its index. */
int make_storage(nx_exec *e, size_t bytes, bool fixed);
/* Storages for every activation by lifetime, device blocks for max_batch. */
int plan(nx_exec *e);
/* Tensor t's device address (constants: their device copy). */
void *ptr_of(nx_exec *e, int t);
/* Bytes of the workspace cuDNN and cuBLASLt share: the most any convolution's cuDNN
 * heuristic algorithms ask for at max_batch, at least 32 MiB. */
size_t workspace_need(nx_exec *e);

/* cuda_run.cu; the conv and gemm helpers are tuning's too */
bool conv_has_epilogue(const step *s);
bool conv_fusable_graph(const step *s);
dw_p dw_params(const conv_t *cv, int b);
dconv_p dconv_params(const conv_t *cv, int b, int group);
int conv_set_batch(nx_exec *e, conv_t *cv, int b);
int conv_call(nx_exec *e, step *s, int b, int algo, int math, bool fused);
int gemm_set_batch(nx_exec *e, gemm_t *gm, int b);
int gemm_call(nx_exec *e, step *s, const cublasLtMatmulAlgo_t *algo);
/* Enqueue step s at batch b with its tuned algorithm. */
int run_step(nx_exec *e, step *s, int b);

/* cuda_tune.cu */
/* Tune batch b (first time), run it eagerly, capture its CUDA graph. */
int ensure_batch(nx_exec *e, int b);

}  // namespace nxc

#endif

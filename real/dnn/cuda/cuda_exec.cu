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
 * real/dnn/cuda/README.md has the measurements behind these choices. */
extern "C" {
#include "graph.h"
}

#include <cublasLt.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_int.h"

using namespace nxc;

/* ---- the one check macro --------------------------------------------------------------- */

static const char *st_msg(cudaError_t s) { return s == cudaSuccess ? NULL : cudaGetErrorString(s); }
static const char *st_msg(cudnnStatus_t s)
{
    return s == CUDNN_STATUS_SUCCESS ? NULL : cudnnGetErrorString(s);
}
static const char *st_msg(cublasStatus_t s)
{
    return s == CUBLAS_STATUS_SUCCESS ? NULL : cublasLtGetStatusString(s);
}
static int st_rc(cudaError_t s)
{
    if (s == cudaErrorMemoryAllocation)
        return NX_ERR_NOMEM;
    if (s == cudaErrorNoDevice || s == cudaErrorInsufficientDriver || s == cudaErrorInvalidDevice)
        return NX_ERR_NOTSUP;
    return NX_ERR_IO;
}
static int st_rc(cudnnStatus_t s)
{
    if (s == CUDNN_STATUS_ALLOC_FAILED)
        return NX_ERR_NOMEM;
    if (s == CUDNN_STATUS_NOT_SUPPORTED)
        return NX_ERR_NOTSUP;
    return NX_ERR_IO;
}
static int st_rc(cublasStatus_t s)
{
    if (s == CUBLAS_STATUS_ALLOC_FAILED)
        return NX_ERR_NOMEM;
    if (s == CUBLAS_STATUS_NOT_SUPPORTED)
        return NX_ERR_NOTSUP;
    return NX_ERR_IO;
}

struct nx_exec;
static int ck_fail(nx_exec *e, int rc, const char *call, const char *file, int line,
                   const char *msg);

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

struct nx_exec {
    nx_errbuf *eb;
    int dev;
    char dev_name[256];
    nx_precision prec;
    dtype_t dt;
    int conv_lay;
    const nx_graph *g;
    int max_batch;

    cudaStream_t stream;
    cudaEvent_t ev0, ev1;
    cudnnHandle_t dnn;
    cublasLtHandle_t lt;

    xtensor *xt;
    int nxt, capxt;
    step *st;
    int nst, capst;
    storage *sto;
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

static int ck_fail(nx_exec *e, int rc, const char *call, const char *file, int line,
                   const char *msg)
{
    const char *base = strrchr(file, '/');
    nx_err_set(e->eb, rc, "%s failed: %s (%s:%d, GPU %d)", call, msg, base ? base + 1 : file, line,
               e->dev);
    return rc;
}

static int fail(nx_exec *e, int rc, const nx_node *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(nx_exec *e, int rc, const nx_node *n, const char *fmt, ...)
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

/* ---- small helpers ----------------------------------------------------------------------- */

static long long elems_at(const xtensor *t, int batch)
{
    long long n = t->act ? batch : (t->nd ? t->d[0] : 1);
    for (int i = 1; i < t->nd; i++)
        n *= t->d[i];
    return n;
}

static bool neutral(const xtensor *t)
{
    return t->nd != 4 || (t->d[2] == 1 && t->d[3] == 1) || t->d[1] == 1;
}

/* Does t, stored with its own tag, read the same as layout `lay`? */
static bool fits(const xtensor *t, int lay) { return t->layout == lay || neutral(t); }

static view_t view_of(const xtensor *t, int batch)
{
    view_t v;
    memset(&v, 0, sizeof v);
    v.n = t->nd;
    for (int i = 0; i < t->nd; i++)
        v.d[i] = (int)t->d[i];
    if (t->act && t->nd)
        v.d[0] = batch;
    if (t->layout == LAY_NHWC && t->nd == 4) {
        long long C = v.d[1], H = v.d[2], W = v.d[3];
        v.s[0] = H * W * C;
        v.s[1] = 1;
        v.s[2] = W * C;
        v.s[3] = C;
    } else {
        long long s = 1;
        for (int i = t->nd - 1; i >= 0; i--) {
            v.s[i] = s;
            s *= v.d[i];
        }
    }
    return v;
}

static void *grow(void *p, int *cap, int need, size_t size)
{
    if (need <= *cap)
        return p;
    int c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *q = nx_realloc(p, (size_t)c * size);
    memset((char *)q + (size_t)*cap * size, 0, (size_t)(c - *cap) * size);
    *cap = c;
    return q;
}

static int add_xt(nx_exec *e, const xtensor *proto)
{
    e->xt = (xtensor *)grow(e->xt, &e->capxt, e->nxt + 1, sizeof *e->xt);
    xtensor *t = &e->xt[e->nxt];
    *t = *proto;
    t->storage = -1;
    t->cptr = NULL;
    t->twin[0] = t->twin[1] = -1;
    return e->nxt++;
}

static step *add_step(nx_exec *e, int kind, int node)
{
    e->st = (step *)grow(e->st, &e->capst, e->nst + 1, sizeof *e->st);
    step *s = &e->st[e->nst++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->node = node;
    s->z = -1;
    s->out = -1;
    return s;
}

static int dev_alloc(nx_exec *e, void **p, size_t bytes, const char *what)
{
    cudaError_t r = cudaMalloc(p, bytes ? bytes : 1);
    if (r != cudaSuccess) {
        *p = NULL;
        cudaGetLastError();
        nx_err_set(e->eb, r == cudaErrorMemoryAllocation ? NX_ERR_NOMEM : NX_ERR_IO,
                   "cudaMalloc of %zu bytes for %s failed: %s (GPU %d; lower the maximum batch)",
                   bytes, what, cudaGetErrorString(r), e->dev);
        return r == cudaErrorMemoryAllocation ? NX_ERR_NOMEM : NX_ERR_IO;
    }
    e->bytes += bytes;
    return 0;
}

/* Upload host fp32 data as dt (or as fp32 when force32) into a new constant allocation. */
static int upload(nx_exec *e, const float *h, size_t n, bool force32, void **out)
{
    e->consts = (void **)grow(e->consts, &e->capconsts, e->nconsts + 1, sizeof *e->consts);
    size_t bytes = n * (force32 || e->dt == DT_F32 ? 4 : 2);
    void *d;
    int rc = dev_alloc(e, &d, bytes, "weights");
    if (rc)
        return rc;
    e->consts[e->nconsts++] = d;
    if (force32 || e->dt == DT_F32) {
        CK(e, cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    } else {
        __half *tmp = (__half *)nx_malloc(bytes);
        for (size_t i = 0; i < n; i++)
            tmp[i] = __float2half(h[i]);
        cudaError_t r = cudaMemcpy(d, tmp, bytes, cudaMemcpyHostToDevice);
        free(tmp);
        CK(e, r);
    }
    *out = d;
    return 0;
}

/* Device copy of a graph constant (row-major, in dt), made once. */
static int const_ptr(nx_exec *e, int ti, void **out)
{
    xtensor *t = &e->xt[ti];
    if (!t->cptr) {
        const nx_tensor *gt = &e->g->t[ti];
        if (gt->dtype != NX_F32 || !gt->data)
            return fail(e, NX_ERR_NOTSUP, NULL, "constant '%s' is not fp32 data", gt->name);
        int rc = upload(e, (const float *)gt->data, nx_tensor_elems(gt, 1), false, &t->cptr);
        if (rc)
            return rc;
    }
    *out = t->cptr;
    return 0;
}

static act_p act_of(nx_act a, float lo, float hi)
{
    act_p p;
    p.kind = a == NX_ACT_RELU ? ACT_RELU : a == NX_ACT_CLIP ? ACT_CLIP : ACT_NONE;
    p.lo = lo;
    p.hi = hi;
    return p;
}

/* ---- lowering ---------------------------------------------------------------------------- */

/* The live node that reads tensor t, when it is its only reader (and t no graph output). */
static int sole_consumer(const nx_exec *e, int t)
{
    return e->uses[t] == 1 ? e->consumer[t] : -1;
}

/* Fold a following Relu/Clip (the only reader of *out) into the producer's activation. */
static void absorb_act(nx_exec *e, act_p *a, int *out)
{
    if (a->kind != ACT_NONE)
        return;
    int c = sole_consumer(e, *out);
    if (c < 0 || e->absorbed[c])
        return;
    const nx_node *n = &e->g->n[c];
    if (n->op == NX_OP_RELU && n->act == NX_ACT_NONE) {
        a->kind = ACT_RELU;
    } else if (n->op == NX_OP_CLIP && n->act == NX_ACT_NONE) {
        a->kind = ACT_CLIP;
        a->lo = n->clip_min;
        a->hi = n->clip_max;
    } else {
        return;
    }
    e->absorbed[c] = true;
    *out = n->outputs[0];
}

/* An xtensor index of t in layout `lay`: t itself if it reads the same, else a converted twin
 * (one copy step, made once). */
static int in_layout(nx_exec *e, int t, int lay)
{
    if (fits(&e->xt[t], lay))
        return t;
    if (e->xt[t].twin[lay] >= 0)
        return e->xt[t].twin[lay];
    xtensor proto = e->xt[t];
    proto.layout = lay;
    proto.avail = true;
    int tw = add_xt(e, &proto);
    e->xt[t].twin[lay] = tw;
    step *s = add_step(e, S_COPY, -1);
    s->in[0] = t;
    s->nin = 1;
    s->out = tw;
    return tw;
}

/* Mark an output produced with the given layout. */
static void produce(nx_exec *e, int t, int lay)
{
    xtensor *x = &e->xt[t];
    x->layout = x->nd == 4 ? lay : LAY_ROW;
    x->avail = true;
    x->dt = e->dt;
}

/* A fused activation on an op that does not apply one itself: an in-place pass. */
static int post_act(nx_exec *e, int ni, int out)
{
    const nx_node *n = &e->g->n[ni];
    if (n->act == NX_ACT_NONE)
        return 0;
    step *t = add_step(e, S_ACT, ni);
    t->in[0] = t->out = out;
    t->nin = 1;
    t->act = act_of(n->act, n->act_min, n->act_max);
    return 0;
}

static int lower_conv(nx_exec *e, int ni)
{
    const nx_graph *g = e->g;
    const nx_node *n = &g->n[ni];
    int out = n->outputs[0];
    act_p a = act_of(n->act, n->act_min, n->act_max);
    absorb_act(e, &a, &out);
    int z = -1;
    /* the residual Add of a ResNet block: conv -> Add(other, conv) [-> Relu] */
    int c = sole_consumer(e, out);
    if (a.kind == ACT_NONE && c >= 0 && !e->absorbed[c] && g->n[c].op == NX_OP_ADD &&
        g->n[c].ninputs == 2) {
        const nx_node *add = &g->n[c];
        int other = add->inputs[0] == out ? add->inputs[1] : add->inputs[0];
        const xtensor *ot = &e->xt[other], *yt = &e->xt[out];
        bool same = ot->act && ot->nd == yt->nd && other != out;
        for (int i = 0; same && i < yt->nd; i++)
            same = ot->d[i] == yt->d[i];
        if (same && ot->avail && fits(ot, e->conv_lay)) {
            z = other;
            out = add->outputs[0];
            a = act_of(add->act, add->act_min, add->act_max);
            e->absorbed[c] = true;
            absorb_act(e, &a, &out);
        }
    }
    int x = in_layout(e, n->inputs[0], e->conv_lay);
    const xtensor *xt = &e->xt[x];
    const nx_tensor *w = &g->t[n->inputs[1]];
    const nx_tensor *b = n->ninputs > 2 && n->inputs[2] >= 0 ? &g->t[n->inputs[2]] : NULL;
    const nx_tensor *y = &g->t[n->outputs[0]];
    if (w->dtype != NX_F32 || !w->data || (b && (b->dtype != NX_F32 || !b->data)))
        return fail(e, NX_ERR_NOTSUP, n, "weights must be fp32 constants");
    int pt = (int)n->pads[0], pl = (int)n->pads[1], pb = (int)n->pads[2], pr = (int)n->pads[3];
    if (pt != pb || pl != pr) {
        /* asymmetric padding: pad explicitly, then convolve without */
        xtensor proto = *xt;
        proto.d[2] += pt + pb;
        proto.d[3] += pl + pr;
        proto.avail = true;
        int px = add_xt(e, &proto);
        step *s = add_step(e, S_PAD, ni);
        s->in[0] = x;
        s->nin = 1;
        s->out = px;
        s->pads[0] = pt; s->pads[1] = pl; s->pads[2] = pb; s->pads[3] = pr;
        s->value = 0.0f;
        x = px;
        xt = &e->xt[x];
        pt = pb = pl = pr = 0;
    }
    conv_t *cv = (conv_t *)nx_calloc(1, sizeof *cv);
    step *s = add_step(e, S_CONV, ni);
    s->conv = cv;
    s->in[0] = x;
    s->nin = 1;
    s->z = z;
    s->out = out;
    s->act = a;
    cv->C = (int)xt->d[1];
    cv->H = (int)xt->d[2];
    cv->W = (int)xt->d[3];
    cv->K = (int)w->dims[0];
    cv->OH = (int)y->dims[2];
    cv->OW = (int)y->dims[3];
    int cg = (int)w->dims[1], R = (int)w->dims[2], S = (int)w->dims[3], K = cv->K;
    cv->algo = (int *)nx_malloc((size_t)(e->max_batch + 1) * sizeof(int));
    for (int i = 0; i <= e->max_batch; i++)
        cv->algo[i] = -1;
    cv->fused = (unsigned char *)nx_calloc((size_t)e->max_batch + 1, 1);
    cv->math = (unsigned char *)nx_calloc((size_t)e->max_batch + 1, 1);
    cv->gvar = (unsigned char *)nx_calloc((size_t)e->max_batch + 1, 1);
    cv->plan = (cudnnBackendDescriptor_t *)nx_calloc((size_t)e->max_batch + 1, sizeof *cv->plan);
    cv->Cg = cg;
    cv->group = (int)n->group;
    cv->R = R;
    cv->S = S;
    cv->stride[0] = (int)n->strides[0];
    cv->stride[1] = (int)n->strides[1];
    cv->dil[0] = (int)n->dilations[0];
    cv->dil[1] = (int)n->dilations[1];
    cv->pad[0] = pt; cv->pad[1] = pl; cv->pad[2] = pb; cv->pad[3] = pr;
    cudnnDataType_t cdt = e->dt == DT_F16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
    cudnnTensorFormat_t fmt = e->conv_lay == LAY_NHWC ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    CK(e, cudnnCreateTensorDescriptor(&cv->xd));
    CK(e, cudnnCreateTensorDescriptor(&cv->yd));
    CK(e, cudnnCreateTensorDescriptor(&cv->bd));
    CK(e, cudnnCreateFilterDescriptor(&cv->wd));
    CK(e, cudnnCreateConvolutionDescriptor(&cv->cd));
    CK(e, cudnnCreateActivationDescriptor(&cv->ad));
    CK(e, cudnnSetFilter4dDescriptor(cv->wd, cdt, fmt, K, cg, R, S));
    CK(e, cudnnSetConvolution2dDescriptor(cv->cd, pt, pl, (int)n->strides[0], (int)n->strides[1],
                                          (int)n->dilations[0], (int)n->dilations[1],
                                          CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CK(e, cudnnSetConvolutionGroupCount(cv->cd, (int)n->group));
    CK(e, cudnnSetTensor4dDescriptor(cv->bd, CUDNN_TENSOR_NCHW, cdt, 1, K, 1, 1));
    CK(e, cudnnSetTensor4dDescriptor(cv->xd, fmt, cdt, 1, cv->C, cv->H, cv->W));
    int on, oc, oh, ow;
    CK(e, cudnnGetConvolution2dForwardOutputDim(cv->cd, cv->xd, cv->wd, &on, &oc, &oh, &ow));
    if (oc != K || oh != cv->OH || ow != cv->OW)
        return fail(e, NX_ERR_CONFIG, n, "cuDNN computes output [%d, %d, %d] where the graph has "
                    "[%d, %d, %d]", oc, oh, ow, K, cv->OH, cv->OW);
    /* the activation cuDNN can fuse: relu, identity, or clip to [0, hi] */
    cv->fusable = true;
    if (a.kind == ACT_RELU) {
        CK(e, cudnnSetActivationDescriptor(cv->ad, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
    } else if (a.kind == ACT_NONE) {
        CK(e, cudnnSetActivationDescriptor(cv->ad, CUDNN_ACTIVATION_IDENTITY, CUDNN_NOT_PROPAGATE_NAN, 0.0));
    } else if (a.kind == ACT_CLIP && a.lo == 0.0f && isfinite(a.hi)) {
        CK(e, cudnnSetActivationDescriptor(cv->ad, CUDNN_ACTIVATION_CLIPPED_RELU,
                                           CUDNN_NOT_PROPAGATE_NAN, (double)a.hi));
    } else {
        cv->fusable = false;
    }
    /* weights: KCRS fp32 -> KRSC for NHWC */
    size_t wn = (size_t)K * cg * R * S;
    const float *wsrc = (const float *)w->data;
    float *tmp = NULL;
    if (e->conv_lay == LAY_NHWC) {
        tmp = (float *)nx_malloc(wn * sizeof(float));
        for (int k = 0; k < K; k++)
            for (int ci = 0; ci < cg; ci++)
                for (int r = 0; r < R; r++)
                    for (int q = 0; q < S; q++)
                        tmp[(((size_t)k * R + r) * S + q) * cg + ci] =
                            wsrc[(((size_t)k * cg + ci) * R + r) * S + q];
        wsrc = tmp;
    }
    int rc = upload(e, wsrc, wn, false, &cv->w);
    if (n->group == 1 && K <= 128 && e->conv_lay == LAY_NHWC) {
        /* small layers: our per-pixel direct kernel reads [R][S][C][K] */
        float *t = (float *)nx_malloc(wn * sizeof(float));
        for (size_t k = 0; k < (size_t)K; k++)
            for (size_t j = 0; j < (size_t)R * S * cg; j++)
                t[j * K + k] = wsrc[k * R * S * cg + j];
        if (!rc)
            rc = upload(e, t, wn, false, &cv->w_t);
        free(t);
    }
    free(tmp);
    if (rc)
        return rc;
    if (cg == 1 && n->group == cv->C && K == cv->C && e->conv_lay == LAY_NHWC) {
        /* depthwise: our kernel is a candidate too; it reads [R][S][C] */
        const float *w0 = (const float *)w->data;
        float *rsc = (float *)nx_malloc(wn * sizeof(float));
        for (int k = 0; k < K; k++)
            for (int r = 0; r < R * S; r++)
                rsc[(size_t)r * K + k] = w0[(size_t)k * R * S + r];
        rc = upload(e, rsc, wn, false, &cv->w_dw);
        free(rsc);
        if (rc)
            return rc;
    }
    float *bias = (float *)nx_calloc((size_t)K, sizeof(float));
    if (b)
        memcpy(bias, b->data, (size_t)K * sizeof(float));
    cv->has_bias = false;
    for (int k = 0; k < K; k++)
        cv->has_bias |= bias[k] != 0.0f;
    rc = upload(e, bias, (size_t)K, false, &cv->bias);   /* zeros when the Conv has none */
    free(bias);
    if (rc)
        return rc;
    produce(e, out, e->conv_lay);
    return 0;
}

static int lower_gemm(nx_exec *e, int ni)
{
    const nx_graph *g = e->g;
    const nx_node *n = &g->n[ni];
    int out = n->outputs[0];
    act_p a = act_of(n->act, n->act_min, n->act_max);
    absorb_act(e, &a, &out);
    int x = in_layout(e, n->inputs[0], LAY_ROW);
    const xtensor *xt = &e->xt[x];
    const nx_tensor *w = &g->t[n->inputs[1]];
    const nx_tensor *c = n->ninputs > 2 && n->inputs[2] >= 0 ? &g->t[n->inputs[2]] : NULL;
    if (n->trans_a)
        return fail(e, NX_ERR_NOTSUP, n, "transA = 1 is not supported");
    if (!w->is_const || w->dtype != NX_F32 || !w->data || w->ndim != 2)
        return fail(e, NX_ERR_NOTSUP, n, "B must be a 2-D fp32 constant");
    gemm_t *gm = (gemm_t *)nx_calloc(1, sizeof *gm);
    step *s = add_step(e, S_GEMM, ni);
    s->gemm = gm;
    s->in[0] = x;
    s->nin = 1;
    s->out = out;
    s->act = a;
    gm->K = xt->d[xt->nd - 1];
    gm->N = n->trans_b ? w->dims[0] : w->dims[1];
    gm->rows1 = 1;
    for (int i = 1; i < xt->nd - 1; i++)
        gm->rows1 *= xt->d[i];
    gm->alpha = n->alpha;
    gm->lt_act = a.kind == ACT_RELU;
    if (gm->lt_act)
        s->act.kind = ACT_NONE;
    /* weights as [N, K] row-major (= column-major K x N) */
    size_t K = (size_t)gm->K, N = (size_t)gm->N;
    const float *wd = (const float *)w->data;
    float *tmp = NULL;
    if (!n->trans_b) {
        tmp = (float *)nx_malloc(K * N * sizeof(float));
        for (size_t k = 0; k < K; k++)
            for (size_t j = 0; j < N; j++)
                tmp[j * K + k] = wd[k * N + j];
        wd = tmp;
    }
    int rc = upload(e, wd, K * N, false, &gm->w);
    free(tmp);
    if (rc)
        return rc;
    if (c) {
        if (c->dtype != NX_F32 || !c->data)
            return fail(e, NX_ERR_NOTSUP, n, "C must be an fp32 constant");
        size_t ce = nx_tensor_elems(c, 1);
        float *bias = (float *)nx_malloc(N * sizeof(float));
        for (size_t j = 0; j < N; j++)
            bias[j] = n->beta * ((const float *)c->data)[ce == 1 ? 0 : j];
        rc = upload(e, bias, N, false, &gm->bias);
        free(bias);
        if (rc)
            return rc;
    }
    gm->algo = (cublasLtMatmulAlgo_t *)nx_calloc((size_t)e->max_batch + 1, sizeof *gm->algo);
    gm->tuned = (unsigned char *)nx_calloc((size_t)e->max_batch + 1, 1);
    cublasComputeType_t ct = e->dt == DT_F16 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_TF32;
    cudaDataType_t vt = e->dt == DT_F16 ? CUDA_R_16F : CUDA_R_32F;
    CK(e, cublasLtMatmulDescCreate(&gm->md, ct, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    CK(e, cublasLtMatmulDescSetAttribute(gm->md, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    CK(e, cublasLtMatmulDescSetAttribute(gm->md, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    cublasLtEpilogue_t ep = gm->bias ? (gm->lt_act ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS)
                                     : (gm->lt_act ? CUBLASLT_EPILOGUE_RELU : CUBLASLT_EPILOGUE_DEFAULT);
    CK(e, cublasLtMatmulDescSetAttribute(gm->md, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep));
    if (gm->bias)
        CK(e, cublasLtMatmulDescSetAttribute(gm->md, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &gm->bias,
                                             sizeof gm->bias));
    CK(e, cublasLtMatrixLayoutCreate(&gm->la, vt, (uint64_t)K, (uint64_t)N, (int64_t)K));
    CK(e, cublasLtMatrixLayoutCreate(&gm->lb, vt, (uint64_t)K, (uint64_t)gm->rows1, (int64_t)K));
    CK(e, cublasLtMatrixLayoutCreate(&gm->lc, vt, (uint64_t)N, (uint64_t)gm->rows1, (int64_t)N));
    produce(e, out, LAY_ROW);
    act_p extra = s->act;               /* clip: its own pass, in place */
    s->act.kind = ACT_NONE;
    if (extra.kind != ACT_NONE) {
        step *t = add_step(e, S_ACT, ni);
        t->in[0] = out;
        t->nin = 1;
        t->out = out;
        t->act = extra;
    }
    return 0;
}

static int lower_bn(nx_exec *e, int ni)
{
    const nx_graph *g = e->g;
    const nx_node *n = &g->n[ni];
    int out = n->outputs[0];
    act_p a = act_of(n->act, n->act_min, n->act_max);
    absorb_act(e, &a, &out);
    int x = n->inputs[0];
    int C = (int)e->xt[x].d[1];
    const float *p[4];
    for (int i = 0; i < 4; i++) {
        const nx_tensor *t = &g->t[n->inputs[1 + i]];
        if (t->dtype != NX_F32 || !t->data)
            return fail(e, NX_ERR_NOTSUP, n, "parameters must be fp32 constants");
        p[i] = (const float *)t->data;
    }
    float *sc = (float *)nx_malloc(2 * (size_t)C * sizeof(float));
    for (int c = 0; c < C; c++) {
        sc[c] = p[0][c] / sqrtf(p[3][c] + n->epsilon);
        sc[C + c] = p[1][c] - p[2][c] * sc[c];
    }
    void *d;
    int rc = upload(e, sc, 2 * (size_t)C, true, &d);
    free(sc);
    if (rc)
        return rc;
    step *s = add_step(e, S_BN, ni);
    s->in[0] = x;
    s->nin = 1;
    s->out = out;
    s->act = a;
    s->scale = (float *)d;
    s->shift = (float *)d + C;
    produce(e, out, e->xt[x].layout);
    return 0;
}

static int lower_binary(nx_exec *e, int ni)
{
    const nx_graph *g = e->g;
    const nx_node *n = &g->n[ni];
    int out = n->outputs[0];
    act_p a = act_of(n->op == NX_OP_ADD ? n->act : NX_ACT_NONE, n->act_min, n->act_max);
    if (n->op == NX_OP_ADD)
        absorb_act(e, &a, &out);
    int ia = n->inputs[0], ib = n->inputs[1];
    if (e->expand_src[ia] >= 0)
        ia = e->expand_src[ia];
    if (e->expand_src[ib] >= 0)
        ib = e->expand_src[ib];
    const xtensor *yt = &e->xt[out];
    /* the output's layout follows an activation input of the same shape */
    int lay = LAY_ROW;
    for (int k = 0; k < 2; k++) {
        const xtensor *t = &e->xt[k ? ib : ia];
        bool same = t->act && t->nd == yt->nd;
        for (int i = 1; same && i < t->nd; i++)
            same = t->d[i] == yt->d[i];
        if (same && !neutral(t)) {
            lay = t->layout;
            break;
        }
    }
    if (e->xt[ia].act)
        ia = in_layout(e, ia, lay);
    if (e->xt[ib].act)
        ib = in_layout(e, ib, lay);
    step *s = add_step(e, S_BIN, ni);
    s->in[0] = ia;
    s->in[1] = ib;
    s->nin = 2;
    s->out = out;
    s->act = a;
    s->op = n->op == NX_OP_ADD ? BIN_ADD : n->op == NX_OP_SUB ? BIN_SUB
          : n->op == NX_OP_MUL ? BIN_MUL : BIN_DIV;
    for (int k = 0; k < 2; k++)
        if (!e->xt[s->in[k]].act) {
            void *d;
            int rc = const_ptr(e, s->in[k], &d);
            if (rc)
                return rc;
        }
    produce(e, out, lay);
    return n->op == NX_OP_ADD ? 0 : post_act(e, ni, out);
}

static int lower_pool(nx_exec *e, int ni)
{
    const nx_graph *g = e->g;
    const nx_node *n = &g->n[ni];
    int x = n->inputs[0];
    step *s = add_step(e, S_POOL, ni);
    pool_p *p = &s->pool;
    p->kh = (int)n->kernel[0];
    p->kw = (int)n->kernel[1];
    p->sh = (int)n->strides[0];
    p->sw = (int)n->strides[1];
    p->dh = n->op == NX_OP_MAXPOOL ? (int)n->dilations[0] : 1;
    p->dw = n->op == NX_OP_MAXPOOL ? (int)n->dilations[1] : 1;
    p->pt = (int)n->pads[0];
    p->pl = (int)n->pads[1];
    p->pb = (int)n->pads[2];
    p->pr = (int)n->pads[3];
    p->is_max = n->op == NX_OP_MAXPOOL;
    p->count_include_pad = (int)n->count_include_pad;
    /* Pad(0) + AveragePool without pads = AveragePool with pads, count_include_pad */
    int pn = e->pad_src[x];
    if (pn >= 0 && !p->is_max && p->pt == 0 && p->pl == 0 && p->pb == 0 && p->pr == 0) {
        const nx_node *pad = &g->n[pn];
        p->pt = (int)pad->pads[0];
        p->pl = (int)pad->pads[1];
        p->pb = (int)pad->pads[2];
        p->pr = (int)pad->pads[3];
        p->count_include_pad = 1;
        x = pad->inputs[0];
    }
    s->in[0] = x;
    s->nin = 1;
    s->out = n->outputs[0];
    const xtensor *xt = &e->xt[x];
    p->nhwc = xt->layout == LAY_NHWC;
    p->C = (int)xt->d[1];
    p->H = (int)xt->d[2];
    p->W = (int)xt->d[3];
    const nx_tensor *y = &g->t[n->outputs[0]];
    p->OH = (int)y->dims[2];
    p->OW = (int)y->dims[3];
    produce(e, s->out, xt->layout);
    return post_act(e, ni, n->outputs[0]);
}

static int lower_node(nx_exec *e, int ni)
{
    const nx_graph *g = e->g;
    const nx_node *n = &g->n[ni];
    int x = n->ninputs > 0 ? n->inputs[0] : -1;
    int out = n->noutputs > 0 ? n->outputs[0] : -1;
    if (n->noutputs != 1 && n->op != NX_OP_DROPOUT)
        return fail(e, NX_ERR_NOTSUP, n, "%d outputs", n->noutputs);
    for (int i = 0; i < n->ninputs; i++) {
        int t = n->inputs[i];
        if (t >= 0 && e->xt[t].act && !e->xt[t].avail)
            return fail(e, NX_ERR_CONFIG, n, "input '%s' is not computed before it",
                        g->t[t].name);
    }
    step *s;
    switch (n->op) {
    case NX_OP_CONV:
        return lower_conv(e, ni);
    case NX_OP_GEMM:
    case NX_OP_MATMUL:
        return lower_gemm(e, ni);
    case NX_OP_BATCHNORM:
        return lower_bn(e, ni);
    case NX_OP_ADD:
    case NX_OP_SUB:
    case NX_OP_MUL:
    case NX_OP_DIV:
        return lower_binary(e, ni);
    case NX_OP_MAXPOOL:
    case NX_OP_AVGPOOL:
        return lower_pool(e, ni);
    case NX_OP_RELU:
    case NX_OP_CLIP:
    case NX_OP_SIGMOID: {
        act_p a;
        a.kind = n->op == NX_OP_RELU ? ACT_RELU : n->op == NX_OP_CLIP ? ACT_CLIP : ACT_SIGMOID;
        a.lo = n->clip_min;
        a.hi = n->clip_max;
        s = add_step(e, S_ACT, ni);
        s->in[0] = x;
        s->nin = 1;
        s->out = out;
        s->act = a;
        produce(e, out, e->xt[x].layout);
        return post_act(e, ni, out);
    }
    case NX_OP_GLOBALAVGPOOL:
        s = add_step(e, S_GAP, ni);
        s->in[0] = x;
        s->nin = 1;
        s->out = out;
        produce(e, out, LAY_ROW);
        return post_act(e, ni, out);
    case NX_OP_CONCAT: {
        /* fp16: 4-D concatenations stay NHWC (mismatched inputs are converted to it) */
        int lay = e->xt[x].nd == 4 ? e->conv_lay : LAY_ROW;
        int ins[NX_DNN_MAX_IO];
        if (n->ninputs > NX_DNN_MAX_IO)
            return fail(e, NX_ERR_NOTSUP, n, "more than %d inputs", NX_DNN_MAX_IO);
        for (int i = 0; i < n->ninputs; i++)
            ins[i] = in_layout(e, n->inputs[i], lay);
        s = add_step(e, S_CONCAT, ni);
        memcpy(s->in, ins, sizeof ins);
        s->nin = n->ninputs;
        s->out = out;
        s->axis = (int)n->axis;
        produce(e, out, lay);
        return post_act(e, ni, out);
    }
    case NX_OP_FLATTEN:
    case NX_OP_RESHAPE:
    case NX_OP_IDENTITY:
    case NX_OP_DROPOUT: {
        /* Reshape [N,C,H,W] -> [N,A,K,H,W] then Transpose (0,3,4,1,2) of an NHWC tensor is its
         * storage as it is: [N,H,W,A,K] (the box/class heads of SSD and RetinaNet) */
        if (n->op == NX_OP_RESHAPE && n->act == NX_ACT_NONE) {
            const xtensor *xi = &e->xt[x], *o = &e->xt[out];
            int c = sole_consumer(e, out);
            if (xi->layout == LAY_NHWC && !neutral(xi) && o->nd == 5 && c >= 0 &&
                !g->n[c].dead && !e->absorbed[c] && g->n[c].op == NX_OP_TRANSPOSE &&
                g->n[c].act == NX_ACT_NONE && g->n[c].nperm == 5 && g->n[c].perm[0] == 0 &&
                g->n[c].perm[1] == 3 && g->n[c].perm[2] == 4 && g->n[c].perm[3] == 1 &&
                g->n[c].perm[4] == 2 && o->d[1] * o->d[2] == xi->d[1] && o->d[3] == xi->d[2] &&
                o->d[4] == xi->d[3]) {
                int t = g->n[c].outputs[0];
                e->absorbed[c] = true;
                e->xt[out].avail = true;
                produce(e, t, LAY_ROW);
                e->xt[t].storage = -2 - x;
                return 0;
            }
        }
        /* a view: the output shares the (row-major) input's storage */
        int r = in_layout(e, x, LAY_ROW);
        produce(e, out, LAY_ROW);
        if (n->act != NX_ACT_NONE) {  /* (prepare fuses none here) a pass, not a view */
            s = add_step(e, S_ACT, ni);
            s->in[0] = r;
            s->nin = 1;
            s->out = out;
            s->act = act_of(n->act, n->act_min, n->act_max);
            return 0;
        }
        e->xt[out].storage = -2 - r;  /* resolved to r's storage when storages are made */
        return 0;
    }
    case NX_OP_TRANSPOSE:
        s = add_step(e, S_COPY, ni);
        s->in[0] = x;
        s->nin = 1;
        s->out = out;
        s->nperm = n->nperm;
        for (int i = 0; i < n->nperm; i++)
            s->perm[i] = (int)n->perm[i];
        produce(e, out, LAY_ROW);
        return post_act(e, ni, out);
    case NX_OP_EXPAND: {
        /* Expand read only by a broadcasting Add/Sub/Mul/Div of its own shape: the binary op
         * broadcasts the input itself (SSD's L2Norm: x / expand(norm)) */
        int c = sole_consumer(e, out);
        if (c >= 0 && !g->n[c].dead && !e->absorbed[c] &&
            (g->n[c].op == NX_OP_ADD || g->n[c].op == NX_OP_SUB || g->n[c].op == NX_OP_MUL ||
             g->n[c].op == NX_OP_DIV)) {
            const nx_tensor *bo = &g->t[g->n[c].outputs[0]], *eo = &g->t[out];
            bool same = bo->ndim == eo->ndim;
            for (int i = 0; same && i < eo->ndim; i++)
                same = bo->dims[i] == eo->dims[i];
            if (same) {
                e->expand_src[out] = x;
                e->xt[out].avail = true;
                return 0;
            }
        }
    }
        s = add_step(e, S_COPY, ni);
        s->in[0] = x;
        s->nin = 1;
        s->out = out;
        produce(e, out, LAY_ROW);
        return post_act(e, ni, out);
    case NX_OP_SOFTMAX: {
        int r = in_layout(e, x, LAY_ROW);
        s = add_step(e, S_SOFTMAX, ni);
        s->in[0] = r;
        s->nin = 1;
        s->out = out;
        s->axis = (int)n->axis;
        produce(e, out, LAY_ROW);
        return post_act(e, ni, out);
    }
    case NX_OP_REDUCEL2:
    case NX_OP_REDUCEMEAN:
        s = add_step(e, S_REDUCE, ni);
        s->in[0] = x;
        s->nin = 1;
        s->out = out;
        s->op = n->op == NX_OP_REDUCEL2 ? RED_L2 : RED_MEAN;
        s->naxes = n->naxes;
        for (int i = 0; i < n->naxes; i++)
            s->axes[i] = (int)n->axes[i];
        produce(e, out, LAY_ROW);
        return post_act(e, ni, out);
    case NX_OP_PAD: {
        int c = sole_consumer(e, out);
        if (n->pad_value == 0.0f && c >= 0 && g->n[c].op == NX_OP_AVGPOOL && !g->n[c].dead &&
            g->n[c].pads[0] == 0 && g->n[c].pads[1] == 0 && g->n[c].pads[2] == 0 &&
            g->n[c].pads[3] == 0) {
            e->pad_src[out] = ni;        /* the pool reads the Pad's input */
            e->xt[out].avail = true;
            return 0;
        }
        s = add_step(e, S_PAD, ni);
        s->in[0] = x;
        s->nin = 1;
        s->out = out;
        for (int i = 0; i < 4; i++)
            s->pads[i] = (int)n->pads[i];
        s->value = n->pad_value;
        produce(e, out, e->xt[x].layout);
        return post_act(e, ni, out);
    }
    default:
        return fail(e, NX_ERR_NOTSUP, n, "operator not supported");
    }
}

/* ---- storage planning -------------------------------------------------------------------- */

static int make_storage(nx_exec *e, size_t bytes, bool fixed)
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

static int plan(nx_exec *e)
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

static void *ptr_of(nx_exec *e, int t)
{
    xtensor *x = &e->xt[t];
    if (!x->act)
        return x->cptr;
    return x->storage >= 0 ? e->sto[x->storage].ptr : NULL;
}

/* NX_CUDA_DUMP=1: the lowered steps at load and each convolution's choice per batch, on
 * stderr (for reading what the executor made of a model). */
static const char *const kind_name[] = {
    "conv", "gemm", "bn", "act", "binary", "pool", "gap", "concat", "copy", "softmax", "reduce",
    "pad",
};

/* ---- running one step -------------------------------------------------------------------- */

/* Does the fused variant have anything to fuse, and can cuDNN's pointwise ops express it? */
static bool conv_has_epilogue(const step *s)
{
    return s->conv->has_bias || s->z >= 0 || s->act.kind != ACT_NONE;
}

static bool conv_fusable_graph(const step *s)
{
    return s->act.kind == ACT_NONE || s->act.kind == ACT_RELU || s->act.kind == ACT_CLIP;
}

static dw_p dw_params(const conv_t *cv, int b)
{
    dw_p p;
    p.N = b;
    p.C = cv->C;
    p.H = cv->H;
    p.W = cv->W;
    p.OH = cv->OH;
    p.OW = cv->OW;
    p.R = cv->R;
    p.S = cv->S;
    p.sh = cv->stride[0];
    p.sw = cv->stride[1];
    p.dh = cv->dil[0];
    p.dw = cv->dil[1];
    p.pt = cv->pad[0];
    p.pl = cv->pad[1];
    return p;
}

static dconv_p dconv_params(const conv_t *cv, int b, int group)
{
    dconv_p p;
    p.N = b;
    p.C = cv->C;
    p.H = cv->H;
    p.W = cv->W;
    p.K = cv->K;
    p.OH = cv->OH;
    p.OW = cv->OW;
    p.R = cv->R;
    p.S = cv->S;
    p.Cg = cv->Cg;
    p.Kg = cv->K / group;
    p.sh = cv->stride[0];
    p.sw = cv->stride[1];
    p.dh = cv->dil[0];
    p.dw = cv->dil[1];
    p.pt = cv->pad[0];
    p.pl = cv->pad[1];
    return p;
}

static int conv_set_batch(nx_exec *e, conv_t *cv, int b)
{
    cudnnDataType_t cdt = e->dt == DT_F16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
    cudnnTensorFormat_t fmt = e->conv_lay == LAY_NHWC ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    CK(e, cudnnSetTensor4dDescriptor(cv->xd, fmt, cdt, b, cv->C, cv->H, cv->W));
    CK(e, cudnnSetTensor4dDescriptor(cv->yd, fmt, cdt, b, cv->K, cv->OH, cv->OW));
    return 0;
}

static const float f_one = 1.0f, f_zero = 0.0f;

/* conv with a given algorithm: fused (cuDNN bias+z+act) or plain + our epilogue */
static int conv_call(nx_exec *e, step *s, int b, int algo, int math, bool fused)
{
    conv_t *cv = s->conv;
    void *x = ptr_of(e, s->in[0]), *y = ptr_of(e, s->out);
    void *z = s->z >= 0 ? ptr_of(e, s->z) : NULL;
    CK(e, cudnnSetConvolutionMathType(cv->cd, (cudnnMathType_t)math));
    if (fused) {
        float a2 = z ? 1.0f : 0.0f;
        CK(e, cudnnConvolutionBiasActivationForward(
                  e->dnn, &f_one, cv->xd, x, cv->wd, cv->w, cv->cd, (cudnnConvolutionFwdAlgo_t)algo,
                  e->ws, e->ws_size, &a2, cv->yd, z ? z : y, cv->bd, cv->bias, cv->ad, cv->yd, y));
        return 0;
    }
    CK(e, cudnnConvolutionForward(e->dnn, &f_one, cv->xd, x, cv->wd, cv->w, cv->cd,
                                  (cudnnConvolutionFwdAlgo_t)algo, e->ws, e->ws_size, &f_zero,
                                  cv->yd, y));
    if (!cv->has_bias && !z && s->act.kind == ACT_NONE)
        return 0;
    long long n = (long long)b * cv->K * cv->OH * cv->OW;
    long long inner = e->conv_lay == LAY_NHWC ? 1 : (long long)cv->OH * cv->OW;
    CK(e, k_bias_act(e->stream, e->dt, y, cv->has_bias ? cv->bias : NULL, z, n, cv->K, inner,
                     s->act));
    return 0;
}

static int gemm_set_batch(nx_exec *e, gemm_t *gm, int b)
{
    uint64_t rows = (uint64_t)(gm->rows1 * b);
    CK(e, cublasLtMatrixLayoutSetAttribute(gm->lb, CUBLASLT_MATRIX_LAYOUT_COLS, &rows, sizeof rows));
    CK(e, cublasLtMatrixLayoutSetAttribute(gm->lc, CUBLASLT_MATRIX_LAYOUT_COLS, &rows, sizeof rows));
    return 0;
}

static int gemm_call(nx_exec *e, step *s, const cublasLtMatmulAlgo_t *algo)
{
    gemm_t *gm = s->gemm;
    void *x = ptr_of(e, s->in[0]), *y = ptr_of(e, s->out);
    CK(e, cublasLtMatmul(e->lt, gm->md, &gm->alpha, gm->w, gm->la, x, gm->lb, &f_zero, y, gm->lc,
                         y, gm->lc, algo, e->ws, e->ws_size, e->stream));
    return 0;
}

static int run_step(nx_exec *e, step *s, int b)
{
    const xtensor *xo = &e->xt[s->out];
    void *y = ptr_of(e, s->out);
    void *x = s->nin > 0 ? ptr_of(e, s->in[0]) : NULL;
    const xtensor *xi = s->nin > 0 ? &e->xt[s->in[0]] : NULL;
    switch (s->kind) {
    case S_CONV: {
        conv_t *cv = s->conv;
        if (cv->algo[b] == ALGO_DW) {
            CK(e, k_dwconv(e->stream, e->dt, x, cv->w_dw, cv->has_bias ? cv->bias : NULL,
                           s->z >= 0 ? ptr_of(e, s->z) : NULL, y, dw_params(cv, b), s->act));
            return 0;
        }
        if (cv->algo[b] == ALGO_DIRECT_TILE) {
            CK(e, k_dconv_tile(e->stream, e->dt, x, cv->w_t, cv->has_bias ? cv->bias : NULL,
                               s->z >= 0 ? ptr_of(e, s->z) : NULL, y, dconv_params(cv, b, 1),
                               s->act));
            return 0;
        }
        if (cv->algo[b] == ALGO_DIRECT_PX) {
            CK(e, k_dconv_px(e->stream, e->dt, x, cv->w_t, cv->has_bias ? cv->bias : NULL,
                             s->z >= 0 ? ptr_of(e, s->z) : NULL, y, dconv_params(cv, b, 1),
                             s->act));
            return 0;
        }
        if (cv->algo[b] == ALGO_DIRECT) {
            CK(e, k_dconv(e->stream, e->dt, x, cv->w, cv->has_bias ? cv->bias : NULL,
                          s->z >= 0 ? ptr_of(e, s->z) : NULL, y, dconv_params(cv, b, cv->group),
                          s->act));
            return 0;
        }
        if (cv->algo[b] == ALGO_GRAPH) {
            CK(e, cudnnBackendExecute(e->dnn, cv->plan[b], cv->vp[cv->gvar[b]]));
            if (cv->gvar[b] || !conv_has_epilogue(s))
                return 0;
            long long n = (long long)b * cv->K * cv->OH * cv->OW;
            long long inner = e->conv_lay == LAY_NHWC ? 1 : (long long)cv->OH * cv->OW;
            CK(e, k_bias_act(e->stream, e->dt, y, cv->has_bias ? cv->bias : NULL,
                             s->z >= 0 ? ptr_of(e, s->z) : NULL, n, cv->K, inner, s->act));
            return 0;
        }
        int rc = conv_set_batch(e, cv, b);
        if (rc)
            return rc;
        return conv_call(e, s, b, cv->algo[b], cv->math[b], cv->fused[b]);
    }
    case S_GEMM: {
        int rc = gemm_set_batch(e, s->gemm, b);
        if (rc)
            return rc;
        return gemm_call(e, s, &s->gemm->algo[b]);
    }
    case S_BN: {
        long long n = elems_at(xi, b);
        int C = (int)xi->d[1];
        long long inner = xi->layout == LAY_NHWC && xi->nd == 4 ? 1 : n / ((long long)b * C);
        CK(e, k_scale_shift(e->stream, e->dt, x, y, s->scale, s->shift, n, C, inner, s->act));
        return 0;
    }
    case S_ACT:
        CK(e, k_act(e->stream, e->dt, x, y, elems_at(xi, b), s->act));
        return 0;
    case S_BIN: {
        const xtensor *xa = &e->xt[s->in[0]], *xb = &e->xt[s->in[1]];
        void *a = ptr_of(e, s->in[0]), *bb = ptr_of(e, s->in[1]);
        long long n = elems_at(xo, b);
        if (xa->act && xb->act && elems_at(xa, b) == n && elems_at(xb, b) == n &&
            xa->nd == xo->nd && xb->nd == xo->nd) {
            CK(e, k_bin_same(e->stream, e->dt, s->op, a, bb, y, n, s->act));
            return 0;
        }
        view_t yv = view_of(xo, b), v[2];
        for (int k = 0; k < 2; k++) {
            const xtensor *t = k ? xb : xa;
            view_t tv = view_of(t, b);
            memset(&v[k], 0, sizeof v[k]);
            v[k].n = yv.n;
            for (int i = 0; i < yv.n; i++) {
                int j = i - (yv.n - tv.n);
                v[k].d[i] = yv.d[i];
                v[k].s[i] = j >= 0 && tv.d[j] != 1 ? tv.s[j] : 0;
            }
        }
        CK(e, k_bin_bcast(e->stream, e->dt, s->op, a, v[0], bb, v[1], y, yv, s->act));
        return 0;
    }
    case S_POOL: {
        pool_p p = s->pool;
        p.N = b;
        CK(e, k_pool(e->stream, e->dt, x, y, p));
        return 0;
    }
    case S_GAP: {
        int C = (int)xi->d[1];
        int HW = (int)(elems_at(xi, 1) / C);
        CK(e, k_gap(e->stream, e->dt, xi->layout == LAY_NHWC && xi->nd == 4, x, y, b, C, HW));
        return 0;
    }
    case S_CONCAT: {
        /* physical axis and extents of the output */
        view_t ov = view_of(xo, b);
        int ax = s->axis;
        bool nhwc = xo->layout == LAY_NHWC && xo->nd == 4;
        long long rows = 1, after = 1;
        /* physical order: NCHW -> dims as is; NHWC -> N, H, W, C */
        int order[NX_DNN_MAX_DIMS];
        for (int i = 0; i < ov.n; i++)
            order[i] = i;
        if (nhwc) {
            order[1] = 2; order[2] = 3; order[3] = 1;
        }
        int pax = 0;
        for (int i = 0; i < ov.n; i++)
            if (order[i] == ax)
                pax = i;
        for (int i = 0; i < pax; i++)
            rows *= ov.d[order[i]];
        for (int i = pax + 1; i < ov.n; i++)
            after *= ov.d[order[i]];
        long long dld = ov.d[ax] * after, off = 0;
        size_t es = dt_size(e->dt);
        for (int i = 0; i < s->nin; i++) {
            const xtensor *t = &e->xt[s->in[i]];
            long long cols = t->d[ax] * after;
            CK(e, k_rows(e->stream, e->dt, ptr_of(e, s->in[i]), cols, (char *)y + off * es, dld,
                         rows, cols));
            off += cols;
        }
        return 0;
    }
    case S_COPY: {
        view_t sv = view_of(xi, b), dv = view_of(xo, b);
        if (s->nperm > 0) {              /* transpose: out dim i reads in dim perm[i] */
            view_t pv = sv;
            for (int i = 0; i < s->nperm; i++) {
                pv.d[i] = sv.d[s->perm[i]];
                pv.s[i] = sv.s[s->perm[i]];
            }
            sv = pv;
        } else if (sv.n != dv.n || elems_at(xi, b) != elems_at(xo, b)) {
            /* expand: broadcast the input (right-aligned) over the output */
            view_t bv;
            memset(&bv, 0, sizeof bv);
            bv.n = dv.n;
            for (int i = 0; i < dv.n; i++) {
                int j = i - (dv.n - sv.n);
                bv.d[i] = dv.d[i];
                bv.s[i] = j >= 0 && sv.d[j] != 1 ? sv.s[j] : 0;
            }
            sv = bv;
        }
        bool same_layout = xi->dt == xo->dt && s->nperm == 0 && sv.n == dv.n;
        for (int i = 0; same_layout && i < dv.n; i++)
            same_layout = sv.s[i] == dv.s[i] && sv.d[i] == dv.d[i];
        if (same_layout && x != y) {
            CK(e, cudaMemcpyAsync(y, x, (size_t)elems_at(xo, b) * dt_size(xo->dt),
                                  cudaMemcpyDeviceToDevice, e->stream));
            return 0;
        }
        CK(e, k_copy(e->stream, xi->dt, x, sv, xo->dt, y, dv));
        return 0;
    }
    case S_SOFTMAX: {
        long long outer = b, inner = 1;
        for (int i = 1; i < s->axis; i++)
            outer *= xi->d[i];
        for (int i = s->axis + 1; i < xi->nd; i++)
            inner *= xi->d[i];
        CK(e, k_softmax(e->stream, e->dt, x, y, outer, (int)xi->d[s->axis], inner));
        return 0;
    }
    case S_REDUCE: {
        view_t xv = view_of(xi, b);
        view_t yv, ov, rv;
        memset(&yv, 0, sizeof yv);
        memset(&rv, 0, sizeof rv);
        yv.n = xv.n;
        bool red[NX_DNN_MAX_DIMS] = {false};
        for (int i = 0; i < s->naxes; i++)
            red[s->axes[i]] = true;
        long long st = 1;
        for (int i = xv.n - 1; i >= 0; i--) {
            yv.d[i] = red[i] ? 1 : xv.d[i];
            yv.s[i] = st;
            st *= yv.d[i];
            if (red[i]) {
                rv.d[rv.n] = xv.d[i];
                rv.s[rv.n] = xv.s[i];
                rv.n++;
            }
        }
        /* rv was filled innermost first: reverse it */
        for (int i = 0; i < rv.n / 2; i++) {
            int td = rv.d[i]; rv.d[i] = rv.d[rv.n - 1 - i]; rv.d[rv.n - 1 - i] = td;
            long long ts = rv.s[i]; rv.s[i] = rv.s[rv.n - 1 - i]; rv.s[rv.n - 1 - i] = ts;
        }
        ov = yv;
        for (int i = 0; i < xv.n; i++)
            ov.s[i] = xv.s[i];
        CK(e, k_reduce(e->stream, e->dt, s->op, x, ov, rv, y, yv));
        return 0;
    }
    case S_PAD: {
        view_t xv = view_of(xi, b), yv = view_of(xo, b);
        CK(e, k_pad(e->stream, e->dt, x, xv, y, yv, s->pads[0], s->pads[1], s->value));
        return 0;
    }
    }
    return fail(e, NX_ERR_INVAL, NULL, "unknown step kind %d", s->kind);
}

/* ---- autotuning --------------------------------------------------------------------------- */


/* Mean milliseconds of `reps` calls of fn after one warm-up (one call when the warm-up took
 * over 2 ms: large problems vary little); <0 if a call failed. */
template <typename F> static float time_ms(nx_exec *e, int reps, F fn)
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
template <typename F> static int quietly(nx_exec *e, F fn)
{
    nx_errbuf quiet;
    nx_err_clear(&quiet);
    nx_errbuf *keep = e->eb;
    e->eb = &quiet;
    int r = fn();
    e->eb = keep;
    return r;
}

/* ---- convolutions through cuDNN's graph API ---------------------------------------------- */

/* Every engine cuDNN 9 has, found by its heuristics (mode A) and timed here, as PyTorch's
 * benchmark mode does; two variants per layer and batch: the convolution alone (our epilogue
 * adds bias, residual and activation) and the convolution with that epilogue fused by cuDNN
 * (conv -> add bias -> add z -> relu/clip in one operation graph). */

enum { UID_X = 1, UID_W, UID_Y, UID_B, UID_Z, UID_T0 = 100 };

#define BE_SET(e, d, attr, type, n, ptr) CK(e, cudnnBackendSetAttribute(d, attr, type, n, ptr))

static void hold(nx_exec *e, cudnnBackendDescriptor_t d)
{
    e->held = (cudnnBackendDescriptor_t *)grow(e->held, &e->capheld, e->nheld + 1, sizeof *e->held);
    e->held[e->nheld++] = d;
}

/* A descriptor list destroyed together (newest first). */
struct be_list {
    cudnnBackendDescriptor_t d[32];
    int n;
};

static void be_free(be_list *l)
{
    while (l->n > 0)
        cudnnBackendDestroyDescriptor(l->d[--l->n]);
}

static int be_new(nx_exec *e, be_list *l, cudnnBackendDescriptorType_t t, cudnnBackendDescriptor_t *d)
{
    if (l->n >= 32)
        return fail(e, NX_ERR_INVAL, NULL, "too many cuDNN descriptors in one graph");
    CK(e, cudnnBackendCreateDescriptor(t, d));
    l->d[l->n++] = *d;
    return 0;
}

static void conv_strides(int lay, const int64_t d[4], int64_t st[4])
{
    if (lay == LAY_NHWC) {
        st[0] = d[1] * d[2] * d[3];
        st[1] = 1;
        st[2] = d[3] * d[1];
        st[3] = d[1];
    } else {
        st[3] = 1;
        st[2] = d[3];
        st[1] = d[2] * d[3];
        st[0] = d[1] * d[2] * d[3];
    }
}

static int be_tensor(nx_exec *e, be_list *l, cudnnBackendDescriptor_t *d, int64_t uid,
                     cudnnDataType_t dt, const int64_t dims[4], bool virt)
{
    int rc = be_new(e, l, CUDNN_BACKEND_TENSOR_DESCRIPTOR, d);
    if (rc)
        return rc;
    int64_t st[4], align = 16;
    conv_strides(e->conv_lay, dims, st);
    BE_SET(e, *d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt);
    BE_SET(e, *d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims);
    BE_SET(e, *d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, st);
    BE_SET(e, *d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
    BE_SET(e, *d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align);
    if (virt) {
        bool v = true;
        BE_SET(e, *d, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &v);
    }
    CK(e, cudnnBackendFinalize(*d));
    return 0;
}

/* One pointwise operation y = mode(x[, b]) (relu: clipped to [lo, hi]). */
static int be_pointwise(nx_exec *e, be_list *l, cudnnBackendDescriptor_t *op,
                        cudnnPointwiseMode_t mode, cudnnBackendDescriptor_t x,
                        cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t y, double lo, double hi)
{
    cudnnBackendDescriptor_t pw;
    int rc = be_new(e, l, CUDNN_BACKEND_POINTWISE_DESCRIPTOR, &pw);
    if (rc)
        return rc;
    cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    BE_SET(e, pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
    BE_SET(e, pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec);
    if (mode == CUDNN_POINTWISE_RELU_FWD) {
        BE_SET(e, pw, CUDNN_ATTR_POINTWISE_RELU_LOWER_CLIP, CUDNN_TYPE_DOUBLE, 1, &lo);
        if (isfinite(hi))
            BE_SET(e, pw, CUDNN_ATTR_POINTWISE_RELU_UPPER_CLIP, CUDNN_TYPE_DOUBLE, 1, &hi);
    }
    CK(e, cudnnBackendFinalize(pw));
    if ((rc = be_new(e, l, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, op)))
        return rc;
    BE_SET(e, *op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw);
    BE_SET(e, *op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x);
    if (b)
        BE_SET(e, *op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b);
    BE_SET(e, *op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y);
    CK(e, cudnnBackendFinalize(*op));
    return 0;
}

/* The operation graph of step s at batch b; *og is in l. */
static int be_conv_graph(nx_exec *e, be_list *l, const step *s, int b, bool fused,
                         cudnnBackendDescriptor_t *og)
{
    const conv_t *cv = s->conv;
    cudnnDataType_t dt = e->dt == DT_F16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
    cudnnDataType_t f32 = CUDNN_DATA_FLOAT;
    int64_t xd[4] = {b, cv->C, cv->H, cv->W}, wd[4] = {cv->K, cv->Cg, cv->R, cv->S};
    int64_t yd[4] = {b, cv->K, cv->OH, cv->OW}, bd[4] = {1, cv->K, 1, 1};
    cudnnBackendDescriptor_t X, W, Y, cd, ops[8];
    int nops = 0, rc;
    if ((rc = be_tensor(e, l, &X, UID_X, dt, xd, false)) || (rc = be_tensor(e, l, &W, UID_W, dt, wd, false)) ||
        (rc = be_tensor(e, l, &Y, UID_Y, dt, yd, false)))
        return rc;
    if ((rc = be_new(e, l, CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, &cd)))
        return rc;
    cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    int64_t nsp = 2, dil[2] = {cv->dil[0], cv->dil[1]}, str[2] = {cv->stride[0], cv->stride[1]};
    int64_t pre[2] = {cv->pad[0], cv->pad[1]}, post[2] = {cv->pad[2], cv->pad[3]};
    BE_SET(e, cd, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f32);
    BE_SET(e, cd, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode);
    BE_SET(e, cd, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &nsp);
    BE_SET(e, cd, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, dil);
    BE_SET(e, cd, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, str);
    BE_SET(e, cd, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pre);
    BE_SET(e, cd, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, post);
    CK(e, cudnnBackendFinalize(cd));
    /* the stages after the convolution; the last one writes Y */
    int nst = 0;
    if (fused) {
        nst = (cv->has_bias ? 1 : 0) + (s->z >= 0 ? 1 : 0) + (s->act.kind != ACT_NONE ? 1 : 0);
    }
    int64_t uid = UID_T0;
    cudnnBackendDescriptor_t cur = Y;
    if (nst > 0 && (rc = be_tensor(e, l, &cur, uid++, f32, yd, true)))
        return rc;
    cudnnBackendDescriptor_t op;
    if ((rc = be_new(e, l, CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, &op)))
        return rc;
    float alpha = 1.0f, beta = 0.0f;
    BE_SET(e, op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &X);
    BE_SET(e, op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &W);
    BE_SET(e, op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cur);
    BE_SET(e, op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cd);
    BE_SET(e, op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha);
    BE_SET(e, op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta);
    CK(e, cudnnBackendFinalize(op));
    ops[nops++] = op;
    int done = 0;
    /* the order of the legacy ConvBiasAct (conv, + z, + bias, act), which cuDNN's pre-compiled
     * fused engines match */
    for (int stage = 0; stage < 3 && fused; stage++) {
        bool want = stage == 1 ? cv->has_bias : stage == 0 ? s->z >= 0 : s->act.kind != ACT_NONE;
        if (!want)
            continue;
        done++;
        cudnnBackendDescriptor_t out = Y;
        if (done < nst && (rc = be_tensor(e, l, &out, uid++, f32, yd, true)))
            return rc;
        if (stage == 1) {
            cudnnBackendDescriptor_t B;
            if ((rc = be_tensor(e, l, &B, UID_B, dt, bd, false)) ||
                (rc = be_pointwise(e, l, &op, CUDNN_POINTWISE_ADD, cur, B, out, 0, 0)))
                return rc;
        } else if (stage == 0) {
            cudnnBackendDescriptor_t Z;
            if ((rc = be_tensor(e, l, &Z, UID_Z, dt, yd, false)) ||
                (rc = be_pointwise(e, l, &op, CUDNN_POINTWISE_ADD, cur, Z, out, 0, 0)))
                return rc;
        } else {
            double lo = s->act.kind == ACT_RELU ? 0.0 : (double)s->act.lo;
            double hi = s->act.kind == ACT_RELU ? INFINITY : (double)s->act.hi;
            if (!isfinite(lo))
                lo = -3.0e38;
            if ((rc = be_pointwise(e, l, &op, CUDNN_POINTWISE_RELU_FWD, cur, NULL, out, lo, hi)))
                return rc;
        }
        ops[nops++] = op;
        cur = out;
    }
    if ((rc = be_new(e, l, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, og)))
        return rc;
    BE_SET(e, *og, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, nops, ops);
    BE_SET(e, *og, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &e->dnn);
    CK(e, cudnnBackendFinalize(*og));
    return 0;
}

/* The variant pack of step s (pointers are fixed once storages are planned). */
static int be_varpack(nx_exec *e, step *s, bool fused, cudnnBackendDescriptor_t *vp)
{
    conv_t *cv = s->conv;
    int64_t uids[5];
    void *ptrs[5];
    int n = 0;
    uids[n] = UID_X; ptrs[n++] = ptr_of(e, s->in[0]);
    uids[n] = UID_W; ptrs[n++] = cv->w;
    uids[n] = UID_Y; ptrs[n++] = ptr_of(e, s->out);
    if (fused && cv->has_bias) {
        uids[n] = UID_B;
        ptrs[n++] = cv->bias;
    }
    if (fused && s->z >= 0) {
        uids[n] = UID_Z;
        ptrs[n++] = ptr_of(e, s->z);
    }
    CK(e, cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, vp));
    hold(e, *vp);
    BE_SET(e, *vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids);
    BE_SET(e, *vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, ptrs);
    BE_SET(e, *vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &e->ws);
    CK(e, cudnnBackendFinalize(*vp));
    return 0;
}

/* Does an engine configuration compile its kernel at run time (NVRTC, slow to plan)? */
static bool be_rtc(cudnnBackendDescriptor_t cfg)
{
    cudnnBackendDescriptor_t eng;
    if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &eng) != CUDNN_STATUS_SUCCESS)
        return true;
    int64_t n = 0;
    bool rtc = false;
    if (cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                 &n, &eng) == CUDNN_STATUS_SUCCESS) {
        cudnnBackendBehaviorNote_t notes[CUDNN_BEHAVIOR_NOTE_TYPE_COUNT];
        int64_t nn = 0;
        if (cudnnBackendGetAttribute(eng, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                                     CUDNN_BEHAVIOR_NOTE_TYPE_COUNT, &nn, notes) == CUDNN_STATUS_SUCCESS)
            for (int i = 0; i < nn; i++)
                rtc |= notes[i] == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION;
    }
    cudnnBackendDestroyDescriptor(eng);
    return rtc;
}

/* Time the candidates of one variant; keep the fastest plan (and what it refers to) in
 * cv->plan[b] if it beats *best (ms, including our epilogue for the plain variant). */
static int be_tune_variant(nx_exec *e, step *s, int b, bool fused, float t_epi, float *best,
                           int *tried)
{
    conv_t *cv = s->conv;
    be_list l;
    l.n = 0;
    cudnnBackendDescriptor_t og, heur;
    int rc = be_conv_graph(e, &l, s, b, fused, &og);
    if (rc) {             /* a graph cuDNN cannot express: no candidates from this variant */
        be_free(&l);
        nx_err_clear(e->eb);
        return 0;
    }
    if (!cv->vp[fused] && (rc = be_varpack(e, s, fused, &cv->vp[fused]))) {
        be_free(&l);
        return rc;
    }
    cudnnBackendDescriptor_t cfgs[16];
    int64_t ncfg = 0;
    int want = e->candidates < 16 ? e->candidates : 16;
    cudnnBackendHeurMode_t hm = CUDNN_HEUR_MODE_A;
    bool ok = cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &heur) == CUDNN_STATUS_SUCCESS;
    if (ok) {
        ok = cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH,
                                      CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &og) == CUDNN_STATUS_SUCCESS &&
             cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1,
                                      &hm) == CUDNN_STATUS_SUCCESS &&
             cudnnBackendFinalize(heur) == CUDNN_STATUS_SUCCESS &&
             cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                      CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &ncfg, NULL) == CUDNN_STATUS_SUCCESS;
        if (ok) {
            if (ncfg > want)
                ncfg = want;
            int64_t got = 0;
            for (int i = 0; i < ncfg; i++)
                cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &cfgs[i]);
            if (cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, ncfg, &got, cfgs) != CUDNN_STATUS_SUCCESS)
                got = 0;
            for (int64_t i = got; i < ncfg; i++)
                cudnnBackendDestroyDescriptor(cfgs[i]);
            ncfg = got;
        }
        cudnnBackendDestroyDescriptor(heur);
    }
    if (!ok)
        ncfg = 0;
    for (int i = 0; i < ncfg; i++) {
        cudnnBackendDescriptor_t plan = NULL;
        bool keep = false;
        if (!e->allow_rtc && be_rtc(cfgs[i]))
            goto next;
        if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan) != CUDNN_STATUS_SUCCESS) {
            plan = NULL;
            goto next;
        }
        if (cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1,
                                     &e->dnn) != CUDNN_STATUS_SUCCESS ||
            cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                     CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfgs[i]) != CUDNN_STATUS_SUCCESS ||
            cudnnBackendFinalize(plan) != CUDNN_STATUS_SUCCESS)
            goto next;
        {
            int64_t wsz = 0, nw = 0;
            if (cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                         CUDNN_TYPE_INT64, 1, &nw, &wsz) != CUDNN_STATUS_SUCCESS ||
                wsz < 0 || (size_t)wsz > e->ws_size)
                goto next;
            cudnnBackendDescriptor_t vp = cv->vp[fused];
            float t = time_ms(e, 3, [&]() {
                return cudnnBackendExecute(e->dnn, plan, vp) != CUDNN_STATUS_SUCCESS;
            });
            cudaGetLastError();
            (*tried)++;
            if (t >= 0 && t + (fused ? 0.0f : t_epi) < *best) {
                /* (an earlier winner stays held, unused, until the executor is freed) */
                *best = t + (fused ? 0.0f : t_epi);
                cv->plan[b] = plan;
                cv->gvar[b] = fused;
                cv->algo[b] = ALGO_GRAPH;
                keep = true;
            }
        }
    next:
        if (keep) {
            hold(e, plan);
            hold(e, cfgs[i]);
        } else {
            if (plan)
                cudnnBackendDestroyDescriptor(plan);
            cudnnBackendDestroyDescriptor(cfgs[i]);
        }
    }
    /* the operation graph and its tensors stay alive as long as a plan made from them */
    if (cv->algo[b] == ALGO_GRAPH && cv->gvar[b] == (fused ? 1 : 0) && cv->plan[b]) {
        for (int i = 0; i < l.n; i++)
            hold(e, l.d[i]);
        l.n = 0;
    }
    be_free(&l);
    return 0;
}

static int tune_conv(nx_exec *e, step *s, int b)
{
    conv_t *cv = s->conv;
    int rc = conv_set_batch(e, cv, b);
    if (rc)
        return rc;
    void *x = ptr_of(e, s->in[0]), *y = ptr_of(e, s->out);
    long long n = (long long)b * cv->K * cv->OH * cv->OW;
    long long inner = e->conv_lay == LAY_NHWC ? 1 : (long long)cv->OH * cv->OW;
    bool epi = conv_has_epilogue(s);
    float t_epi = !epi ? 0.0f : time_ms(e, 3, [&]() {
        return k_bias_act(e->stream, e->dt, y, cv->has_bias ? cv->bias : NULL,
                          s->z >= 0 ? ptr_of(e, s->z) : NULL, n, cv->K, inner,
                          s->act) == cudaSuccess ? 0 : 1;
    });
    if (t_epi < 0)
        return fail(e, NX_ERR_IO, &e->g->n[s->node], "epilogue kernel failed: %s",
                    cudaGetErrorString(cudaGetLastError()));
    float best = INFINITY;
    int tried = 0;
    cv->algo[b] = ALGO_NONE;
    if (cv->w_dw) {
        dw_p p = dw_params(cv, b);
        float t = time_ms(e, 3, [&]() {
            return k_dwconv(e->stream, e->dt, x, cv->w_dw, cv->has_bias ? cv->bias : NULL,
                            s->z >= 0 ? ptr_of(e, s->z) : NULL, y, p, s->act) != cudaSuccess;
        });
        if (t >= 0) {
            best = t;
            cv->algo[b] = ALGO_DW;
        }
    }
    long long macs = (long long)b * cv->OH * cv->OW * cv->K * cv->R * cv->S * cv->Cg;
    if (e->conv_lay == LAY_NHWC && macs <= DIRECT_MAX_MACS) {
        dconv_p p = dconv_params(cv, b, cv->group);
        float t = time_ms(e, 3, [&]() {
            return k_dconv(e->stream, e->dt, x, cv->w, cv->has_bias ? cv->bias : NULL,
                           s->z >= 0 ? ptr_of(e, s->z) : NULL, y, p, s->act) != cudaSuccess;
        });
        if (t >= 0 && t < best) {
            best = t;
            cv->algo[b] = ALGO_DIRECT;
        }
        if (cv->w_t) {
            dconv_p p1 = dconv_params(cv, b, 1);
            t = time_ms(e, 3, [&]() {
                return k_dconv_px(e->stream, e->dt, x, cv->w_t, cv->has_bias ? cv->bias : NULL,
                                  s->z >= 0 ? ptr_of(e, s->z) : NULL, y, p1, s->act) != cudaSuccess;
            });
            if (t >= 0 && t < best) {
                best = t;
                cv->algo[b] = ALGO_DIRECT_PX;
            }
            t = time_ms(e, 3, [&]() {
                return k_dconv_tile(e->stream, e->dt, x, cv->w_t, cv->has_bias ? cv->bias : NULL,
                                    s->z >= 0 ? ptr_of(e, s->z) : NULL, y, p1, s->act) != cudaSuccess;
            });
            if (t >= 0 && t < best) {
                best = t;
                cv->algo[b] = ALGO_DIRECT_TILE;
            }
        }
    }
    if (e->conv_mode != CONV_LEGACY) {
        rc = be_tune_variant(e, s, b, false, t_epi, &best, &tried);
        if (!rc && epi && conv_fusable_graph(s))
            rc = be_tune_variant(e, s, b, true, t_epi, &best, &tried);
        if (rc)
            return rc;
    }
    /* in graph mode the legacy search runs too when the problem is small (it is quick, and
     * seen to win on tiny layers such as LeNet's) or when the graph API found nothing */
    if (e->conv_mode == CONV_GRAPH && cv->algo[b] != ALGO_NONE && best > 0.05f)
        return 0;
    /* the legacy API: cudnnFindConvolutionForwardAlgorithmEx, then the fused legacy call */
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int np = 0;
    CK(e, cudnnSetConvolutionMathType(cv->cd, e->dt == DT_F16 ? CUDNN_TENSOR_OP_MATH : CUDNN_DEFAULT_MATH));
    CK(e, cudnnFindConvolutionForwardAlgorithmEx(e->dnn, cv->xd, x, cv->wd, cv->w, cv->cd, cv->yd, y,
                                                 CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &np, perf,
                                                 e->ws, e->ws_size));
    int fused_tries = 0;
    for (int k = 0; k < np; k++) {
        if (perf[k].status != CUDNN_STATUS_SUCCESS || perf[k].memory > e->ws_size)
            continue;
        float tu = perf[k].time + t_epi;
        if (tu < best) {
            best = tu;
            cv->algo[b] = perf[k].algo;
            cv->math[b] = (unsigned char)perf[k].mathType;
            cv->fused[b] = 0;
        }
        /* the fused legacy call, for the three fastest algorithms */
        if (cv->fusable && epi && fused_tries < 3) {
            fused_tries++;
            float tf = time_ms(e, 3, [&]() {
                return quietly(e, [&]() {
                    return conv_call(e, s, b, perf[k].algo, perf[k].mathType, true);
                });
            });
            cudaGetLastError();
            if (tf >= 0 && tf < best) {
                best = tf;
                cv->algo[b] = perf[k].algo;
                cv->math[b] = (unsigned char)perf[k].mathType;
                cv->fused[b] = 1;
            }
        }
    }
    if (cv->algo[b] == ALGO_NONE)
        return fail(e, NX_ERR_NOTSUP, &e->g->n[s->node],
                    "no cuDNN engine runs this convolution at batch %d within %zu bytes of "
                    "workspace (%d graph-API plans tried)", b, e->ws_size, tried);
    return 0;
}

static int tune_gemm(nx_exec *e, step *s, int b)
{
    gemm_t *gm = s->gemm;
    int rc = gemm_set_batch(e, gm, b);
    if (rc)
        return rc;
    cublasLtMatmulPreference_t pref;
    CK(e, cublasLtMatmulPreferenceCreate(&pref));
    uint64_t wsz = e->ws_size;
    cublasLtMatmulHeuristicResult_t res[8];
    int nr = 0;
    cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsz, sizeof wsz);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulAlgoGetHeuristic(e->lt, gm->md, gm->la, gm->lb, gm->lc, gm->lc, pref, 8,
                                            res, &nr);
    cublasLtMatmulPreferenceDestroy(pref);
    CK(e, st);
    float best = INFINITY;
    for (int k = 0; k < nr; k++) {
        if (res[k].state != CUBLAS_STATUS_SUCCESS)
            continue;
        float t = time_ms(e, 3, [&]() {
            return quietly(e, [&]() { return gemm_call(e, s, &res[k].algo); });
        });
        if (t >= 0 && t < best) {
            best = t;
            gm->algo[b] = res[k].algo;
            gm->tuned[b] = 1;
        }
    }
    if (!gm->tuned[b])
        return fail(e, NX_ERR_NOTSUP, &e->g->n[s->node],
                    "cuBLASLt has no algorithm for %lld x %lld x %lld",
                    (long long)(gm->rows1 * b), (long long)gm->N, (long long)gm->K);
    return 0;
}

/* Tune (first time), run eagerly on real data, then capture the batch's CUDA graph. */
static int ensure_batch(nx_exec *e, int b)
{
    if (e->graphs[b])
        return 0;
    for (int i = 0; i < e->nst; i++) {
        step *s = &e->st[i];
        int rc = 0;
        if (s->kind == S_CONV && s->conv->algo[b] < 0)
            rc = tune_conv(e, s, b);
        else if (s->kind == S_GEMM && !s->gemm->tuned[b])
            rc = tune_gemm(e, s, b);
        if (!rc)
            rc = run_step(e, s, b);
        if (rc)
            return rc;
    }
    CK(e, cudaStreamSynchronize(e->stream));
    if (e->dump) {
        /* each step's time at this batch (eager, events around it) */
        for (int i = 0; i < e->nst; i++) {
            step *s = &e->st[i];
            float t = time_ms(e, 5, [&]() { return quietly(e, [&]() { return run_step(e, s, b); }); });
            fprintf(stderr, "  batch %d step %3d %-7s %-40s %8.1f us", b, i, kind_name[s->kind],
                    s->node >= 0 ? e->g->n[s->node].name : "(layout/staging)", t * 1000.0f);
            if (s->kind == S_CONV) {
                conv_t *cv = s->conv;
                if (cv->algo[b] == ALGO_DW)
                    fprintf(stderr, "  depthwise kernel");
                else if (cv->algo[b] == ALGO_DIRECT)
                    fprintf(stderr, "  direct kernel");
                else if (cv->algo[b] == ALGO_DIRECT_PX)
                    fprintf(stderr, "  direct kernel (per pixel)");
                else if (cv->algo[b] == ALGO_DIRECT_TILE)
                    fprintf(stderr, "  direct kernel (tiled)");
                else if (cv->algo[b] == ALGO_GRAPH)
                    fprintf(stderr, "  graph-API %s", cv->gvar[b] ? "fused" : "+epilogue");
                else
                    fprintf(stderr, "  legacy algo %d math %d %s", cv->algo[b], cv->math[b],
                            cv->fused[b] ? "fused" : "+epilogue");
            }
            fprintf(stderr, "\n");
        }
    }
    cudaGraph_t graph;
    CK(e, cudaStreamBeginCapture(e->stream, cudaStreamCaptureModeThreadLocal));
    int rc = 0;
    for (int i = 0; i < e->nst && !rc; i++)
        rc = run_step(e, &e->st[i], b);
    cudaError_t ce = cudaStreamEndCapture(e->stream, &graph);
    if (rc) {
        if (ce == cudaSuccess)
            cudaGraphDestroy(graph);
        cudaGetLastError();
        return rc;
    }
    CK(e, ce);
    cudaGraphExec_t ex;
    cudaError_t ie = cudaGraphInstantiate(&ex, graph, 0);
    cudaGraphDestroy(graph);
    CK(e, ie);
    e->graphs[b] = ex;
    CK(e, cudaGraphUpload(ex, e->stream));
    return 0;
}

/* ---- the ops table ------------------------------------------------------------------------ */

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

static int lower(nx_exec *e)
{
    const nx_graph *g = e->g;
    /* readers of every tensor */
    e->uses = (int *)nx_calloc((size_t)g->nt, sizeof(int));
    e->consumer = (int *)nx_malloc((size_t)g->nt * sizeof(int));
    e->pad_src = (int *)nx_malloc((size_t)g->nt * sizeof(int));
    e->expand_src = (int *)nx_malloc((size_t)g->nt * sizeof(int));
    e->absorbed = (bool *)nx_calloc((size_t)g->nn + 1, sizeof(bool));
    for (int i = 0; i < g->nt; i++)
        e->consumer[i] = e->pad_src[i] = e->expand_src[i] = -1;
    for (int i = 0; i < g->nn; i++) {
        const nx_node *n = &g->n[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->ninputs; k++)
            if (n->inputs[k] >= 0) {
                e->uses[n->inputs[k]]++;
                e->consumer[n->inputs[k]] = i;
            }
    }
    for (int i = 0; i < g->noutputs; i++)
        e->uses[g->outputs[i]] += 2;   /* never fused away */
    /* the graph's tensors */
    for (int i = 0; i < g->nt; i++) {
        const nx_tensor *t = &g->t[i];
        xtensor x;
        memset(&x, 0, sizeof x);
        x.name = t->name;
        x.nd = t->ndim;
        memcpy(x.d, t->dims, sizeof x.d);
        x.act = !t->is_const;
        x.dt = e->dt;
        x.layout = LAY_ROW;
        add_xt(e, &x);
        long long n = elems_at(&e->xt[i], e->max_batch);
        if (x.act && n >= (1LL << 31))
            return fail(e, NX_ERR_NOTSUP, NULL, "tensor '%s' has %lld elements at batch %d; the "
                        "kernels index with 32 bits (lower the maximum batch)", t->name, n,
                        e->max_batch);
    }
    /* inputs: fp32 NCHW staging; fp16 converts (NHWC for 4-D) */
    e->in_stage = (int *)nx_malloc((size_t)(g->ninputs + 1) * sizeof(int));
    e->out_stage = (int *)nx_malloc((size_t)(g->noutputs + 1) * sizeof(int));
    for (int i = 0; i < g->ninputs; i++) {
        int gi = g->inputs[i];
        xtensor st = e->xt[gi];
        st.dt = DT_F32;
        st.layout = LAY_ROW;
        st.avail = true;
        int si = add_xt(e, &st);
        e->xt[si].storage = make_storage(e, (size_t)elems_at(&st, e->max_batch) * 4, true);
        e->in_stage[i] = si;
        if (e->dt == DT_F32 && e->conv_lay == LAY_ROW) {
            e->xt[gi].storage = -2 - si;
            e->xt[gi].dt = DT_F32;
            e->xt[gi].avail = true;
        } else {
            step *s = add_step(e, S_COPY, -1);
            s->in[0] = si;
            s->nin = 1;
            s->out = gi;
            produce(e, gi, e->xt[gi].nd == 4 ? e->conv_lay : LAY_ROW);
        }
    }
    for (int i = 0; i < g->nn; i++) {
        if (g->n[i].dead || e->absorbed[i])
            continue;
        int rc = lower_node(e, i);
        if (rc)
            return rc;
    }
    for (int i = 0; i < g->noutputs; i++) {
        int go = g->outputs[i];
        if (!e->xt[go].avail)
            return fail(e, NX_ERR_CONFIG, NULL, "output '%s' is never computed", g->t[go].name);
        xtensor st = e->xt[go];
        st.dt = DT_F32;
        st.layout = LAY_ROW;
        int so = add_xt(e, &st);
        e->xt[so].storage = make_storage(e, (size_t)elems_at(&st, e->max_batch) * 4, true);
        e->out_stage[i] = so;
        step *s = add_step(e, S_COPY, -1);
        s->in[0] = go;
        s->nin = 1;
        s->out = so;
    }
    return 0;
}

static size_t workspace_need(nx_exec *e)
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

extern "C" const nx_exec_ops nx_exec_cuda_ops = {
    /* .name = */ "cuda",
    /* .init = */ cuda_init,
    /* .run = */ cuda_run,
    /* .memory = */ cuda_memory,
    /* .free = */ cuda_free,
    /* .bench = */ cuda_bench,
    /* .device = */ cuda_device,
};

/* cuda_lower.cu — lowering: the prepared graph as the CUDA executor's list of steps.
 *
 * lower() counts each tensor's readers, then turns every graph node into steps: a cuDNN
 * convolution, a cuBLASLt matrix product or one of our kernels (cuda_kernels.cu). It decides
 * the layouts (4-D activations NHWC, converted to row-major only where an operator needs it,
 * each conversion a step that makes a layout twin) and the fusions beyond prepare's: a
 * Relu/Clip into the Conv or Gemm before it, a residual Add (+Relu) into a Conv, Gemm bias +
 * Relu into cuBLASLt's epilogue, Pad(0) into AveragePool, an Expand into the broadcasting op
 * that reads it, a detection head's Reshape + Transpose over NHWC as a view, and
 * Flatten/Reshape/Identity/Dropout as views. Weights are uploaded here, converted to the
 * executor's precision and to the layouts our own convolution kernels read. The small
 * helpers on the executor's tensors (views, growth of its arrays, device allocation) are
 * here too. */
#include <cuda_fp16.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_int.h"

namespace nxc {

/* ---- small helpers ----------------------------------------------------------------------- */

long long elems_at(const xtensor *t, int batch)
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

view_t view_of(const xtensor *t, int batch)
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

void *grow(void *p, int *cap, int need, size_t size)
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

int dev_alloc(nx_exec *e, void **p, size_t bytes, const char *what)
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

int lower(nx_exec *e)
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

}  // namespace nxc

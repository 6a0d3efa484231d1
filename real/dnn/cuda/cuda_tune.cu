/* cuda_tune.cu — per-batch autotuning and the CUDA graph of each batch size.
 *
 * On a batch size's first use, each convolution is timed among cuDNN graph-API engines
 * (heuristics mode A, plain and fused variants), our depthwise and direct kernels, and for
 * small problems the legacy cudnnFindConvolutionForwardAlgorithmEx; each matrix product among
 * cuBLASLt's heuristic candidates, each timed on the step's own device buffers (filled
 * pseudo-randomly at load: never timed on zeros). ensure_batch() then runs the steps once
 * eagerly on real data and captures them into the batch's CUDA graph, which later runs replay.
 * The graph API's descriptors (operation graphs, engine configurations, plans, variant packs)
 * are built here and held until free. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_int.h"

namespace nxc {

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
int ensure_batch(nx_exec *e, int b)
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

}  // namespace nxc

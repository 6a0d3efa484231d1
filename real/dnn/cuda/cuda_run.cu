/* cuda_run.cu — enqueueing one step of the CUDA executor at a batch size.
 *
 * run_step() launches a step on the executor's stream with the algorithm tuning chose for
 * that batch: a convolution through a cuDNN graph-API plan (plain or with its epilogue
 * fused), the legacy cuDNN call, or our depthwise and direct kernels (bias, residual and
 * activation in their epilogue); a matrix product through cuBLASLt; everything else through
 * our kernels over strided views. It never synchronises and never allocates, so a batch's
 * steps can be captured into one CUDA graph. The per-batch descriptor updates and the
 * parameter blocks of our convolution kernels are here too, for tuning's use. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_int.h"

namespace nxc {

/* ---- running one step -------------------------------------------------------------------- */

/* Does the fused variant have anything to fuse, and can cuDNN's pointwise ops express it? */
bool conv_has_epilogue(const step *s)
{
    return s->conv->has_bias || s->z >= 0 || s->act.kind != ACT_NONE;
}

bool conv_fusable_graph(const step *s)
{
    return s->act.kind == ACT_NONE || s->act.kind == ACT_RELU || s->act.kind == ACT_CLIP;
}

dw_p dw_params(const conv_t *cv, int b)
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

dconv_p dconv_params(const conv_t *cv, int b, int group)
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

int conv_set_batch(nx_exec *e, conv_t *cv, int b)
{
    cudnnDataType_t cdt = e->dt == DT_F16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
    cudnnTensorFormat_t fmt = e->conv_lay == LAY_NHWC ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    CK(e, cudnnSetTensor4dDescriptor(cv->xd, fmt, cdt, b, cv->C, cv->H, cv->W));
    CK(e, cudnnSetTensor4dDescriptor(cv->yd, fmt, cdt, b, cv->K, cv->OH, cv->OW));
    return 0;
}

static const float f_one = 1.0f, f_zero = 0.0f;

/* conv with a given algorithm: fused (cuDNN bias+z+act) or plain + our epilogue */
int conv_call(nx_exec *e, step *s, int b, int algo, int math, bool fused)
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

int gemm_set_batch(nx_exec *e, gemm_t *gm, int b)
{
    uint64_t rows = (uint64_t)(gm->rows1 * b);
    CK(e, cublasLtMatrixLayoutSetAttribute(gm->lb, CUBLASLT_MATRIX_LAYOUT_COLS, &rows, sizeof rows));
    CK(e, cublasLtMatrixLayoutSetAttribute(gm->lc, CUBLASLT_MATRIX_LAYOUT_COLS, &rows, sizeof rows));
    return 0;
}

int gemm_call(nx_exec *e, step *s, const cublasLtMatmulAlgo_t *algo)
{
    gemm_t *gm = s->gemm;
    void *x = ptr_of(e, s->in[0]), *y = ptr_of(e, s->out);
    CK(e, cublasLtMatmul(e->lt, gm->md, &gm->alpha, gm->w, gm->la, x, gm->lb, &f_zero, y, gm->lc,
                         y, gm->lc, algo, e->ws, e->ws_size, e->stream));
    return 0;
}

int run_step(nx_exec *e, step *s, int b)
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

}  // namespace nxc

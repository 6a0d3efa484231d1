/* cpu_ops.c — the CPU executor's direct operators: depthwise convolution, pooling,
 * per-channel scale/shift, broadcasting arithmetic, concatenation, transposition, softmax,
 * padding, reductions, element-wise activations, copies, and the fp16 rounding used to
 * emulate half precision. Plain loops, written for clarity and for being obviously right
 * (this is the reference); the time goes into the GEMMs anyway. */
#include <math.h>
#include <string.h>

#include "cpu_ops.h"

float nx_half_round(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    uint32_t sign = u & 0x80000000u, a = u & 0x7fffffffu;
    if (a >= 0x7f800000u)
        return x;                              /* inf, nan */
    if (a >= 0x477ff000u)                      /* >= 65520: rounds past the largest half */
        return sign ? -INFINITY : INFINITY;
    if (a < 0x38800000u) {                     /* below 2^-14: half subnormals, step 2^-24 */
        float q = rintf(fabsf(x) * 16777216.0f) / 16777216.0f;
        return sign ? -q : q;
    }
    a += 0xfffu + ((a >> 13) & 1u);            /* round to nearest even at bit 13 */
    a &= ~0x1fffu;
    a |= sign;
    float r;
    memcpy(&r, &a, 4);
    return r;
}

void nx_round_half(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = nx_half_round(x[i]);
}

static inline float act(float v, nx_act a, float lo, float hi)
{
    if (a == NX_ACT_RELU)
        return v > 0.0f ? v : 0.0f;
    if (a == NX_ACT_CLIP)
        return v < lo ? lo : v > hi ? hi : v;
    return v;
}

/* Actual dims of tensor t at this batch. */
static void dims_at(const nx_tensor *t, int batch, int64_t *d)
{
    memcpy(d, t->dims, sizeof t->dims);
    if (!t->is_const && t->ndim > 0)
        d[0] = batch;
}

void nx_cpu_depthwise(const float *x, float *y, const float *w, const float *bias, int batch,
                      int c, int h, int wd, int oh, int ow, const nx_node *n,
                      const nx_gemm_epi *epi)
{
    int kh = (int)n->kernel[0], kw = (int)n->kernel[1];
    int sh = (int)n->strides[0], sw = (int)n->strides[1];
    int dh = (int)n->dilations[0], dw = (int)n->dilations[1];
    int pt = (int)n->pads[0], pl = (int)n->pads[1];
    for (int b = 0; b < batch; b++)
        for (int ch = 0; ch < c; ch++) {
            const float *xi = x + ((size_t)b * c + ch) * (size_t)h * wd;
            float *yo = y + ((size_t)b * c + ch) * (size_t)oh * ow;
            const float *wk = w + (size_t)ch * kh * kw;
            float b0 = bias ? bias[ch] : 0.0f;
            /* row by row: each tap adds a weighted input row segment to the output row (the
             * same summation order per pixel as a tap loop per pixel) */
            for (int oy = 0; oy < oh; oy++) {
                float *yr = yo + (size_t)oy * ow;
                for (int ox = 0; ox < ow; ox++)
                    yr[ox] = 0.0f;
                for (int ky = 0; ky < kh; ky++) {
                    int iy = oy * sh - pt + ky * dh;
                    if (iy < 0 || iy >= h)
                        continue;
                    const float *xr = xi + (size_t)iy * wd;
                    for (int kx = 0; kx < kw; kx++) {
                        float wv = wk[ky * kw + kx];
                        int off = kx * dw - pl;   /* input column of output column 0 */
                        int lo = off < 0 ? (-off + sw - 1) / sw : 0;
                        int hi = off < wd ? (wd - 1 - off) / sw + 1 : 0;
                        hi = hi < ow ? hi : ow;
                        if (sw == 1)
                            for (int ox = lo; ox < hi; ox++)
                                yr[ox] += xr[ox + off] * wv;
                        else
                            for (int ox = lo; ox < hi; ox++)
                                yr[ox] += xr[ox * sw + off] * wv;
                    }
                }
                for (int ox = 0; ox < ow; ox++)
                    yr[ox] = act(yr[ox] + b0, epi->act, epi->lo, epi->hi);
            }
        }
}

void nx_cpu_scale_shift(const nx_graph *g, int node, int batch, const float *x, float *y,
                        const float *scale, const float *shift)
{
    const nx_node *n = &g->n[node];
    const nx_tensor *t = &g->t[n->inputs[0]];
    size_t ch = (size_t)t->dims[1], inner = nx_dims_elems(t->dims + 2, t->ndim - 2);
    for (int b = 0; b < batch; b++)
        for (size_t c = 0; c < ch; c++) {
            size_t o = ((size_t)b * ch + c) * inner;
            for (size_t i = 0; i < inner; i++)
                y[o + i] = act(x[o + i] * scale[c] + shift[c], n->act, n->act_min, n->act_max);
        }
}

/* ---- broadcasting ---------------------------------------------------------------------- */

/* Strides of t (batch-resolved) aligned right to an output of rank nd and dims od; 0 where
 * t broadcasts. */
static void bcast_strides(const nx_tensor *t, int batch, int nd, const int64_t *od, int64_t *s)
{
    int64_t d[NX_DNN_MAX_DIMS];
    dims_at(t, batch, d);
    int64_t st = 1;
    for (int i = nd - 1; i >= 0; i--) {
        int ti = i - (nd - t->ndim);
        if (ti < 0) {
            s[i] = 0;
            continue;
        }
        s[i] = d[ti] == 1 && od[i] != 1 ? 0 : st;
        st *= d[ti];
    }
}

typedef enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, BIN_COPY } bin_op;

static void bcast_run(bin_op op, const float *a, const int64_t *sa, const float *b,
                      const int64_t *sb, float *y, const int64_t *od, int nd, const nx_node *n)
{
    int64_t inner = od[nd - 1], ia = sa[nd - 1], ib = b ? sb[nd - 1] : 0;
    size_t outer = nx_dims_elems(od, nd - 1);
    int64_t idx[NX_DNN_MAX_DIMS] = {0};
    nx_act ac = n ? n->act : NX_ACT_NONE;
    float lo = n ? n->act_min : 0, hi = n ? n->act_max : 0;
    for (size_t o = 0; o < outer; o++) {
        int64_t oa = 0, ob = 0;
        for (int k = 0; k < nd - 1; k++) {
            oa += idx[k] * sa[k];
            if (b)
                ob += idx[k] * sb[k];
        }
        const float *pa = a + oa, *pb = b ? b + ob : NULL;
        float *py = y + o * (size_t)inner;
        switch (op) {
        case BIN_ADD:
            for (int64_t j = 0; j < inner; j++)
                py[j] = act(pa[j * ia] + pb[j * ib], ac, lo, hi);
            break;
        case BIN_SUB:
            for (int64_t j = 0; j < inner; j++)
                py[j] = act(pa[j * ia] - pb[j * ib], ac, lo, hi);
            break;
        case BIN_MUL:
            for (int64_t j = 0; j < inner; j++)
                py[j] = act(pa[j * ia] * pb[j * ib], ac, lo, hi);
            break;
        case BIN_DIV:
            for (int64_t j = 0; j < inner; j++)
                py[j] = act(pa[j * ia] / pb[j * ib], ac, lo, hi);
            break;
        case BIN_COPY:
            for (int64_t j = 0; j < inner; j++)
                py[j] = pa[j * ia];
            break;
        }
        for (int k = nd - 2; k >= 0; k--) {   /* odometer over the outer dims */
            if (++idx[k] < od[k])
                break;
            idx[k] = 0;
        }
    }
}

void nx_cpu_binary(const nx_graph *g, int node, int batch, const float *a, const float *b,
                   float *y)
{
    const nx_node *n = &g->n[node];
    const nx_tensor *yt = &g->t[n->outputs[0]];
    int64_t od[NX_DNN_MAX_DIMS], sa[NX_DNN_MAX_DIMS], sb[NX_DNN_MAX_DIMS];
    dims_at(yt, batch, od);
    bcast_strides(&g->t[n->inputs[0]], batch, yt->ndim, od, sa);
    bcast_strides(&g->t[n->inputs[1]], batch, yt->ndim, od, sb);
    bin_op op = n->op == NX_OP_ADD ? BIN_ADD : n->op == NX_OP_SUB ? BIN_SUB
              : n->op == NX_OP_MUL ? BIN_MUL : BIN_DIV;
    bcast_run(op, a, sa, b, sb, y, od, yt->ndim, n);
}

/* ---- pooling --------------------------------------------------------------------------- */

static void pool(const nx_node *n, const nx_tensor *xt, const nx_tensor *yt, int batch,
                 const float *x, float *y)
{
    int c = (int)xt->dims[1], h = (int)xt->dims[2], w = (int)xt->dims[3];
    int oh = (int)yt->dims[2], ow = (int)yt->dims[3];
    int kh = (int)n->kernel[0], kw = (int)n->kernel[1], sh = (int)n->strides[0],
        sw = (int)n->strides[1];
    int pt = (int)n->pads[0], pl = (int)n->pads[1], pb = (int)n->pads[2], pr = (int)n->pads[3];
    bool is_max = n->op == NX_OP_MAXPOOL;
    for (int b = 0; b < batch; b++)
        for (int ch = 0; ch < c; ch++) {
            const float *xi = x + ((size_t)b * c + ch) * (size_t)h * w;
            float *yo = y + ((size_t)b * c + ch) * (size_t)oh * ow;
            for (int oy = 0; oy < oh; oy++) {
                int hs = oy * sh - pt, he = NX_MIN(hs + kh, h + pb);
                int hs0 = NX_MAX(hs, 0), he0 = NX_MIN(he, h);
                for (int ox = 0; ox < ow; ox++) {
                    int ws = ox * sw - pl, we = NX_MIN(ws + kw, w + pr);
                    int ws0 = NX_MAX(ws, 0), we0 = NX_MIN(we, w);
                    float acc = is_max ? -INFINITY : 0.0f;
                    for (int iy = hs0; iy < he0; iy++)
                        for (int ix = ws0; ix < we0; ix++) {
                            float v = xi[iy * w + ix];
                            if (is_max)
                                acc = v > acc ? v : acc;
                            else
                                acc += v;
                        }
                    if (!is_max) {
                        int cnt = n->count_include_pad ? (he - hs) * (we - ws)
                                                       : (he0 - hs0) * (we0 - ws0);
                        acc = cnt > 0 ? acc / (float)cnt : 0.0f;
                    }
                    yo[oy * ow + ox] = acc;
                }
            }
        }
}

/* ---- everything else ------------------------------------------------------------------- */

static void transpose(const nx_node *n, const nx_tensor *xt, int batch, const float *x, float *y)
{
    int nd = xt->ndim;
    int64_t xd[NX_DNN_MAX_DIMS], xs[NX_DNN_MAX_DIMS], od[NX_DNN_MAX_DIMS], os[NX_DNN_MAX_DIMS];
    dims_at(xt, batch, xd);
    xs[nd - 1] = 1;
    for (int i = nd - 2; i >= 0; i--)
        xs[i] = xs[i + 1] * xd[i + 1];
    for (int i = 0; i < nd; i++) {
        od[i] = xd[n->perm[i]];
        os[i] = xs[n->perm[i]];   /* input stride of output dim i */
    }
    /* the output in order: input strides os[] over dims od[] */
    bcast_run(BIN_COPY, x, os, NULL, NULL, y, od, nd, NULL);
}

static void softmax(const nx_node *n, const nx_tensor *xt, int batch, const float *x, float *y)
{
    int64_t d[NX_DNN_MAX_DIMS];
    dims_at(xt, batch, d);
    size_t outer = nx_dims_elems(d, (int)n->axis), len = (size_t)d[n->axis],
           inner = nx_dims_elems(d + n->axis + 1, xt->ndim - (int)n->axis - 1);
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            const float *xp = x + o * len * inner + i;
            float *yp = y + o * len * inner + i;
            float mx = -INFINITY;
            for (size_t k = 0; k < len; k++)
                mx = xp[k * inner] > mx ? xp[k * inner] : mx;
            double sum = 0;
            for (size_t k = 0; k < len; k++) {
                float e = expf(xp[k * inner] - mx);
                yp[k * inner] = e;
                sum += e;
            }
            float inv = (float)(1.0 / sum);
            for (size_t k = 0; k < len; k++)
                yp[k * inner] *= inv;
        }
}

static void reduce(const nx_node *n, const nx_tensor *xt, int batch, const float *x, float *y,
                   size_t ny)
{
    int nd = xt->ndim;
    int64_t d[NX_DNN_MAX_DIMS], os[NX_DNN_MAX_DIMS];
    bool red[NX_DNN_MAX_DIMS] = {0};
    dims_at(xt, batch, d);
    for (int i = 0; i < n->naxes; i++)
        red[n->axes[i]] = true;
    /* output strides over the input's dims (keepdims layout; 0 on reduced axes) */
    int64_t st = 1;
    for (int i = nd - 1; i >= 0; i--) {
        os[i] = red[i] ? 0 : st;
        st *= red[i] ? 1 : d[i];
    }
    memset(y, 0, ny * sizeof *y);
    size_t total = nx_dims_elems(d, nd), cnt = 1;
    for (int i = 0; i < nd; i++)
        if (red[i])
            cnt *= (size_t)d[i];
    int64_t idx[NX_DNN_MAX_DIMS] = {0};
    bool l2 = n->op == NX_OP_REDUCEL2;
    for (size_t e = 0; e < total; e++) {
        int64_t o = 0;
        for (int k = 0; k < nd; k++)
            o += idx[k] * os[k];
        y[o] += l2 ? x[e] * x[e] : x[e];
        for (int k = nd - 1; k >= 0; k--) {
            if (++idx[k] < d[k])
                break;
            idx[k] = 0;
        }
    }
    for (size_t i = 0; i < ny; i++)
        y[i] = l2 ? sqrtf(y[i]) : y[i] / (float)cnt;
}

void nx_cpu_op(const nx_graph *g, int node, int batch, const float *x, float *y)
{
    const nx_node *n = &g->n[node];
    const nx_tensor *xt = &g->t[n->inputs[0]], *yt = &g->t[n->outputs[0]];
    size_t nx = nx_tensor_elems(xt, batch), ny = nx_tensor_elems(yt, batch);
    switch (n->op) {
    case NX_OP_RELU:
        for (size_t i = 0; i < nx; i++)
            y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case NX_OP_CLIP:
        for (size_t i = 0; i < nx; i++)
            y[i] = x[i] < n->clip_min ? n->clip_min : x[i] > n->clip_max ? n->clip_max : x[i];
        break;
    case NX_OP_SIGMOID:
        for (size_t i = 0; i < nx; i++)
            y[i] = 1.0f / (1.0f + expf(-x[i]));
        break;
    case NX_OP_MAXPOOL:
    case NX_OP_AVGPOOL:
        pool(n, xt, yt, batch, x, y);
        break;
    case NX_OP_GLOBALAVGPOOL: {
        size_t inner = nx_dims_elems(xt->dims + 2, xt->ndim - 2);
        for (size_t o = 0; o < ny; o++) {
            double s = 0;
            for (size_t i = 0; i < inner; i++)
                s += x[o * inner + i];
            y[o] = (float)(s / (double)inner);
        }
        break;
    }
    case NX_OP_TRANSPOSE:
        transpose(n, xt, batch, x, y);
        break;
    case NX_OP_SOFTMAX:
        softmax(n, xt, batch, x, y);
        break;
    case NX_OP_FLATTEN:
    case NX_OP_RESHAPE:
    case NX_OP_IDENTITY:
    case NX_OP_DROPOUT:
        if (x != y)
            memmove(y, x, nx * sizeof *y);
        break;
    case NX_OP_EXPAND: {
        int64_t od[NX_DNN_MAX_DIMS], sa[NX_DNN_MAX_DIMS];
        dims_at(yt, batch, od);
        bcast_strides(xt, batch, yt->ndim, od, sa);
        bcast_run(BIN_COPY, x, sa, NULL, NULL, y, od, yt->ndim, NULL);
        break;
    }
    case NX_OP_PAD: {
        int64_t d[NX_DNN_MAX_DIMS];
        dims_at(xt, batch, d);
        int h = (int)d[2], w = (int)d[3], oh = (int)yt->dims[2], ow = (int)yt->dims[3];
        int pt = (int)n->pads[0], pl = (int)n->pads[1];
        size_t planes = (size_t)d[0] * (size_t)d[1];
        for (size_t p = 0; p < planes; p++) {
            float *yo = y + p * (size_t)oh * ow;
            const float *xi = x + p * (size_t)h * w;
            for (int i = 0; i < oh * ow; i++)
                yo[i] = n->pad_value;
            for (int iy = 0; iy < h; iy++)
                memcpy(yo + (size_t)(iy + pt) * ow + pl, xi + (size_t)iy * w, (size_t)w * sizeof *y);
        }
        break;
    }
    case NX_OP_REDUCEL2:
    case NX_OP_REDUCEMEAN:
        reduce(n, xt, batch, x, y, ny);
        break;
    default:
        NX_ASSERT(!"operator without a CPU implementation");
    }
}

void nx_cpu_concat(const nx_graph *g, int node, int batch, const float *const *xs, float *y)
{
    const nx_node *n = &g->n[node];
    const nx_tensor *yt = &g->t[n->outputs[0]];
    int64_t d[NX_DNN_MAX_DIMS];
    dims_at(yt, batch, d);
    size_t outer = nx_dims_elems(d, (int)n->axis);
    size_t yinner = nx_dims_elems(d + n->axis, yt->ndim - (int)n->axis), off = 0;
    for (int k = 0; k < n->ninputs; k++) {
        const nx_tensor *t = &g->t[n->inputs[k]];
        size_t inner = nx_dims_elems(t->dims + n->axis, t->ndim - (int)n->axis);
        for (size_t o = 0; o < outer; o++)
            memcpy(y + o * yinner + off, xs[k] + o * inner, inner * sizeof *y);
        off += inner;
    }
}

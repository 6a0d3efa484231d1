/* cpu.c — the CPU executor (nx_exec_cpu_ops): the reference every other executor is compared
 * against, and what CI runs.
 *
 * init() walks the prepared graph once and reserves everything a batch of g->max_batch needs:
 * one float array per planned buffer, the GEMM packing workspace, and per node its packed
 * weights (Conv per group, Gemm/MatMul) or precomputed parameters (BatchNormalization's
 * scale and shift). run() executes the live nodes in order on the host and allocates nothing.
 * Convolutions are GEMMs (gemm.c) that read the input image as its im2col matrix while
 * packing; depthwise convolutions have a direct loop. Everything else is in cpu_ops.c.
 *
 * fp16 is emulated: weights, inputs and every node's output are rounded to the nearest
 * half-precision value (arithmetic stays fp32), which is what a GPU executor storing fp16
 * tensors does, give or take its accumulation order. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_ops.h"
#include "gemm.h"

typedef struct cpu_node {
    nx_gemm_a *a;         /* Conv: one per group; Gemm/MatMul: one */
    int na;
    float *bias;          /* Conv/Gemm: per output channel (beta folded), or NULL */
    float *scale, *shift; /* BatchNormalization */
    float *w;             /* depthwise Conv: [C][kh][kw] */
    float *cin[2];        /* fp16: rounded copies of constant inputs of elementwise ops */
} cpu_node;

struct nx_exec {
    const nx_graph *g;
    nx_precision prec;
    float **buf;          /* per planned buffer */
    float **in16;         /* fp16: rounded copies of the graph inputs */
    float *work;          /* GEMM packing */
    cpu_node *cn;
    size_t mem;
    char device[128];
};

static void *alloc_tracked(nx_exec *e, size_t bytes)
{
    e->mem += bytes;
    return nx_malloc(bytes);
}

/* Data of constant tensor t as node i reads it (fp16: a rounded copy made at init). */
static const float *const_data(const nx_exec *e, int i, int k)
{
    const cpu_node *c = &e->cn[i];
    if (k < 2 && c->cin[k])
        return c->cin[k];
    return e->g->t[e->g->n[i].inputs[k]].data;
}

static float *rounded_copy(nx_exec *e, const float *src, size_t n)
{
    float *d = alloc_tracked(e, n * sizeof *d);
    memcpy(d, src, n * sizeof *d);
    nx_round_half(d, n);
    return d;
}

static int prep_conv(nx_exec *e, int i, nx_errbuf *eb)
{
    const nx_graph *g = e->g;
    const nx_node *n = &g->n[i];
    cpu_node *c = &e->cn[i];
    const nx_tensor *x = &g->t[n->inputs[0]], *w = &g->t[n->inputs[1]];
    int m = (int)w->dims[0], cg = (int)w->dims[1], kh = (int)w->dims[2], kw = (int)w->dims[3];
    int groups = (int)n->group, mg = m / groups;
    const float *wd = w->data;
    if (n->ninputs >= 3 && n->inputs[2] >= 0) {
        c->bias = alloc_tracked(e, (size_t)m * sizeof(float));
        memcpy(c->bias, g->t[n->inputs[2]].data, (size_t)m * sizeof(float));
        if (e->prec == NX_PREC_FP16)
            nx_round_half(c->bias, (size_t)m);
    }
    if (groups > 1 && cg == 1 && mg == 1 && x->dims[1] == m) {
        /* depthwise */
        size_t nw = (size_t)m * (size_t)kh * (size_t)kw;
        c->w = alloc_tracked(e, nw * sizeof(float));
        memcpy(c->w, wd, nw * sizeof(float));
        if (e->prec == NX_PREC_FP16)
            nx_round_half(c->w, nw);
        return 0;
    }
    int k = cg * kh * kw;
    c->na = groups;
    c->a = nx_calloc((size_t)groups, sizeof *c->a);
    for (int gi = 0; gi < groups; gi++) {
        nx_gemm_pack_a(&c->a[gi], wd + (size_t)gi * (size_t)mg * (size_t)k, mg, k, k, 1, 1.0f);
        size_t sz = (size_t)c->a[gi].mp * (size_t)k;
        e->mem += sz * sizeof(float);
        if (e->prec == NX_PREC_FP16)
            nx_round_half(c->a[gi].p, sz);
    }
    (void)eb;
    return 0;
}

static int prep_gemm(nx_exec *e, int i, nx_errbuf *eb)
{
    const nx_graph *g = e->g;
    const nx_node *n = &g->n[i];
    cpu_node *c = &e->cn[i];
    const nx_tensor *w = &g->t[n->inputs[1]];
    bool tb = n->op == NX_OP_GEMM && n->trans_b;
    int kdim = (int)(tb ? w->dims[1] : w->dims[0]), nout = (int)(tb ? w->dims[0] : w->dims[1]);
    float alpha = n->op == NX_OP_GEMM ? n->alpha : 1.0f;
    c->na = 1;
    c->a = nx_calloc(1, sizeof *c->a);
    /* A(i, k) = W'(i, k): the output features are the rows */
    if (tb)
        nx_gemm_pack_a(c->a, w->data, nout, kdim, kdim, 1, alpha);
    else
        nx_gemm_pack_a(c->a, w->data, nout, kdim, 1, nout, alpha);
    size_t sz = (size_t)c->a->mp * (size_t)kdim;
    e->mem += sz * sizeof(float);
    if (e->prec == NX_PREC_FP16)
        nx_round_half(c->a->p, sz);
    if (n->op == NX_OP_GEMM && n->ninputs >= 3 && n->inputs[2] >= 0) {
        const nx_tensor *ct = &g->t[n->inputs[2]];
        const float *cd = ct->data;
        bool scalar = nx_dims_elems(ct->dims, ct->ndim) == 1;
        c->bias = alloc_tracked(e, (size_t)nout * sizeof(float));
        for (int j = 0; j < nout; j++)
            c->bias[j] = n->beta * cd[scalar ? 0 : j];
        if (e->prec == NX_PREC_FP16)
            nx_round_half(c->bias, (size_t)nout);
    }
    (void)eb;
    return 0;
}

static int prep_bn(nx_exec *e, int i)
{
    const nx_graph *g = e->g;
    const nx_node *n = &g->n[i];
    cpu_node *c = &e->cn[i];
    int ch = (int)g->t[n->inputs[0]].dims[1];
    const float *gamma = g->t[n->inputs[1]].data, *beta = g->t[n->inputs[2]].data,
                *mean = g->t[n->inputs[3]].data, *var = g->t[n->inputs[4]].data;
    c->scale = alloc_tracked(e, (size_t)ch * sizeof(float));
    c->shift = alloc_tracked(e, (size_t)ch * sizeof(float));
    for (int k = 0; k < ch; k++) {
        double s = gamma[k] / sqrt((double)var[k] + n->epsilon);
        c->scale[k] = (float)s;
        c->shift[k] = (float)(beta[k] - mean[k] * s);
    }
    if (e->prec == NX_PREC_FP16) {
        nx_round_half(c->scale, (size_t)ch);
        nx_round_half(c->shift, (size_t)ch);
    }
    return 0;
}

static void exec_free(nx_exec *e)
{
    if (!e)
        return;
    const nx_graph *g = e->g;
    if (e->cn) {
        for (int i = 0; i < g->nn; i++) {
            cpu_node *c = &e->cn[i];
            for (int k = 0; k < c->na; k++)
                nx_gemm_a_free(&c->a[k]);
            free(c->a);
            free(c->bias);
            free(c->scale);
            free(c->shift);
            free(c->w);
            free(c->cin[0]);
            free(c->cin[1]);
        }
    }
    if (e->buf)
        for (int k = 0; k < g->nbuffers; k++)
            free(e->buf[k]);
    if (e->in16)
        for (int k = 0; k < g->ninputs; k++)
            free(e->in16[k]);
    free(e->in16);
    free(e->buf);
    free(e->work);
    free(e->cn);
    free(e);
}

static int init(nx_exec **out, const nx_graph *g, nx_precision prec, int device, nx_errbuf *eb)
{
    *out = NULL;
    if (g->max_batch < 1 || !g->buffer_elems) {
        nx_err_set(eb, NX_ERR_INVAL, "%s: the graph is not prepared (nx_graph_prepare)",
                   g->name ? g->name : "model");
        return NX_ERR_INVAL;
    }
    if (prec != NX_PREC_FP32 && prec != NX_PREC_FP16) {
        nx_err_set(eb, NX_ERR_INVAL, "unknown precision %d", (int)prec);
        return NX_ERR_INVAL;
    }
    nx_exec *e = nx_calloc(1, sizeof *e);
    e->g = g;
    e->prec = prec;
    e->cn = nx_calloc((size_t)g->nn, sizeof *e->cn);
    e->buf = nx_calloc((size_t)(g->nbuffers ? g->nbuffers : 1), sizeof *e->buf);
    for (int k = 0; k < g->nbuffers; k++)
        e->buf[k] = alloc_tracked(e, (g->buffer_elems[k] ? g->buffer_elems[k] : 1) * sizeof(float));
    e->work = aligned_alloc(64, nx_gemm_work_size());
    if (!e->work) {
        exec_free(e);
        nx_err_set(eb, NX_ERR_NOMEM, "out of memory for the GEMM workspace");
        return NX_ERR_NOMEM;
    }
    e->mem += nx_gemm_work_size();
    if (prec == NX_PREC_FP16) {
        e->in16 = nx_calloc((size_t)g->ninputs, sizeof *e->in16);
        for (int k = 0; k < g->ninputs; k++)
            e->in16[k] = alloc_tracked(e, nx_tensor_elems(&g->t[g->inputs[k]], g->max_batch) *
                                              sizeof(float));
    }
    for (int i = 0; i < g->nn; i++) {
        const nx_node *n = &g->n[i];
        if (n->dead)
            continue;
        int rc = 0;
        switch (n->op) {
        case NX_OP_CONV:
            rc = prep_conv(e, i, eb);
            break;
        case NX_OP_GEMM:
        case NX_OP_MATMUL:
            rc = prep_gemm(e, i, eb);
            break;
        case NX_OP_BATCHNORM:
            rc = prep_bn(e, i);
            break;
        case NX_OP_ADD:
        case NX_OP_SUB:
        case NX_OP_MUL:
        case NX_OP_DIV:
            if (prec == NX_PREC_FP16)
                for (int k = 0; k < 2; k++) {
                    const nx_tensor *t = &g->t[n->inputs[k]];
                    if (t->is_const)
                        e->cn[i].cin[k] = rounded_copy(e, t->data, nx_dims_elems(t->dims, t->ndim));
                }
            break;
        default:
            if ((int)n->op < 0 || n->op >= NX_OP_COUNT_BASE) {
                nx_err_set(eb, NX_ERR_NOTSUP, "node '%s': unknown operator %d", n->name, (int)n->op);
                rc = NX_ERR_NOTSUP;
            }
            break;
        }
        if (rc) {
            exec_free(e);
            return rc;
        }
    }
    (void)device;
    snprintf(e->device, sizeof e->device, "CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        char *v = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && v) {
            v += 1 + strspn(v + 1, " \t");
            v[strcspn(v, "\n")] = 0;
            snprintf(e->device, sizeof e->device, "%s", v);
            break;
        }
    }
    if (f)
        fclose(f);
    *out = e;
    return 0;
}

/* ---- run ------------------------------------------------------------------------------- */

typedef struct run_ctx {
    nx_exec *e;
    int batch;
    const float *const *in;
} run_ctx;

static const float *src(const run_ctx *r, int node, int k)
{
    const nx_graph *g = r->e->g;
    int t = g->n[node].inputs[k];
    const nx_tensor *x = &g->t[t];
    if (x->is_const)
        return const_data(r->e, node, k);
    if (x->is_input) {
        for (int i = 0; i < g->ninputs; i++)
            if (g->inputs[i] == t)
                return r->e->in16 ? r->e->in16[i] : r->in[i];
    }
    return r->e->buf[x->buffer];
}

static float *dst(const run_ctx *r, int node)
{
    const nx_graph *g = r->e->g;
    return r->e->buf[g->t[g->n[node].outputs[0]].buffer];
}

static void run_conv(const run_ctx *r, int i, const float *x, float *y)
{
    nx_exec *e = r->e;
    const nx_graph *g = e->g;
    const nx_node *n = &g->n[i];
    const cpu_node *c = &e->cn[i];
    const nx_tensor *xt = &g->t[n->inputs[0]], *yt = &g->t[n->outputs[0]];
    const nx_tensor *wt = &g->t[n->inputs[1]];
    int ci = (int)xt->dims[1], h = (int)xt->dims[2], w = (int)xt->dims[3];
    int m = (int)yt->dims[1], oh = (int)yt->dims[2], ow = (int)yt->dims[3];
    nx_gemm_epi epi = {.act = n->act, .lo = n->act_min, .hi = n->act_max};
    if (c->w) {
        nx_cpu_depthwise(x, y, c->w, c->bias, r->batch, ci, h, w, oh, ow, n, &epi);
        return;
    }
    int groups = (int)n->group, cg = (int)wt->dims[1], mg = m / groups;
    int kh = (int)n->kernel[0], kw = (int)n->kernel[1];
    bool pointwise = kh == 1 && kw == 1 && n->strides[0] == 1 && n->strides[1] == 1 &&
                     !(n->pads[0] | n->pads[1] | n->pads[2] | n->pads[3]);
    size_t in_img = (size_t)ci * (size_t)h * (size_t)w, out_img = (size_t)m * (size_t)oh * (size_t)ow;
    for (int b = 0; b < r->batch; b++) {
        for (int gi = 0; gi < groups; gi++) {
            const float *xg = x + (size_t)b * in_img + (size_t)gi * (size_t)cg * (size_t)h * (size_t)w;
            float *yg = y + (size_t)b * out_img + (size_t)gi * (size_t)mg * (size_t)oh * (size_t)ow;
            nx_gemm_b src_b = {.p = xg};
            if (pointwise) {
                src_b.rs = (ptrdiff_t)h * w;
                src_b.cs = 1;
            } else {
                src_b.c = cg;
                src_b.h = h;
                src_b.w = w;
                src_b.kh = kh;
                src_b.kw = kw;
                src_b.sh = (int)n->strides[0];
                src_b.sw = (int)n->strides[1];
                src_b.dh = (int)n->dilations[0];
                src_b.dw = (int)n->dilations[1];
                src_b.pt = (int)n->pads[0];
                src_b.pl = (int)n->pads[1];
                src_b.oh = oh;
                src_b.ow = ow;
            }
            epi.bias_row = c->bias ? c->bias + (size_t)gi * (size_t)mg : NULL;
            nx_gemm(&c->a[gi], &src_b, oh * ow, yg, (ptrdiff_t)oh * ow, 1, &epi, e->work);
        }
    }
}

static void run_gemm(const run_ctx *r, int i, const float *x, float *y)
{
    const nx_graph *g = r->e->g;
    const nx_node *n = &g->n[i];
    const cpu_node *c = &r->e->cn[i];
    const nx_tensor *xt = &g->t[n->inputs[0]];
    int k = c->a->k, nout = c->a->m;
    int rows = (int)(nx_tensor_elems(xt, r->batch) / (size_t)k);
    nx_gemm_b b = {.p = x, .rs = 1, .cs = k};
    nx_gemm_epi epi = {.bias_row = c->bias, .act = n->act, .lo = n->act_min, .hi = n->act_max};
    nx_gemm(c->a, &b, rows, y, 1, nout, &epi, r->e->work);
}

static int run(nx_exec *e, int batch, const float *const *in, float *const *out, nx_errbuf *eb)
{
    const nx_graph *g = e->g;
    if (batch < 1 || batch > g->max_batch) {
        nx_err_set(eb, NX_ERR_INVAL, "batch %d out of range (1..%d, the prepared maximum)", batch,
                   g->max_batch);
        return NX_ERR_INVAL;
    }
    run_ctx r = {.e = e, .batch = batch, .in = in};
    if (e->in16)
        for (int k = 0; k < g->ninputs; k++) {
            size_t n = nx_tensor_elems(&g->t[g->inputs[k]], batch);
            memcpy(e->in16[k], in[k], n * sizeof(float));
            nx_round_half(e->in16[k], n);
        }
    for (int i = 0; i < g->nn; i++) {
        const nx_node *n = &g->n[i];
        if (n->dead)
            continue;
        const float *x = src(&r, i, 0);
        float *y = dst(&r, i);
        const nx_tensor *yt = &g->t[n->outputs[0]];
        switch (n->op) {
        case NX_OP_CONV:
            run_conv(&r, i, x, y);
            break;
        case NX_OP_GEMM:
        case NX_OP_MATMUL:
            run_gemm(&r, i, x, y);
            break;
        case NX_OP_BATCHNORM:
            nx_cpu_scale_shift(g, i, batch, x, y, e->cn[i].scale, e->cn[i].shift);
            break;
        case NX_OP_ADD:
        case NX_OP_SUB:
        case NX_OP_MUL:
        case NX_OP_DIV:
            nx_cpu_binary(g, i, batch, x, src(&r, i, 1), y);
            break;
        case NX_OP_CONCAT: {
            const float *xs[NX_DNN_MAX_IO];
            for (int k = 0; k < n->ninputs; k++)
                xs[k] = src(&r, i, k);
            nx_cpu_concat(g, i, batch, xs, y);
            break;
        }
        default:
            nx_cpu_op(g, i, batch, x, y);
            break;
        }
        if (e->prec == NX_PREC_FP16)
            nx_round_half(y, nx_tensor_elems(yt, batch));
    }
    for (int k = 0; k < g->noutputs; k++) {
        const nx_tensor *t = &g->t[g->outputs[k]];
        memcpy(out[k], e->buf[t->buffer], nx_tensor_elems(t, batch) * sizeof(float));
    }
    return 0;
}

static size_t memory(const nx_exec *e)
{
    return e->mem;
}

static const char *device_name(const nx_exec *e)
{
    return e->device;
}

const nx_exec_ops nx_exec_cpu_ops = {
    .name = "cpu", .init = init, .run = run, .memory = memory, .free = exec_free,
    .device = device_name,
};

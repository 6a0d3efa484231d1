/* shape.c — shape inference: the dims of a node's outputs from its inputs and attributes.
 *
 * Activations are stored at batch 1 (dims[0] = 1 stands for the batch); constants keep their
 * own dims. Every rule also checks what the executors rely on — weights of the right size,
 * broadcastable operands, the batch staying in dimension 0 — so a model that passes here runs
 * on every executor, and a model that does not is rejected with the node named. The importer
 * runs this node by node (Shape nodes fold against the result); prepare runs it again after
 * its rewrites. */
#include <stdio.h>
#include <string.h>

#include "dnn_int.h"

#define FAIL(...) do { nx_err_set(eb, NX_ERR_CONFIG, __VA_ARGS__); return NX_ERR_CONFIG; } while (0)

/* The node named in every message: "node 'x' (Conv)". */
#define NODE_FMT "node '%s' (%s): "
#define NODE_ARGS n->name, nx_op_name(n->op)

static const nx_tensor *in_t(const nx_graph *g, const nx_node *n, int i)
{
    return i < n->ninputs && n->inputs[i] >= 0 ? &g->t[n->inputs[i]] : NULL;
}

static void set_out(nx_graph *g, const nx_node *n, int ndim, const int64_t *dims)
{
    nx_tensor *o = &g->t[n->outputs[0]];
    o->ndim = ndim;
    memcpy(o->dims, dims, (size_t)ndim * sizeof *dims);
    if (!o->is_const)
        o->dtype = NX_F32;
}

/* Output extent of a window op along one axis (ONNX/PyTorch rules, ceil_mode included). */
static int64_t window_out(int64_t in, int64_t k, int64_t s, int64_t d, int64_t p0, int64_t p1,
                          int64_t ceil_mode)
{
    int64_t span = in + p0 + p1 - d * (k - 1) - 1;
    if (span < 0)
        return 0;
    int64_t o = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    /* the last window must start inside the input or its left padding */
    if (ceil_mode && (o - 1) * s >= in + p0)
        o--;
    return o;
}

/* numpy broadcasting of a and b into out; false if incompatible. */
static bool broadcast(const nx_tensor *a, const nx_tensor *b, int64_t *out, int *ndim)
{
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < nd; i++) {
        int ia = a->ndim - nd + i, ib = b->ndim - nd + i;
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return false;
        out[i] = da == 1 ? db : da;
    }
    *ndim = nd;
    return true;
}

static int infer_window(nx_graph *g, const nx_node *n, const nx_tensor *x, nx_errbuf *eb)
{
    char b1[128];
    int64_t d[4] = {1, x->dims[1], 0, 0};
    for (int i = 0; i < 2; i++) {
        d[2 + i] = window_out(x->dims[2 + i], n->kernel[i], n->strides[i], n->dilations[i],
                              n->pads[i], n->pads[2 + i], n->op == NX_OP_CONV ? 0 : n->ceil_mode);
        if (d[2 + i] <= 0)
            FAIL(NODE_FMT "kernel larger than the padded input %s", NODE_ARGS,
                 nx_dims_str(b1, sizeof b1, x->dims, x->ndim));
    }
    set_out(g, n, 4, d);
    return 0;
}

static int infer_node(nx_graph *g, int node, nx_errbuf *eb);

int nx_graph_infer(nx_graph *g, int node, nx_errbuf *eb)
{
    nx_node *n = &g->n[node];
    /* executors read every constant operand as fp32, except the int64 shape of Reshape and
     * Expand */
    for (int k = 0; k < n->ninputs; k++) {
        const nx_tensor *t = n->inputs[k] >= 0 ? &g->t[n->inputs[k]] : NULL;
        bool shape_in = k == 1 && (n->op == NX_OP_RESHAPE || n->op == NX_OP_EXPAND);
        if (t && !shape_in && t->dtype != NX_F32)
            FAIL(NODE_FMT "input %d ('%s') must be a float tensor", NODE_ARGS, k, t->name);
    }
    int rc = infer_node(g, node, eb);
    if (rc)
        return rc;
    const nx_tensor *o = &g->t[n->outputs[0]];
    if (nx_dims_elems(o->dims, o->ndim) > ((size_t)1 << 31) / 4)
        FAIL(NODE_FMT "output of %zu values per sample is too large", NODE_ARGS,
             nx_dims_elems(o->dims, o->ndim));
    return 0;
}

static int infer_node(nx_graph *g, int node, nx_errbuf *eb)
{
    nx_node *n = &g->n[node];
    const nx_tensor *x = in_t(g, n, 0);
    char b1[128], b2[128];
    bool binary = n->op == NX_OP_ADD || n->op == NX_OP_MUL || n->op == NX_OP_SUB ||
                  n->op == NX_OP_DIV;
    if (!x || (x->ndim == 0 && !binary))
        FAIL(NODE_FMT "missing or scalar input", NODE_ARGS);
    if (x->is_const && !binary && n->op != NX_OP_CONCAT)
        FAIL(NODE_FMT "its data input '%s' is a constant (constant folding is not supported)",
             NODE_ARGS, x->name);
    int64_t d[NX_DNN_MAX_DIMS];
    int nd = 0;
    switch (n->op) {
    case NX_OP_CONV: {
        const nx_tensor *w = in_t(g, n, 1), *b = in_t(g, n, 2);
        if (x->ndim != 4)
            FAIL(NODE_FMT "only 2-D convolutions (4-D input) are supported, input is %s",
                 NODE_ARGS, nx_dims_str(b1, sizeof b1, x->dims, x->ndim));
        if (!w || !w->is_const || w->ndim != 4 || w->dims[0] < 1 || w->dims[1] < 1 ||
            w->dims[2] < 1 || w->dims[3] < 1)
            FAIL(NODE_FMT "weights must be a 4-D constant with positive dims", NODE_ARGS);
        if (n->group < 1 || x->dims[1] != w->dims[1] * n->group || w->dims[0] % n->group)
            FAIL(NODE_FMT "weights %s do not match input %s with group %lld", NODE_ARGS,
                 nx_dims_str(b1, sizeof b1, w->dims, w->ndim),
                 nx_dims_str(b2, sizeof b2, x->dims, x->ndim), (long long)n->group);
        if (b && (!b->is_const || nx_dims_elems(b->dims, b->ndim) != (size_t)w->dims[0]))
            FAIL(NODE_FMT "bias must be a constant of %lld values", NODE_ARGS,
                 (long long)w->dims[0]);
        if ((n->kernel[0] && n->kernel[0] != w->dims[2]) ||
            (n->kernel[1] && n->kernel[1] != w->dims[3]))
            FAIL(NODE_FMT "kernel_shape does not match the weights %s", NODE_ARGS,
                 nx_dims_str(b1, sizeof b1, w->dims, w->ndim));
        n->kernel[0] = w->dims[2];
        n->kernel[1] = w->dims[3];
        int rc = infer_window(g, n, x, eb);
        g->t[n->outputs[0]].dims[1] = w->dims[0];
        return rc;
    }
    case NX_OP_MAXPOOL:
    case NX_OP_AVGPOOL:
        if (x->ndim != 4)
            FAIL(NODE_FMT "only 2-D pooling (4-D input) is supported", NODE_ARGS);
        if (n->kernel[0] < 1 || n->kernel[1] < 1)
            FAIL(NODE_FMT "kernel_shape must be positive", NODE_ARGS);
        return infer_window(g, n, x, eb);
    case NX_OP_GLOBALAVGPOOL:
        if (x->ndim < 3)
            FAIL(NODE_FMT "input must have spatial dimensions", NODE_ARGS);
        memcpy(d, x->dims, sizeof d);
        for (int i = 2; i < x->ndim; i++)
            d[i] = 1;
        set_out(g, n, x->ndim, d);
        return 0;
    case NX_OP_BATCHNORM:
        if (x->ndim < 2)
            FAIL(NODE_FMT "input must have channels", NODE_ARGS);
        for (int i = 1; i < 5; i++) {
            const nx_tensor *p = in_t(g, n, i);
            if (!p || !p->is_const || nx_dims_elems(p->dims, p->ndim) != (size_t)x->dims[1])
                FAIL(NODE_FMT "parameter %d must be a constant of %lld values", NODE_ARGS, i,
                     (long long)x->dims[1]);
        }
        set_out(g, n, x->ndim, x->dims);
        return 0;
    case NX_OP_RELU:
    case NX_OP_CLIP:
    case NX_OP_SIGMOID:
    case NX_OP_DROPOUT:
    case NX_OP_IDENTITY:
        set_out(g, n, x->ndim, x->dims);
        return 0;
    case NX_OP_SOFTMAX:
        if (n->axis < 0)
            n->axis += x->ndim;
        if (n->axis < 1 || n->axis >= x->ndim)
            FAIL(NODE_FMT "axis %lld is out of range or the batch axis", NODE_ARGS,
                 (long long)n->axis);
        set_out(g, n, x->ndim, x->dims);
        return 0;
    case NX_OP_ADD:
    case NX_OP_MUL:
    case NX_OP_SUB:
    case NX_OP_DIV: {
        const nx_tensor *y = in_t(g, n, 1);
        if (!y)
            FAIL(NODE_FMT "needs two inputs", NODE_ARGS);
        if (x->is_const && y->is_const)
            FAIL(NODE_FMT "both inputs are constants (constant folding is not supported)",
                 NODE_ARGS);
        if (!broadcast(x, y, d, &nd))
            FAIL(NODE_FMT "shapes %s and %s do not broadcast", NODE_ARGS,
                 nx_dims_str(b1, sizeof b1, x->dims, x->ndim),
                 nx_dims_str(b2, sizeof b2, y->dims, y->ndim));
        for (int i = 0; i < 2; i++) {
            const nx_tensor *t = i ? y : x;
            if (!t->is_const && t->ndim != nd)
                FAIL(NODE_FMT "activation %s would not keep the batch in dimension 0",
                     NODE_ARGS, nx_dims_str(b1, sizeof b1, t->dims, t->ndim));
        }
        if (d[0] != 1)
            FAIL(NODE_FMT "a constant would broadcast over the batch dimension", NODE_ARGS);
        set_out(g, n, nd, d);
        return 0;
    }
    case NX_OP_EXPAND:
    case NX_OP_RESHAPE: {
        /* input 1 is the resolved per-sample shape (I64 constant, [0] = 1 for the batch) */
        const nx_tensor *s = in_t(g, n, 1);
        if (!s || !s->is_const || s->dtype != NX_I64 || s->ndim != 1 || s->dims[0] < 1 ||
            s->dims[0] > NX_DNN_MAX_DIMS)
            FAIL(NODE_FMT "shape must be a constant 1-D int64 tensor", NODE_ARGS);
        nd = (int)s->dims[0];
        memcpy(d, s->data, (size_t)nd * sizeof *d);
        if (n->op == NX_OP_RESHAPE) {
            if (nx_dims_elems(d, nd) != nx_dims_elems(x->dims, x->ndim) || d[0] != 1)
                FAIL(NODE_FMT "cannot reshape %s to %s", NODE_ARGS,
                     nx_dims_str(b1, sizeof b1, x->dims, x->ndim), nx_dims_str(b2, sizeof b2, d, nd));
        } else {
            nx_tensor sh = {.ndim = nd};
            memcpy(sh.dims, d, sizeof d);
            if (!broadcast(x, &sh, d, &nd) || nd != x->ndim || d[0] != 1)
                FAIL(NODE_FMT "cannot expand %s to %s", NODE_ARGS,
                     nx_dims_str(b1, sizeof b1, x->dims, x->ndim),
                     nx_dims_str(b2, sizeof b2, sh.dims, sh.ndim));
        }
        set_out(g, n, nd, d);
        return 0;
    }
    case NX_OP_FLATTEN: {
        if (n->axis < 0)
            n->axis += x->ndim;
        if (n->axis < 1 || n->axis > x->ndim ||
            nx_dims_elems(x->dims + 1, (int)n->axis - 1) != 1)
            FAIL(NODE_FMT "axis %lld would merge the batch dimension of %s", NODE_ARGS,
                 (long long)n->axis, nx_dims_str(b1, sizeof b1, x->dims, x->ndim));
        d[0] = 1;
        d[1] = (int64_t)nx_dims_elems(x->dims + n->axis, x->ndim - (int)n->axis);
        set_out(g, n, 2, d);
        return 0;
    }
    case NX_OP_CONCAT: {
        if (n->axis < 0)
            n->axis += x->ndim;
        if (n->axis < 1 || n->axis >= x->ndim)
            FAIL(NODE_FMT "axis %lld is out of range or the batch axis", NODE_ARGS,
                 (long long)n->axis);
        memcpy(d, x->dims, sizeof d);
        d[n->axis] = 0;
        for (int i = 0; i < n->ninputs; i++) {
            const nx_tensor *t = in_t(g, n, i);
            if (!t || t->is_const || t->ndim != x->ndim)
                FAIL(NODE_FMT "input %d is missing, a constant or of another rank", NODE_ARGS, i);
            for (int k = 1; k < x->ndim; k++)
                if (k != n->axis && t->dims[k] != x->dims[k])
                    FAIL(NODE_FMT "input %d %s does not match input 0 %s", NODE_ARGS, i,
                         nx_dims_str(b1, sizeof b1, t->dims, t->ndim),
                         nx_dims_str(b2, sizeof b2, x->dims, x->ndim));
            d[n->axis] += t->dims[n->axis];
        }
        set_out(g, n, x->ndim, d);
        return 0;
    }
    case NX_OP_GEMM:
    case NX_OP_MATMUL: {
        const nx_tensor *w = in_t(g, n, 1), *c = in_t(g, n, 2);
        if (n->trans_a)
            FAIL(NODE_FMT "transA = 1 is not supported (the batch must stay in rows)", NODE_ARGS);
        if (n->op == NX_OP_GEMM && x->ndim != 2)
            FAIL(NODE_FMT "input must be 2-D, is %s", NODE_ARGS,
                 nx_dims_str(b1, sizeof b1, x->dims, x->ndim));
        if (x->ndim < 2)
            FAIL(NODE_FMT "input must be at least 2-D", NODE_ARGS);
        if (!w || !w->is_const || w->ndim != 2)
            FAIL(NODE_FMT "the second input must be a 2-D constant", NODE_ARGS);
        int64_t k = n->trans_b ? w->dims[1] : w->dims[0], nout = n->trans_b ? w->dims[0] : w->dims[1];
        if (k != x->dims[x->ndim - 1])
            FAIL(NODE_FMT "%s times %s (transB %lld) do not match", NODE_ARGS,
                 nx_dims_str(b1, sizeof b1, x->dims, x->ndim),
                 nx_dims_str(b2, sizeof b2, w->dims, w->ndim), (long long)n->trans_b);
        if (c) {
            size_t ce = nx_dims_elems(c->dims, c->ndim);
            if (!c->is_const || (ce != 1 && ce != (size_t)nout) ||
                (c->ndim == 2 && c->dims[0] != 1))
                FAIL(NODE_FMT "C must be a constant of 1 or %lld values", NODE_ARGS,
                     (long long)nout);
        }
        memcpy(d, x->dims, sizeof d);
        d[x->ndim - 1] = nout;
        set_out(g, n, x->ndim, d);
        return 0;
    }
    case NX_OP_TRANSPOSE: {
        if (n->nperm == 0) {   /* default: reverse, which would move the batch */
            FAIL(NODE_FMT "a transpose without perm would move the batch dimension", NODE_ARGS);
        }
        bool seen[NX_DNN_MAX_DIMS] = {0};
        if (n->nperm != x->ndim || n->perm[0] != 0)
            FAIL(NODE_FMT "perm must keep the batch first and name every axis of %s", NODE_ARGS,
                 nx_dims_str(b1, sizeof b1, x->dims, x->ndim));
        for (int i = 0; i < n->nperm; i++) {
            if (n->perm[i] < 0 || n->perm[i] >= x->ndim || seen[n->perm[i]])
                FAIL(NODE_FMT "perm is not a permutation", NODE_ARGS);
            seen[n->perm[i]] = true;
            d[i] = x->dims[n->perm[i]];
        }
        set_out(g, n, x->ndim, d);
        return 0;
    }
    case NX_OP_PAD:
        if (x->ndim != 4)
            FAIL(NODE_FMT "only padding of 4-D inputs is supported", NODE_ARGS);
        memcpy(d, x->dims, sizeof d);
        for (int i = 0; i < 4; i++)
            if (n->pads[i] < 0)
                FAIL(NODE_FMT "negative pads are not supported", NODE_ARGS);
        d[2] += n->pads[0] + n->pads[2];
        d[3] += n->pads[1] + n->pads[3];
        set_out(g, n, 4, d);
        return 0;
    case NX_OP_REDUCEL2:
    case NX_OP_REDUCEMEAN: {
        bool red[NX_DNN_MAX_DIMS] = {0};
        for (int i = 0; i < n->naxes; i++) {
            if (n->axes[i] < 0)
                n->axes[i] += x->ndim;
            if (n->axes[i] < 1 || n->axes[i] >= x->ndim)
                FAIL(NODE_FMT "axis %lld is out of range or the batch axis", NODE_ARGS,
                     (long long)n->axes[i]);
            red[n->axes[i]] = true;
        }
        if (n->naxes == 0)
            FAIL(NODE_FMT "reducing over every axis (the batch too) is not supported", NODE_ARGS);
        /* keep axes sorted for the executors */
        n->naxes = 0;
        for (int i = 0; i < x->ndim; i++)
            if (red[i])
                n->axes[n->naxes++] = i;
        for (int i = 0; i < x->ndim; i++)
            if (!red[i])
                d[nd++] = x->dims[i];
            else if (n->keepdims)
                d[nd++] = 1;
        set_out(g, n, nd, d);
        return 0;
    }
    default:
        FAIL(NODE_FMT "no shape rule", NODE_ARGS);
    }
}

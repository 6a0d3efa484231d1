/* graph.c — the nx_graph container: growing the tensor and node arrays, operator names,
 * element counts, freeing, and a readable dump. The importer (onnx_import.c) fills a graph,
 * shape.c infers shapes, prepare.c rewrites it and plans buffers, executors read it. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnn_int.h"

static const char *const op_names[NX_OP_COUNT_BASE] = {
    [NX_OP_CONV] = "Conv",
    [NX_OP_BATCHNORM] = "BatchNormalization",
    [NX_OP_RELU] = "Relu",
    [NX_OP_CLIP] = "Clip",
    [NX_OP_MAXPOOL] = "MaxPool",
    [NX_OP_AVGPOOL] = "AveragePool",
    [NX_OP_GLOBALAVGPOOL] = "GlobalAveragePool",
    [NX_OP_ADD] = "Add",
    [NX_OP_MUL] = "Mul",
    [NX_OP_CONCAT] = "Concat",
    [NX_OP_GEMM] = "Gemm",
    [NX_OP_MATMUL] = "MatMul",
    [NX_OP_FLATTEN] = "Flatten",
    [NX_OP_RESHAPE] = "Reshape",
    [NX_OP_TRANSPOSE] = "Transpose",
    [NX_OP_SOFTMAX] = "Softmax",
    [NX_OP_DROPOUT] = "Dropout",
    [NX_OP_IDENTITY] = "Identity",
    [NX_OP_PAD] = "Pad",
    [NX_OP_SUB] = "Sub",
    [NX_OP_DIV] = "Div",
    [NX_OP_EXPAND] = "Expand",
    [NX_OP_REDUCEL2] = "ReduceL2",
    [NX_OP_REDUCEMEAN] = "ReduceMean",
    [NX_OP_SIGMOID] = "Sigmoid",
};

const char *nx_op_name(nx_op op)
{
    if ((int)op < 0 || op >= NX_OP_COUNT_BASE || !op_names[op])
        return "?";
    return op_names[op];
}

void nx_graph_init(nx_graph *g)
{
    memset(g, 0, sizeof *g);
}

void nx_graph_free(nx_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->nt; i++) {
        free(g->t[i].name);
        free(g->t[i].data);
    }
    for (int i = 0; i < g->nn; i++)
        free(g->n[i].name);
    free(g->t);
    free(g->n);
    free(g->inputs);
    free(g->outputs);
    free(g->buffer_elems);
    free(g->name);
    memset(g, 0, sizeof *g);
}

size_t nx_dims_elems(const int64_t *dims, int ndim)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)(dims[i] > 0 ? dims[i] : 0);
    return n;
}

size_t nx_tensor_elems(const nx_tensor *t, int batch)
{
    if (t->is_const || t->ndim == 0)
        return nx_dims_elems(t->dims, t->ndim);
    return (size_t)batch * nx_dims_elems(t->dims + 1, t->ndim - 1);
}

const char *nx_dims_str(char *buf, size_t n, const int64_t *dims, int ndim)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (int i = 0; i < ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%" PRId64, i ? ", " : "", dims[i]);
    if (o < n)
        snprintf(buf + o, n - o, "]");
    return buf;
}

int nx_graph_add_tensor(nx_graph *g, const char *name)
{
    if (g->nt == g->capt) {
        g->capt = g->capt ? 2 * g->capt : 64;
        g->t = nx_realloc(g->t, (size_t)g->capt * sizeof *g->t);
    }
    nx_tensor *t = &g->t[g->nt];
    memset(t, 0, sizeof *t);
    t->name = nx_strdup(name ? name : "");
    t->buffer = -1;
    t->first_use = t->last_use = -1;
    return g->nt++;
}

int nx_graph_add_node(nx_graph *g, nx_op op, const char *name)
{
    if (g->nn == g->capn) {
        g->capn = g->capn ? 2 * g->capn : 64;
        g->n = nx_realloc(g->n, (size_t)g->capn * sizeof *g->n);
    }
    nx_node *n = &g->n[g->nn];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->name = nx_strdup(name ? name : "");
    for (int i = 0; i < NX_DNN_MAX_IO; i++)
        n->inputs[i] = n->outputs[i] = -1;
    n->strides[0] = n->strides[1] = 1;
    n->dilations[0] = n->dilations[1] = 1;
    n->group = 1;
    n->axis = 1;
    n->alpha = n->beta = 1.0f;
    n->epsilon = 1e-5f;
    n->clip_min = -INFINITY;
    n->clip_max = INFINITY;
    n->act_min = -INFINITY;
    n->act_max = INFINITY;
    n->keepdims = 1;
    return g->nn++;
}

int nx_graph_add_const(nx_graph *g, const char *name, int ndim, const int64_t *dims, float *data)
{
    int i = nx_graph_add_tensor(g, name);
    nx_tensor *t = &g->t[i];
    t->ndim = ndim;
    memcpy(t->dims, dims, (size_t)ndim * sizeof *dims);
    t->dtype = NX_F32;
    t->data = data;
    t->is_const = true;
    return i;
}

void nx_graph_dump(const nx_graph *g, FILE *f)
{
    char buf[128];
    fprintf(f, "graph %s: %d nodes, %d tensors, %d buffers (max batch %d)\n",
            g->name ? g->name : "?", g->nn, g->nt, g->nbuffers, g->max_batch);
    for (int i = 0; i < g->nn; i++) {
        const nx_node *n = &g->n[i];
        if (n->dead)
            continue;
        const nx_tensor *o = &g->t[n->outputs[0]];
        fprintf(f, "  %4d %-18s %-40s %s%s -> %s buf %d\n", i, nx_op_name(n->op), n->name,
                n->act == NX_ACT_RELU ? "+relu" : n->act == NX_ACT_CLIP ? "+clip" : "",
                n->op == NX_OP_CONV && n->group > 1 ? " (grouped)" : "",
                nx_dims_str(buf, sizeof buf, o->dims, o->ndim), o->buffer);
    }
}

/* prepare.c — graph preparation between import and execution, the same for every executor:
 *
 *   1. Identity/Dropout are removed (their consumers read the input directly);
 *   2. a zero Pad feeding a Conv or an AveragePool becomes that node's padding;
 *   3. BatchNormalization after a Conv is folded into the Conv's weights and bias;
 *   4. Relu/Clip after a Conv, Gemm, MatMul, BatchNormalization or Add becomes that node's
 *      `act`;
 *   5. nodes whose outputs nobody reads are marked dead;
 *   6. shapes are inferred again for every live node;
 *   7. activation buffers are planned by lifetime: walking the nodes in order, each output
 *      takes the best-fitting free buffer (or grows the largest free one, or adds one), and
 *      the buffers of tensors read for the last time are released after the node. Buffers are
 *      sized for max_batch, once.
 *
 * A rewrite only happens when the intermediate tensor has exactly one reader and is not a
 * graph output. Folded weights are written in place when the Conv is their only user, and
 * into new constants otherwise (exporters share identical zero biases between layers). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dnn_int.h"

/* Number of live readers of each tensor (graph outputs count as one more). */
static int *count_uses(const nx_graph *g)
{
    int *u = nx_calloc((size_t)g->nt, sizeof *u);
    for (int i = 0; i < g->nn; i++) {
        const nx_node *n = &g->n[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->ninputs; k++)
            if (n->inputs[k] >= 0)
                u[n->inputs[k]]++;
    }
    for (int i = 0; i < g->noutputs; i++)
        u[g->outputs[i]]++;
    return u;
}

/* The live node producing tensor t, or -1. */
static int producer(const nx_graph *g, int t)
{
    for (int i = 0; i < g->nn; i++)
        if (!g->n[i].dead && g->n[i].outputs[0] == t)
            return i;
    return -1;
}

/* The single live reader of tensor t (node index), or -1 if there is not exactly one. */
static int sole_reader(const nx_graph *g, const int *uses, int t)
{
    if (uses[t] != 1 || g->t[t].is_output)
        return -1;
    for (int i = 0; i < g->nn; i++) {
        const nx_node *n = &g->n[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->ninputs; k++)
            if (n->inputs[k] == t)
                return i;
    }
    return -1;
}

static void replace_uses(nx_graph *g, int from, int to)
{
    for (int i = 0; i < g->nn; i++) {
        nx_node *n = &g->n[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->ninputs; k++)
            if (n->inputs[k] == from)
                n->inputs[k] = to;
    }
}

static void remove_identities(nx_graph *g)
{
    for (int i = 0; i < g->nn; i++) {
        nx_node *n = &g->n[i];
        if (n->dead || (n->op != NX_OP_IDENTITY && n->op != NX_OP_DROPOUT))
            continue;
        int a = n->inputs[0], b = n->outputs[0];
        if (g->t[b].is_output) {
            /* the graph output becomes the input tensor, unless that one is already an
             * input or an output of the graph (then the copy stays) */
            if (g->t[a].is_input || g->t[a].is_output)
                continue;
            for (int k = 0; k < g->noutputs; k++)
                if (g->outputs[k] == b)
                    g->outputs[k] = a;
            g->t[a].is_output = true;
            g->t[b].is_output = false;
        }
        replace_uses(g, b, a);
        n->dead = true;
    }
}

static void fold_pads(nx_graph *g)
{
    int *uses = count_uses(g);
    for (int i = 0; i < g->nn; i++) {
        nx_node *p = &g->n[i];
        if (p->dead || p->op != NX_OP_PAD || p->pad_value != 0.0f)
            continue;
        int r = sole_reader(g, uses, p->outputs[0]);
        if (r < 0)
            continue;
        nx_node *c = &g->n[r];
        bool ok = (c->op == NX_OP_CONV && c->inputs[0] == p->outputs[0]) ||
                  (c->op == NX_OP_AVGPOOL &&
                   (c->count_include_pad || !(c->pads[0] | c->pads[1] | c->pads[2] | c->pads[3])));
        if (!ok)
            continue;
        for (int k = 0; k < 4; k++)
            c->pads[k] += p->pads[k];
        if (c->op == NX_OP_AVGPOOL)
            c->count_include_pad = 1;   /* the padded zeros were averaged in */
        c->inputs[0] = p->inputs[0];
        p->dead = true;
    }
    free(uses);
}

/* A constant that node-local code may rewrite: t itself when only one node reads it, else a
 * copy (a new tensor) that node i now reads in input slot k. */
static float *own_const(nx_graph *g, const int *uses, int i, int k)
{
    int t = g->n[i].inputs[k];
    if (uses[t] == 1)
        return g->t[t].data;
    size_t n = nx_dims_elems(g->t[t].dims, g->t[t].ndim);
    float *d = nx_malloc(n * sizeof *d);
    memcpy(d, g->t[t].data, n * sizeof *d);
    char name[300];
    snprintf(name, sizeof name, "%s:folded", g->t[t].name);
    int nt = nx_graph_add_const(g, name, g->t[t].ndim, g->t[t].dims, d);
    g->n[i].inputs[k] = nt;
    return d;
}

static void fold_batchnorm(nx_graph *g)
{
    int *uses = count_uses(g);
    for (int i = 0; i < g->nn; i++) {
        nx_node *bn = &g->n[i];
        if (bn->dead || bn->op != NX_OP_BATCHNORM)
            continue;
        int ci = producer(g, bn->inputs[0]);
        if (ci < 0 || g->n[ci].op != NX_OP_CONV || g->n[ci].act != NX_ACT_NONE ||
            sole_reader(g, uses, bn->inputs[0]) != i)
            continue;
        const float *gamma = g->t[bn->inputs[1]].data, *beta = g->t[bn->inputs[2]].data,
                    *mean = g->t[bn->inputs[3]].data, *var = g->t[bn->inputs[4]].data;
        float eps = bn->epsilon;
        int64_t m = g->t[g->n[ci].inputs[1]].dims[0];
        size_t per = nx_dims_elems(g->t[g->n[ci].inputs[1]].dims + 1, 3);
        float *w = own_const(g, uses, ci, 1);
        float *b;
        if (g->n[ci].ninputs >= 3 && g->n[ci].inputs[2] >= 0) {
            b = own_const(g, uses, ci, 2);
        } else {
            b = nx_calloc((size_t)m, sizeof *b);
            char name[300];
            snprintf(name, sizeof name, "%s:bias", g->n[ci].name);
            int bt = nx_graph_add_const(g, name, 1, &m, b);
            g->n[ci].ninputs = 3;
            g->n[ci].inputs[2] = bt;
        }
        for (int64_t c = 0; c < m; c++) {
            double s = gamma[c] / sqrt((double)var[c] + eps);
            for (size_t k = 0; k < per; k++)
                w[c * per + k] = (float)(w[c * per + k] * s);
            b[c] = (float)((b[c] - mean[c]) * s + beta[c]);
        }
        g->n[ci].outputs[0] = bn->outputs[0];
        bn->dead = true;
    }
    free(uses);
}

static void fuse_activations(nx_graph *g)
{
    int *uses = count_uses(g);
    for (int i = 0; i < g->nn; i++) {
        nx_node *a = &g->n[i];
        if (a->dead || (a->op != NX_OP_RELU && a->op != NX_OP_CLIP))
            continue;
        int pi = producer(g, a->inputs[0]);
        if (pi < 0 || sole_reader(g, uses, a->inputs[0]) != i)
            continue;
        nx_node *p = &g->n[pi];
        if (p->act != NX_ACT_NONE ||
            (p->op != NX_OP_CONV && p->op != NX_OP_GEMM && p->op != NX_OP_MATMUL &&
             p->op != NX_OP_BATCHNORM && p->op != NX_OP_ADD))
            continue;
        if (a->op == NX_OP_RELU || (a->clip_min == 0.0f && a->clip_max == INFINITY)) {
            p->act = NX_ACT_RELU;
            p->act_min = 0.0f;
            p->act_max = INFINITY;
        } else {
            p->act = NX_ACT_CLIP;
            p->act_min = a->clip_min;
            p->act_max = a->clip_max;
        }
        p->outputs[0] = a->outputs[0];
        a->dead = true;
    }
    free(uses);
}

static void remove_dead(nx_graph *g)
{
    int *uses = count_uses(g);
    for (int i = g->nn - 1; i >= 0; i--) {
        nx_node *n = &g->n[i];
        if (n->dead || uses[n->outputs[0]] > 0)
            continue;
        n->dead = true;
        for (int k = 0; k < n->ninputs; k++)
            if (n->inputs[k] >= 0)
                uses[n->inputs[k]]--;
    }
    free(uses);
}

typedef struct buf {
    size_t elems;
    bool busy;
} buf;

static void plan_buffers(nx_graph *g)
{
    for (int i = 0; i < g->nt; i++) {
        g->t[i].buffer = -1;
        g->t[i].first_use = g->t[i].last_use = -1;
    }
    for (int i = 0; i < g->nn; i++) {
        const nx_node *n = &g->n[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->ninputs; k++)
            if (n->inputs[k] >= 0 && !g->t[n->inputs[k]].is_const)
                g->t[n->inputs[k]].last_use = i;
        g->t[n->outputs[0]].first_use = i;
        if (g->t[n->outputs[0]].last_use < i)
            g->t[n->outputs[0]].last_use = i;
    }
    for (int i = 0; i < g->noutputs; i++)
        g->t[g->outputs[i]].last_use = g->nn;   /* read after the last node */
    buf *b = NULL;
    int nb = 0;
    for (int i = 0; i < g->nn; i++) {
        const nx_node *n = &g->n[i];
        if (n->dead)
            continue;
        nx_tensor *o = &g->t[n->outputs[0]];
        size_t need = nx_tensor_elems(o, g->max_batch);
        int best = -1, largest = -1;
        for (int k = 0; k < nb; k++) {
            if (b[k].busy)
                continue;
            if (b[k].elems >= need && (best < 0 || b[k].elems < b[best].elems))
                best = k;
            if (largest < 0 || b[k].elems > b[largest].elems)
                largest = k;
        }
        if (best < 0 && largest >= 0) {
            best = largest;
            b[best].elems = need;
        }
        if (best < 0) {
            b = nx_realloc(b, (size_t)(nb + 1) * sizeof *b);
            b[nb] = (buf){.elems = need};
            best = nb++;
        }
        b[best].busy = true;
        o->buffer = best;
        /* release what is read for the last time here */
        for (int k = 0; k < n->ninputs; k++) {
            int t = n->inputs[k];
            if (t >= 0 && g->t[t].buffer >= 0 && g->t[t].last_use == i)
                b[g->t[t].buffer].busy = false;
        }
        if (o->last_use == i)   /* produced but never read (cannot happen once dead code is gone) */
            b[best].busy = false;
    }
    free(g->buffer_elems);
    g->nbuffers = nb;
    g->buffer_elems = nx_calloc((size_t)(nb ? nb : 1), sizeof *g->buffer_elems);
    for (int k = 0; k < nb; k++)
        g->buffer_elems[k] = b[k].elems;
    free(b);
}

int nx_graph_cut(nx_graph *g, const char *tensor, bool suffix, nx_errbuf *eb)
{
    int t = -1;
    if (!tensor || !tensor[0] || !strcmp(tensor, "auto")) {
        for (int i = g->nn - 1; i >= 0 && t < 0; i--)
            if (!g->n[i].dead)
                t = g->n[i].inputs[0];
    } else {
        for (int i = 0; i < g->nt && t < 0; i++)
            if (!g->t[i].is_const && !strcmp(g->t[i].name, tensor))
                t = i;
    }
    const char *gname = g->name ? g->name : "model";
    if (t < 0 || g->t[t].is_const || g->t[t].is_input || producer(g, t) < 0) {
        nx_err_set(eb, NX_ERR_NOTFOUND, "%s: no tensor '%s' computed by the model to cut at",
                   gname, tensor && tensor[0] ? tensor : "auto");
        return NX_ERR_NOTFOUND;
    }
    if (!suffix) {
        /* the prefix: t is the only output; what only fed the old outputs dies */
        for (int k = 0; k < g->noutputs; k++)
            g->t[g->outputs[k]].is_output = false;
        g->outputs[0] = t;
        g->noutputs = 1;
        g->t[t].is_output = true;
        remove_dead(g);
        return 0;
    }
    /* the suffix: t is the only input; nodes that need anything computed before it die, and
     * every output must still be computable */
    bool *avail = nx_calloc((size_t)g->nt, sizeof *avail);
    for (int i = 0; i < g->nt; i++)
        avail[i] = g->t[i].is_const;
    avail[t] = true;
    for (int i = 0; i < g->nn; i++) {
        nx_node *n = &g->n[i];
        if (n->dead)
            continue;
        bool ok = n->outputs[0] != t;
        for (int k = 0; k < n->ninputs && ok; k++)
            ok = n->inputs[k] < 0 || avail[n->inputs[k]];
        if (ok)
            avail[n->outputs[0]] = true;
        else
            n->dead = true;
    }
    for (int k = 0; k < g->noutputs; k++)
        if (!avail[g->outputs[k]]) {
            nx_err_set(eb, NX_ERR_CONFIG, "%s: output '%s' also depends on tensors computed "
                       "before '%s' (not a cut point)", gname, g->t[g->outputs[k]].name,
                       g->t[t].name);
            free(avail);
            return NX_ERR_CONFIG;
        }
    free(avail);
    for (int k = 0; k < g->ninputs; k++)
        g->t[g->inputs[k]].is_input = false;
    g->inputs[0] = t;
    g->ninputs = 1;
    g->t[t].is_input = true;
    remove_dead(g);
    return 0;
}

int nx_graph_prepare(nx_graph *g, int max_batch, nx_errbuf *eb)
{
    if (max_batch < 1 || max_batch > (1 << 20)) {
        nx_err_set(eb, NX_ERR_INVAL, "max batch %d out of range (1..%d)", max_batch, 1 << 20);
        return NX_ERR_INVAL;
    }
    if (g->nn == 0 || g->noutputs == 0) {
        nx_err_set(eb, NX_ERR_INVAL, "%s: empty graph", g->name ? g->name : "model");
        return NX_ERR_INVAL;
    }
    g->max_batch = max_batch;
    remove_identities(g);
    fold_pads(g);
    fold_batchnorm(g);
    fuse_activations(g);
    remove_dead(g);
    for (int i = 0; i < g->nn; i++) {
        if (g->n[i].dead)
            continue;
        int rc = nx_graph_infer(g, i, eb);
        if (rc)
            return rc;
    }
    plan_buffers(g);
    return 0;
}

/* onnx_import.c — an ONNX ModelProto (decoded by protobuf-c code generated at build time from
 * Debian's /usr/include/onnx/onnx.proto) into an nx_graph.
 *
 * Initializers become constants (fp32; int64 for shapes; fp16/double/int32 are converted).
 * Graph inputs that are not initializers become activations whose first dimension is the batch
 * (symbolic or fixed, it is stored as 1). Nodes are imported in file order, which ONNX requires
 * to be topological, and each node's output shapes are inferred at once (shape.c), so that
 * the shape arithmetic exporters emit around Reshape and Expand (Shape, Gather, Unsqueeze,
 * Concat, Slice, Cast, Squeeze on int64 tensors) folds here into constants. The batch size is
 * the one unknown in that arithmetic: Shape() of an activation yields a symbolic value in
 * element 0, which may be moved around but not computed with; a Reshape or Expand target
 * resolves it so that the batch stays in dimension 0 (checked at batch 1 and 2). Constants
 * passed through Identity/Dropout are aliased. What is left are nx_op nodes on activations.
 *
 * Every operator has a list of the attributes it understands; an unknown operator, domain,
 * attribute or attribute value is NX_ERR_NOTSUP naming the file, the node and its op type,
 * never skipped. Malformed protobuf (a truncated file) is NX_ERR_PARSE; a well-formed model
 * that is inconsistent (undefined inputs, wrong sizes) is NX_ERR_CONFIG. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dnn_int.h"
#include "onnx.pb-c.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "ONNX raw_data is little endian");

/* memcpy that accepts (NULL, 0): protobuf-c leaves empty repeated fields NULL. */
static inline void copy_bytes(void *dst, const void *src, size_t n)
{
    if (n)
        memcpy(dst, src, n);
}

/* Symbolic batch size inside folded int64 shape tensors. */
#define SYM_BATCH INT64_MIN
/* Largest tensor accepted (elements), to reject absurd dims before multiplying them. */
#define MAX_ELEMS ((int64_t)1 << 34)

/* ---- name -> tensor index (open addressing; keys owned by the map) ---------------- */

typedef struct name_map {
    char **keys;
    int *vals;
    size_t cap, n;
} name_map;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int map_get(const name_map *m, const char *k)
{
    if (!m->cap)
        return -1;
    for (size_t i = hash_str(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i])
            return -1;
        if (strcmp(m->keys[i], k) == 0)
            return m->vals[i];
    }
}

static void map_put(name_map *m, const char *k, int v)
{
    if (2 * (m->n + 1) > m->cap) {
        name_map o = *m;
        m->cap = o.cap ? 2 * o.cap : 256;
        m->keys = nx_calloc(m->cap, sizeof *m->keys);
        m->vals = nx_calloc(m->cap, sizeof *m->vals);
        m->n = 0;
        for (size_t i = 0; i < o.cap; i++)
            if (o.keys[i]) {
                size_t j = hash_str(o.keys[i]) & (m->cap - 1);
                while (m->keys[j])
                    j = (j + 1) & (m->cap - 1);
                m->keys[j] = o.keys[i];
                m->vals[j] = o.vals[i];
                m->n++;
            }
        free(o.keys);
        free(o.vals);
    }
    size_t i = hash_str(k) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], k) != 0)
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i]) {
        m->keys[i] = nx_strdup(k);
        m->n++;
    }
    m->vals[i] = v;
}

static void map_free(name_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->vals);
}

/* ---- import context ------------------------------------------------------------------ */

typedef struct imp {
    nx_graph *g;
    name_map names;
    const char *path;
    nx_errbuf *eb;
    int64_t opset;
    /* the node being imported, for messages */
    const Onnx__NodeProto *np;
    char nname[256];
} imp;

#define NODE_ERR(rc, ...) node_err(im, rc, __VA_ARGS__)

static int node_err(imp *im, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int node_err(imp *im, int rc, const char *fmt, ...)
{
    char what[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    nx_err_set(im->eb, rc, "%s: node '%s' (%s): %s", im->path, im->nname,
               im->np && im->np->op_type ? im->np->op_type : "?", what);
    return rc;
}

static bool dims_ok(const int64_t *dims, size_t nd)
{
    int64_t n = 1;
    for (size_t i = 0; i < nd; i++) {
        if (dims[i] < 0 || (dims[i] > 0 && n > MAX_ELEMS / dims[i]))
            return false;
        n *= dims[i];
    }
    return true;
}

static float half_to_float(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023;
    float f;
    if (e == 0)
        f = ldexpf((float)m, -24);
    else if (e == 31)
        f = m ? NAN : INFINITY;
    else
        f = ldexpf((float)(m | 1024), (int)e - 25);
    return s ? -f : f;
}

/* A TensorProto into a new constant tensor named `name`. raw_data of the right size is taken
 * over (no copy; the proto's field is cleared). */
static int tensor_from_proto(imp *im, Onnx__TensorProto *tp, const char *name, int *out)
{
    nx_graph *g = im->g;
    if (tp->n_dims > NX_DNN_MAX_DIMS || !dims_ok(tp->dims, tp->n_dims)) {
        nx_err_set(im->eb, NX_ERR_CONFIG, "%s: tensor '%s': bad or too many dimensions", im->path,
                   name);
        return NX_ERR_CONFIG;
    }
    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        nx_err_set(im->eb, NX_ERR_NOTSUP, "%s: tensor '%s': external data is not supported "
                   "(save the model with its weights inside the file)", im->path, name);
        return NX_ERR_NOTSUP;
    }
    size_t n = nx_dims_elems(tp->dims, (int)tp->n_dims);
    int dt = tp->has_data_type ? tp->data_type : 0;
    size_t raw = tp->has_raw_data ? tp->raw_data.len : 0;
    void *data = NULL;
    nx_dtype dtype = NX_F32;
#define SIZE_CHECK(have, expect, what) do { if ((size_t)(have) != (size_t)(expect)) { \
        nx_err_set(im->eb, NX_ERR_CONFIG, "%s: tensor '%s': %zu %s, expected %zu for its dims", \
                   im->path, name, (size_t)(have), what, (size_t)(expect)); \
        free(data); return NX_ERR_CONFIG; } } while (0)
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
        if (tp->has_raw_data) {
            SIZE_CHECK(raw, n * 4, "bytes of raw_data");
            if (n && ((uintptr_t)tp->raw_data.data & 3) == 0) {
                data = tp->raw_data.data;   /* take it over */
                tp->raw_data.data = NULL;
                tp->raw_data.len = 0;
                tp->has_raw_data = 0;
            } else {
                data = nx_malloc(n * 4);
                copy_bytes(data, tp->raw_data.data, n * 4);
            }
        } else {
            SIZE_CHECK(tp->n_float_data, n, "float_data values");
            data = nx_malloc(n * 4);
            copy_bytes(data, tp->float_data, n * 4);
        }
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: {
        if (tp->has_raw_data)
            SIZE_CHECK(raw, n * 2, "bytes of raw_data");
        else
            SIZE_CHECK(tp->n_int32_data, n, "int32_data values");
        float *f = nx_malloc(n * 4);
        if (tp->has_raw_data) {
            for (size_t i = 0; i < n; i++) {
                uint16_t h;
                copy_bytes(&h, tp->raw_data.data + 2 * i, 2);
                f[i] = half_to_float(h);
            }
        } else {
            for (size_t i = 0; i < n; i++)
                f[i] = half_to_float((uint16_t)tp->int32_data[i]);
        }
        data = f;
        break;
    }
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
        if (tp->has_raw_data)
            SIZE_CHECK(raw, n * 8, "bytes of raw_data");
        else
            SIZE_CHECK(tp->n_double_data, n, "double_data values");
        float *f = nx_malloc(n * 4);
        for (size_t i = 0; i < n; i++) {
            double d;
            if (tp->has_raw_data)
                copy_bytes(&d, tp->raw_data.data + 8 * i, 8);
            else
                d = tp->double_data[i];
            f[i] = (float)d;
        }
        data = f;
        break;
    }
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: {
        bool is64 = dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
        size_t w = is64 ? 8 : 4;
        if (tp->has_raw_data)
            SIZE_CHECK(raw, n * w, "bytes of raw_data");
        else
            SIZE_CHECK(is64 ? tp->n_int64_data : tp->n_int32_data, n, "integer values");
        int64_t *v = nx_malloc(n * 8);
        for (size_t i = 0; i < n; i++) {
            if (tp->has_raw_data) {
                if (is64) {
                    copy_bytes(&v[i], tp->raw_data.data + 8 * i, 8);
                } else {
                    int32_t x;
                    copy_bytes(&x, tp->raw_data.data + 4 * i, 4);
                    v[i] = x;
                }
            } else {
                v[i] = is64 ? tp->int64_data[i] : tp->int32_data[i];
            }
        }
        data = v;
        dtype = NX_I64;
        break;
    }
    default:
        nx_err_set(im->eb, NX_ERR_NOTSUP, "%s: tensor '%s': data type %d is not supported "
                   "(float, float16, double, int32 and int64 are)", im->path, name, dt);
        return NX_ERR_NOTSUP;
    }
#undef SIZE_CHECK
    int i = nx_graph_add_tensor(g, name);
    nx_tensor *t = &g->t[i];
    t->ndim = (int)tp->n_dims;
    copy_bytes(t->dims, tp->dims, tp->n_dims * sizeof *tp->dims);
    t->dtype = dtype;
    t->data = data;
    t->is_const = true;
    *out = i;
    return 0;
}

/* A new int64 constant (values copied). */
static int add_i64(nx_graph *g, const char *name, const int64_t *v, int ndim, const int64_t *dims)
{
    int i = nx_graph_add_tensor(g, name);
    nx_tensor *t = &g->t[i];
    size_t n = nx_dims_elems(dims, ndim);
    t->ndim = ndim;
    copy_bytes(t->dims, dims, (size_t)ndim * sizeof *dims);
    t->dtype = NX_I64;
    t->data = nx_malloc(n ? n * 8 : 8);
    copy_bytes(t->data, v, n * 8);
    t->is_const = true;
    return i;
}

/* ---- node attributes ----------------------------------------------------------------- */

static const Onnx__AttributeProto *attr_find(const Onnx__NodeProto *np, const char *name)
{
    for (size_t i = 0; i < np->n_attribute; i++)
        if (np->attribute[i]->name && strcmp(np->attribute[i]->name, name) == 0)
            return np->attribute[i];
    return NULL;
}

/* Every attribute of the node must be in `allowed` (NULL-terminated). */
static int attrs_check(imp *im, const char *const *allowed)
{
    for (size_t i = 0; i < im->np->n_attribute; i++) {
        const char *a = im->np->attribute[i]->name ? im->np->attribute[i]->name : "";
        bool ok = false;
        for (const char *const *p = allowed; *p && !ok; p++)
            ok = strcmp(*p, a) == 0;
        if (!ok)
            return NODE_ERR(NX_ERR_NOTSUP, "unsupported attribute '%s'", a);
    }
    return 0;
}

static int64_t attr_i(imp *im, const char *name, int64_t def)
{
    const Onnx__AttributeProto *a = attr_find(im->np, name);
    return a && a->has_i ? a->i : def;
}

static float attr_f(imp *im, const char *name, float def)
{
    const Onnx__AttributeProto *a = attr_find(im->np, name);
    return a && a->has_f ? a->f : def;
}

/* Integer list attribute: exactly `want` values (or any count <= max when want < 0); returns
 * the count, 0 if absent, or an error. */
static int attr_ints(imp *im, const char *name, int64_t *out, int want, int max)
{
    const Onnx__AttributeProto *a = attr_find(im->np, name);
    if (!a)
        return 0;
    if ((want >= 0 && a->n_ints != (size_t)want) || a->n_ints > (size_t)max)
        return NODE_ERR(NX_ERR_NOTSUP, "unsupported attribute value: '%s' has %zu values%s",
                        name, a->n_ints, want == 2 || want == 4 ? " (only 2-D is supported)" : "");
    copy_bytes(out, a->ints, a->n_ints * sizeof *out);
    return (int)a->n_ints;
}

static const char *attr_s(imp *im, const char *name, char *buf, size_t n)
{
    const Onnx__AttributeProto *a = attr_find(im->np, name);
    if (!a || !a->has_s)
        return NULL;
    size_t l = a->s.len < n - 1 ? a->s.len : n - 1;
    copy_bytes(buf, a->s.data, l);
    buf[l] = 0;
    return buf;
}

/* ---- inputs -------------------------------------------------------------------------- */

/* Tensor index of node input i, -1 if absent (empty name or past the end). */
static int input_idx(imp *im, size_t i, int *out)
{
    *out = -1;
    if (i >= im->np->n_input || !im->np->input[i][0])
        return 0;
    int t = map_get(&im->names, im->np->input[i]);
    if (t < 0)
        return NODE_ERR(NX_ERR_CONFIG, "input '%s' is not defined by an earlier node, an "
                        "initializer or a graph input", im->np->input[i]);
    *out = t;
    return 0;
}

static const nx_tensor *input_t(imp *im, size_t i)
{
    int t;
    if (input_idx(im, i, &t) || t < 0)
        return NULL;
    return &im->g->t[t];
}

/* An optional constant int64 input as a list (<= max values); *n = -1 if absent. */
static int input_ints(imp *im, size_t i, int64_t *out, int max, int *n, bool allow_sym)
{
    int t;
    int rc = input_idx(im, i, &t);
    *n = -1;
    if (rc || t < 0)
        return rc;
    const nx_tensor *x = &im->g->t[t];
    if (!x->is_const || x->dtype != NX_I64 || x->ndim > 1)
        return NODE_ERR(NX_ERR_NOTSUP, "input %zu ('%s') must be a constant int64 list (it is "
                        "computed at run time or of another type)", i, x->name);
    size_t e = nx_dims_elems(x->dims, x->ndim);
    if (e > (size_t)max)
        return NODE_ERR(NX_ERR_NOTSUP, "input %zu ('%s') has %zu values, at most %d supported",
                        i, x->name, e, max);
    copy_bytes(out, x->data, e * 8);
    for (size_t k = 0; k < e; k++)
        if (!allow_sym && out[k] == SYM_BATCH)
            return NODE_ERR(NX_ERR_NOTSUP, "input %zu ('%s') depends on the batch size in a "
                            "way that is not supported", i, x->name);
    *n = (int)e;
    return 0;
}

/* A constant scalar float input (Clip's min/max, Pad's value); *has = false if absent. */
static int input_scalar(imp *im, size_t i, float *v, bool *has)
{
    int t;
    int rc = input_idx(im, i, &t);
    *has = false;
    if (rc || t < 0)
        return rc;
    const nx_tensor *x = &im->g->t[t];
    if (!x->is_const || nx_dims_elems(x->dims, x->ndim) != 1)
        return NODE_ERR(NX_ERR_NOTSUP, "input %zu ('%s') must be a constant scalar", i, x->name);
    *v = x->dtype == NX_I64 ? (float)*(int64_t *)x->data : *(float *)x->data;
    *has = true;
    return 0;
}

/* ---- defining outputs ---------------------------------------------------------------- */

static int define(imp *im, const char *name, int t)
{
    if (map_get(&im->names, name) >= 0) {
        nx_err_set(im->eb, NX_ERR_CONFIG, "%s: tensor '%s' is defined twice", im->path, name);
        return NX_ERR_CONFIG;
    }
    map_put(&im->names, name, t);
    return 0;
}

/* The node's only output becomes the existing tensor t (constant folding, aliasing). */
static int output_is(imp *im, int t)
{
    if (im->np->n_output < 1)
        return NODE_ERR(NX_ERR_CONFIG, "no output");
    return define(im, im->np->output[0], t);
}

/* An int64 constant output with the given values. */
static int output_i64(imp *im, const int64_t *v, int ndim, const int64_t *dims)
{
    if (im->np->n_output < 1)
        return NODE_ERR(NX_ERR_CONFIG, "no output");
    return define(im, im->np->output[0], add_i64(im->g, im->np->output[0], v, ndim, dims));
}

/* A new node with the proto's inputs (first `nin`, absent ones -1) and one output tensor. */
static int add_node(imp *im, nx_op op, int nin, int *node)
{
    nx_graph *g = im->g;
    if (im->np->n_output < 1 || !im->np->output[0][0])
        return NODE_ERR(NX_ERR_CONFIG, "no output");
    for (size_t i = 1; i < im->np->n_output; i++)
        if (im->np->output[i][0])
            return NODE_ERR(NX_ERR_NOTSUP, "output %zu ('%s') is not supported", i,
                            im->np->output[i]);
    if (nin > NX_DNN_MAX_IO)
        return NODE_ERR(NX_ERR_NOTSUP, "%d inputs, at most %d supported", nin, NX_DNN_MAX_IO);
    int in[NX_DNN_MAX_IO];
    for (int i = 0; i < nin; i++) {
        int rc = input_idx(im, (size_t)i, &in[i]);
        if (rc)
            return rc;
    }
    int ot = nx_graph_add_tensor(g, im->np->output[0]);
    int rc = define(im, im->np->output[0], ot);
    if (rc)
        return rc;
    int ni = nx_graph_add_node(g, op, im->nname);
    nx_node *n = &g->n[ni];
    n->ninputs = nin;
    copy_bytes(n->inputs, in, (size_t)nin * sizeof *in);
    n->noutputs = 1;
    n->outputs[0] = ot;
    *node = ni;
    return 0;
}

static int infer(imp *im, int node)
{
    nx_errbuf local = {0};
    int rc = nx_graph_infer(im->g, node, &local);
    if (rc)
        nx_err_set(im->eb, rc, "%s: %s", im->path, local.msg);
    return rc;
}

/* ---- operators ----------------------------------------------------------------------- */

static const char *const A_NONE[] = {NULL};

static int conv_pool_attrs(imp *im, nx_node *n, bool conv)
{
    char s[32];
    int rc;
    if ((rc = attr_ints(im, "kernel_shape", n->kernel, 2, 2)) < 0)
        return rc;
    if (!conv && rc == 0)
        return NODE_ERR(NX_ERR_CONFIG, "missing attribute 'kernel_shape'");
    if ((rc = attr_ints(im, "strides", n->strides, 2, 2)) < 0 ||
        (rc = attr_ints(im, "pads", n->pads, 4, 4)) < 0 ||
        (rc = attr_ints(im, "dilations", n->dilations, 2, 2)) < 0)
        return rc;
    for (int i = 0; i < 2; i++)
        if (n->strides[i] < 1 || n->dilations[i] < 1 || n->kernel[i] < 0)
            return NODE_ERR(NX_ERR_CONFIG, "strides, dilations and kernel_shape must be positive");
    for (int i = 0; i < 4; i++)
        if (n->pads[i] < 0)
            return NODE_ERR(NX_ERR_NOTSUP, "unsupported attribute value: negative pads");
    n->ceil_mode = attr_i(im, "ceil_mode", 0);
    const char *ap = attr_s(im, "auto_pad", s, sizeof s);
    if (ap && strcmp(ap, "NOTSET") != 0) {
        const nx_tensor *x = input_t(im, 0);
        if (!x || x->ndim != 4)
            return NODE_ERR(NX_ERR_CONFIG, "input must be 4-D");
        int64_t k[2] = {n->kernel[0], n->kernel[1]};
        if (conv) {
            const nx_tensor *w = input_t(im, 1);
            if (!w || w->ndim != 4)
                return NODE_ERR(NX_ERR_CONFIG, "weights must be 4-D");
            k[0] = w->dims[2];
            k[1] = w->dims[3];
        }
        for (int i = 0; i < 2; i++) {
            if (strcmp(ap, "VALID") == 0) {
                n->pads[i] = n->pads[2 + i] = 0;
            } else if (strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0) {
                int64_t in = x->dims[2 + i], s0 = n->strides[i];
                int64_t out = (in + s0 - 1) / s0;
                int64_t tot = (out - 1) * s0 + (k[i] - 1) * n->dilations[i] + 1 - in;
                if (tot < 0)
                    tot = 0;
                int64_t small = tot / 2, big = tot - small;
                bool upper = strcmp(ap, "SAME_UPPER") == 0;
                n->pads[i] = upper ? small : big;
                n->pads[2 + i] = upper ? big : small;
            } else {
                return NODE_ERR(NX_ERR_NOTSUP, "unsupported attribute value auto_pad='%s'", ap);
            }
        }
    }
    /* ONNX pads are (x1_begin, x2_begin, x1_end, x2_end) = top, left, bottom, right: as ours */
    return 0;
}

static int op_conv(imp *im, int unused)
{
    (void)unused;
    static const char *const allowed[] = {"auto_pad", "dilations", "group", "kernel_shape",
                                          "pads", "strides", NULL};
    int rc, node;
    if ((rc = attrs_check(im, allowed)) || (rc = add_node(im, NX_OP_CONV, (int)im->np->n_input, &node)))
        return rc;
    nx_node *n = &im->g->n[node];
    if (n->ninputs < 2 || n->ninputs > 3)
        return NODE_ERR(NX_ERR_CONFIG, "needs 2 or 3 inputs, has %d", n->ninputs);
    n->group = attr_i(im, "group", 1);
    if ((rc = conv_pool_attrs(im, n, true)))
        return rc;
    n->ceil_mode = 0;
    return infer(im, node);
}

static int op_pool(imp *im, int op)
{
    static const char *const max_allowed[] = {"auto_pad", "ceil_mode", "dilations", "kernel_shape",
                                              "pads", "storage_order", "strides", NULL};
    static const char *const avg_allowed[] = {"auto_pad", "ceil_mode", "count_include_pad",
                                              "kernel_shape", "pads", "strides", NULL};
    int rc, node;
    if ((rc = attrs_check(im, op == NX_OP_MAXPOOL ? max_allowed : avg_allowed)))
        return rc;
    if (attr_i(im, "storage_order", 0) != 0)
        return NODE_ERR(NX_ERR_NOTSUP, "unsupported attribute value storage_order=%lld",
                        (long long)attr_i(im, "storage_order", 0));
    if ((rc = add_node(im, op, 1, &node)))
        return rc;
    nx_node *n = &im->g->n[node];
    if ((rc = conv_pool_attrs(im, n, false)))
        return rc;
    if (n->dilations[0] != 1 || n->dilations[1] != 1)
        return NODE_ERR(NX_ERR_NOTSUP, "unsupported attribute value: dilations other than 1");
    n->count_include_pad = attr_i(im, "count_include_pad", 0);
    return infer(im, node);
}

static int simple_node(imp *im, nx_op op, int nin)
{
    int rc, node;
    if ((rc = add_node(im, op, nin, &node)))
        return rc;
    return infer(im, node);
}

static int op_simple(imp *im, nx_op op, int nin)
{
    int rc = attrs_check(im, A_NONE);
    return rc ? rc : simple_node(im, op, nin);
}

static int op_batchnorm(imp *im, int unused)
{
    (void)unused;
    static const char *const allowed[] = {"epsilon", "momentum", "spatial", "training_mode", NULL};
    int rc, node;
    if ((rc = attrs_check(im, allowed)))
        return rc;
    if (attr_i(im, "training_mode", 0) != 0 || attr_i(im, "spatial", 1) != 1)
        return NODE_ERR(NX_ERR_NOTSUP, "unsupported attribute value: training_mode or spatial");
    if (im->np->n_input != 5)
        return NODE_ERR(NX_ERR_CONFIG, "needs 5 inputs, has %zu", im->np->n_input);
    if ((rc = add_node(im, NX_OP_BATCHNORM, 5, &node)))
        return rc;
    im->g->n[node].epsilon = attr_f(im, "epsilon", 1e-5f);
    return infer(im, node);
}

static int op_clip(imp *im, int unused)
{
    (void)unused;
    static const char *const allowed[] = {"min", "max", NULL};
    int rc, node;
    if ((rc = attrs_check(im, allowed)))
        return rc;
    float lo = attr_f(im, "min", -INFINITY), hi = attr_f(im, "max", INFINITY), v;
    bool has;
    if ((rc = input_scalar(im, 1, &v, &has)))
        return rc;
    if (has)
        lo = v;
    if ((rc = input_scalar(im, 2, &v, &has)))
        return rc;
    if (has)
        hi = v;
    if ((rc = add_node(im, NX_OP_CLIP, 1, &node)))
        return rc;
    im->g->n[node].clip_min = lo;
    im->g->n[node].clip_max = hi;
    return infer(im, node);
}

static int op_binary(imp *im, int op)
{
    int rc, node;
    if ((rc = attrs_check(im, A_NONE)))
        return rc;
    if (im->np->n_input != 2)
        return NODE_ERR(NX_ERR_CONFIG, "needs 2 inputs, has %zu", im->np->n_input);
    const nx_tensor *a = input_t(im, 0), *b = input_t(im, 1);
    if (!a || !b)
        return im->eb->rc ? im->eb->rc : NODE_ERR(NX_ERR_CONFIG, "missing input");
    if (a->dtype == NX_I64 || b->dtype == NX_I64) {
        /* shape arithmetic: fold when both are known constants of the same size (or scalar) */
        if (!a->is_const || !b->is_const)
            return NODE_ERR(NX_ERR_NOTSUP, "int64 arithmetic on run-time values");
        size_t na = nx_dims_elems(a->dims, a->ndim), nb = nx_dims_elems(b->dims, b->ndim);
        if (a->dtype != b->dtype || (na != nb && na != 1 && nb != 1) || a->ndim > 1 || b->ndim > 1)
            return NODE_ERR(NX_ERR_NOTSUP, "int64 arithmetic on mixed types or shapes");
        size_t n = na > nb ? na : nb;
        int64_t v[64];
        if (n > 64)
            return NODE_ERR(NX_ERR_NOTSUP, "int64 arithmetic on more than 64 values");
        const int64_t *x = a->data, *y = b->data;
        for (size_t i = 0; i < n; i++) {
            int64_t p = x[na == 1 ? 0 : i], q = y[nb == 1 ? 0 : i];
            if (p == SYM_BATCH || q == SYM_BATCH)
                return NODE_ERR(NX_ERR_NOTSUP, "arithmetic on the batch size is not supported");
            if (op == NX_OP_DIV && q == 0)
                return NODE_ERR(NX_ERR_CONFIG, "division by zero");
            v[i] = op == NX_OP_ADD ? p + q : op == NX_OP_SUB ? p - q : op == NX_OP_MUL ? p * q : p / q;
        }
        int64_t d = (int64_t)n;
        return output_i64(im, v, na == 1 && nb == 1 && a->ndim == 0 && b->ndim == 0 ? 0 : 1, &d);
    }
    if ((rc = add_node(im, op, 2, &node)))
        return rc;
    return infer(im, node);
}

static int op_gemm(imp *im, int matmul)
{
    static const char *const allowed[] = {"alpha", "beta", "transA", "transB", NULL};
    int rc, node;
    if ((rc = attrs_check(im, matmul ? A_NONE : allowed)))
        return rc;
    int nin = (int)im->np->n_input;
    if (nin < 2 || nin > (matmul ? 2 : 3))
        return NODE_ERR(NX_ERR_CONFIG, "wrong number of inputs (%d)", nin);
    if ((rc = add_node(im, matmul ? NX_OP_MATMUL : NX_OP_GEMM, nin, &node)))
        return rc;
    nx_node *n = &im->g->n[node];
    if (!matmul) {
        n->alpha = attr_f(im, "alpha", 1.0f);
        n->beta = attr_f(im, "beta", 1.0f);
        n->trans_a = attr_i(im, "transA", 0);
        n->trans_b = attr_i(im, "transB", 0);
    }
    return infer(im, node);
}

static int op_axis(imp *im, nx_op op, int64_t def)
{
    static const char *const allowed[] = {"axis", NULL};
    int rc, node;
    if ((rc = attrs_check(im, allowed)))
        return rc;
    if (op == NX_OP_CONCAT) {
        /* int64 shape pieces fold; activations concatenate */
        bool all_i64 = im->np->n_input > 0;
        for (size_t i = 0; i < im->np->n_input; i++) {
            const nx_tensor *t = input_t(im, i);
            if (!t)
                return im->eb->rc ? im->eb->rc : NODE_ERR(NX_ERR_CONFIG, "missing input %zu", i);
            all_i64 = all_i64 && t->is_const && t->dtype == NX_I64 && t->ndim <= 1;
        }
        if (all_i64) {
            int64_t v[NX_DNN_MAX_DIMS * 4];
            int nv = 0;
            for (size_t i = 0; i < im->np->n_input; i++) {
                const nx_tensor *t = input_t(im, i);
                size_t e = nx_dims_elems(t->dims, t->ndim);
                if (nv + e > sizeof v / sizeof *v)
                    return NODE_ERR(NX_ERR_NOTSUP, "int64 concat too long");
                copy_bytes(v + nv, t->data, e * 8);
                nv += (int)e;
            }
            int64_t d = nv;
            return output_i64(im, v, 1, &d);
        }
    }
    if ((rc = add_node(im, op, (int)im->np->n_input, &node)))
        return rc;
    nx_node *n = &im->g->n[node];
    n->axis = attr_i(im, "axis", def);
    if (op == NX_OP_SOFTMAX && im->opset < 13) {
        /* before opset 13 Softmax flattens from `axis` on: the same only on the last axis */
        const nx_tensor *x = input_t(im, 0);
        int64_t ax = n->axis < 0 ? n->axis + x->ndim : n->axis;
        if (ax != x->ndim - 1)
            return NODE_ERR(NX_ERR_NOTSUP, "unsupported attribute value axis=%lld before "
                            "opset 13 (only the last axis)", (long long)n->axis);
    }
    return infer(im, node);
}

static int op_concat(imp *im, int unused)
{
    (void)unused;
    return op_axis(im, NX_OP_CONCAT, 1);
}

static int op_softmax(imp *im, int unused)
{
    (void)unused;
    return op_axis(im, NX_OP_SOFTMAX, im->opset < 13 ? 1 : -1);
}

static int op_unary(imp *im, int op)
{
    return op_simple(im, (nx_op)op, 1);
}

static int transpose_const(imp *im, const nx_tensor *x, const int64_t *perm, int np);

static int op_transpose(imp *im, int unused)
{
    (void)unused;
    static const char *const allowed[] = {"perm", NULL};
    int rc, node;
    if ((rc = attrs_check(im, allowed)))
        return rc;
    int64_t perm[NX_DNN_MAX_DIMS];
    int np = attr_ints(im, "perm", perm, -1, NX_DNN_MAX_DIMS);
    if (np < 0)
        return np;
    const nx_tensor *x = input_t(im, 0);
    if (!x)
        return im->eb->rc ? im->eb->rc : NODE_ERR(NX_ERR_CONFIG, "missing input");
    if (x->is_const)
        return transpose_const(im, x, perm, np);
    if ((rc = add_node(im, NX_OP_TRANSPOSE, 1, &node)))
        return rc;
    nx_node *n = &im->g->n[node];
    copy_bytes(n->perm, perm, sizeof perm);
    n->nperm = np;
    return infer(im, node);
}

static int op_pad(imp *im, int unused)
{
    (void)unused;
    static const char *const allowed[] = {"mode", "pads", "value", NULL};
    char s[32];
    int rc, node;
    if ((rc = attrs_check(im, allowed)))
        return rc;
    const char *mode = attr_s(im, "mode", s, sizeof s);
    if (mode && strcmp(mode, "constant") != 0)
        return NODE_ERR(NX_ERR_NOTSUP, "unsupported attribute value mode='%s'", mode);
    int64_t p[2 * NX_DNN_MAX_DIMS];
    int np = 0;
    float value = attr_f(im, "value", 0.0f), v;
    bool has;
    if (im->opset < 11) {
        if ((np = attr_ints(im, "pads", p, -1, 2 * NX_DNN_MAX_DIMS)) < 0)
            return np;
    } else {
        if ((rc = input_ints(im, 1, p, 2 * NX_DNN_MAX_DIMS, &np, false)))
            return rc;
        if ((rc = input_scalar(im, 2, &v, &has)))
            return rc;
        if (has)
            value = v;
        if (im->np->n_input > 3)
            return NODE_ERR(NX_ERR_NOTSUP, "the axes input is not supported");
    }
    const nx_tensor *x = input_t(im, 0);
    if (!x)
        return im->eb->rc ? im->eb->rc : NODE_ERR(NX_ERR_CONFIG, "missing input");
    if (x->ndim != 4 || np != 8 || p[0] || p[1] || p[4] || p[5])
        return NODE_ERR(NX_ERR_NOTSUP, "only padding of the last two dimensions of a 4-D "
                        "tensor is supported");
    if ((rc = add_node(im, NX_OP_PAD, 1, &node)))
        return rc;
    nx_node *n = &im->g->n[node];
    n->pads[0] = p[2];
    n->pads[1] = p[3];
    n->pads[2] = p[6];
    n->pads[3] = p[7];
    n->pad_value = value;
    return infer(im, node);
}

static int op_reduce(imp *im, int op)
{
    static const char *const allowed[] = {"axes", "keepdims", "noop_with_empty_axes", NULL};
    int rc, node;
    if ((rc = attrs_check(im, allowed)))
        return rc;
    int64_t axes[NX_DNN_MAX_DIMS];
    int na = attr_ints(im, "axes", axes, -1, NX_DNN_MAX_DIMS);
    if (na < 0)
        return na;
    if (im->np->n_input > 1) {   /* opset 18: axes as an input */
        if ((rc = input_ints(im, 1, axes, NX_DNN_MAX_DIMS, &na, false)))
            return rc;
        if (na < 0)
            na = 0;
    }
    if (attr_i(im, "noop_with_empty_axes", 0))
        return NODE_ERR(NX_ERR_NOTSUP, "unsupported attribute value noop_with_empty_axes=1");
    if ((rc = add_node(im, op, 1, &node)))
        return rc;
    nx_node *n = &im->g->n[node];
    copy_bytes(n->axes, axes, (size_t)na * sizeof *axes);
    n->naxes = na;
    n->keepdims = attr_i(im, "keepdims", 1);
    return infer(im, node);
}

/* Resolve a Reshape/Expand target against input x: SYM -> batch, 0 -> copy (Reshape),
 * -1 -> infer (Reshape). Computed at batch 1 and 2, the batch must stay in dimension 0. */
static int resolve_shape(imp *im, const nx_tensor *x, const int64_t *tgt, int nt, bool expand,
                         int64_t *out)
{
    for (int b = 2; b >= 1; b--) {
        int64_t d[NX_DNN_MAX_DIMS], in[NX_DNN_MAX_DIMS];
        copy_bytes(in, x->dims, sizeof in);
        if (!x->is_const)
            in[0] = b;
        int infer_at = -1;
        int64_t known = 1;
        for (int i = 0; i < nt; i++) {
            int64_t v = tgt[i];
            if (v == SYM_BATCH)
                v = b;
            else if (!expand && v == 0) {
                if (i >= x->ndim)
                    return NODE_ERR(NX_ERR_CONFIG, "0 in the shape past the input's rank");
                v = in[i];
            } else if (!expand && v == -1) {
                if (infer_at >= 0)
                    return NODE_ERR(NX_ERR_CONFIG, "more than one -1 in the shape");
                infer_at = i;
                v = 1;
            } else if (v < (expand ? 1 : 0) || v > MAX_ELEMS) {
                return NODE_ERR(NX_ERR_CONFIG, "bad value %lld in the shape", (long long)v);
            }
            d[i] = v;
            if (v > 0 && known > MAX_ELEMS / v)
                return NODE_ERR(NX_ERR_CONFIG, "the shape is too large");
            known *= v;
        }
        if (!expand) {
            int64_t total = (int64_t)nx_dims_elems(in, x->ndim);
            if (infer_at >= 0) {
                if (known == 0 || total % known)
                    return NODE_ERR(NX_ERR_CONFIG, "cannot infer -1 in the shape");
                d[infer_at] = total / known;
            } else if (known != total) {
                return NODE_ERR(NX_ERR_CONFIG, "shape does not match the input's size");
            }
        } else {
            /* Expand broadcasts: the output rank is the larger one */
            int nd = nt > x->ndim ? nt : x->ndim;
            int64_t e[NX_DNN_MAX_DIMS];
            for (int i = 0; i < nd; i++) {
                int it = nt - nd + i, ix = x->ndim - nd + i;
                int64_t a = it >= 0 ? d[it] : 1, c = ix >= 0 ? in[ix] : 1;
                if (a != c && a != 1 && c != 1)
                    return NODE_ERR(NX_ERR_CONFIG, "shape does not broadcast with the input");
                e[i] = a == 1 ? c : a;
            }
            copy_bytes(d, e, sizeof e);
            nt = nd;
        }
        if (!x->is_const && d[0] != b)
            return NODE_ERR(NX_ERR_NOTSUP, "the result would not keep the batch in dimension 0 "
                            "(a shape that mixes the batch with other dimensions)");
        if (b == 1)
            copy_bytes(out, d, (size_t)nt * sizeof *d);
    }
    return expand ? (nt > x->ndim ? nt : x->ndim) : nt;
}

static int op_reshape(imp *im, int expand)
{
    static const char *const allowed[] = {"allowzero", NULL};
    int rc, node, nt;
    if ((rc = attrs_check(im, expand ? A_NONE : allowed)))
        return rc;
    if (attr_i(im, "allowzero", 0))
        return NODE_ERR(NX_ERR_NOTSUP, "unsupported attribute value allowzero=1");
    int64_t tgt[NX_DNN_MAX_DIMS], d[NX_DNN_MAX_DIMS];
    if ((rc = input_ints(im, 1, tgt, NX_DNN_MAX_DIMS, &nt, true)))
        return rc;
    if (nt < 0)
        return NODE_ERR(NX_ERR_CONFIG, "missing the shape input");
    const nx_tensor *x = input_t(im, 0);
    if (!x)
        return im->eb->rc ? im->eb->rc : NODE_ERR(NX_ERR_CONFIG, "missing input");
    int nd = resolve_shape(im, x, tgt, nt, expand, d);
    if (nd < 0)
        return nd;
    if (x->is_const) {
        /* reshaping or expanding a constant: fold (expand only when it is a plain reshape) */
        if (nx_dims_elems(d, nd) != nx_dims_elems(x->dims, x->ndim))
            return NODE_ERR(NX_ERR_NOTSUP, "expanding a constant is not supported");
        size_t bytes = nx_dims_elems(d, nd) * (x->dtype == NX_I64 ? 8 : 4);
        int t = nx_graph_add_tensor(im->g, im->np->output[0]);
        nx_tensor *o = &im->g->t[t];
        x = input_t(im, 0);   /* the array may have moved */
        o->ndim = nd;
        copy_bytes(o->dims, d, (size_t)nd * sizeof *d);
        o->dtype = x->dtype;
        o->is_const = true;
        o->data = nx_malloc(bytes);
        copy_bytes(o->data, x->data, bytes);
        return output_is(im, t);
    }
    int64_t sd = nd;
    int st = add_i64(im->g, im->np->output[0], d, 1, &sd);   /* the resolved shape */
    if ((rc = add_node(im, expand ? NX_OP_EXPAND : NX_OP_RESHAPE, 1, &node)))
        return rc;
    nx_node *n = &im->g->n[node];
    n->ninputs = 2;
    n->inputs[1] = st;
    return infer(im, node);
}

/* Squeeze / Unsqueeze / Flatten: of a constant, fold; of an activation, a Reshape
 * (Flatten stays Flatten). */
static int op_squeeze(imp *im, int kind /* 0 squeeze, 1 unsqueeze, 2 flatten */)
{
    static const char *const allowed[] = {"axes", NULL};
    static const char *const fl_allowed[] = {"axis", NULL};
    int rc;
    if ((rc = attrs_check(im, kind == 2 ? fl_allowed : allowed)))
        return rc;
    const nx_tensor *x = input_t(im, 0);
    if (!x)
        return im->eb->rc ? im->eb->rc : NODE_ERR(NX_ERR_CONFIG, "missing input");
    int64_t axes[NX_DNN_MAX_DIMS], d[NX_DNN_MAX_DIMS];
    int na = 0, nd = 0;
    if (kind == 2) {
        int64_t ax = attr_i(im, "axis", 1);
        if (ax < 0)
            ax += x->ndim;
        if (ax < 0 || ax > x->ndim)
            return NODE_ERR(NX_ERR_CONFIG, "axis out of range");
        if (!x->is_const) {
            int node;
            if ((rc = add_node(im, NX_OP_FLATTEN, 1, &node)))
                return rc;
            im->g->n[node].axis = ax;
            return infer(im, node);
        }
        d[0] = (int64_t)nx_dims_elems(x->dims, (int)ax);
        d[1] = (int64_t)nx_dims_elems(x->dims + ax, x->ndim - (int)ax);
        nd = 2;
    } else {
        if ((na = attr_ints(im, "axes", axes, -1, NX_DNN_MAX_DIMS)) < 0)
            return na;
        if (im->np->n_input > 1 && (rc = input_ints(im, 1, axes, NX_DNN_MAX_DIMS, &na, false)))
            return rc;
        if (na < 0)
            na = 0;
        int outrank = kind == 1 ? x->ndim + na : x->ndim;
        bool mark[NX_DNN_MAX_DIMS * 2] = {0};
        for (int i = 0; i < na; i++) {
            int64_t a = axes[i] < 0 ? axes[i] + outrank : axes[i];
            if (a < 0 || a >= outrank || outrank > NX_DNN_MAX_DIMS)
                return NODE_ERR(NX_ERR_CONFIG, "axis %lld out of range", (long long)axes[i]);
            mark[a] = true;
        }
        if (kind == 1) {
            for (int i = 0, k = 0; i < outrank; i++)
                d[nd++] = mark[i] ? 1 : x->dims[k++];
        } else {
            for (int i = 0; i < x->ndim; i++) {
                bool sq = na ? mark[i] : x->dims[i] == 1;
                if (sq && x->dims[i] != 1)
                    return NODE_ERR(NX_ERR_CONFIG, "cannot squeeze axis %d of size %lld", i,
                                    (long long)x->dims[i]);
                if (!sq)
                    d[nd++] = x->dims[i];
            }
        }
        if (!x->is_const && (mark[0] || (kind == 0 && na == 0)))
            return NODE_ERR(NX_ERR_NOTSUP, "squeezing or unsqueezing the batch dimension");
    }
    int t = nx_graph_add_tensor(im->g, im->np->output[0]);
    x = input_t(im, 0);
    if (x->is_const) {
        nx_tensor *o = &im->g->t[t];
        size_t bytes = nx_dims_elems(x->dims, x->ndim) * (x->dtype == NX_I64 ? 8 : 4);
        o->ndim = nd;
        copy_bytes(o->dims, d, (size_t)nd * sizeof *d);
        o->dtype = x->dtype;
        o->is_const = true;
        o->data = nx_malloc(bytes ? bytes : 8);
        copy_bytes(o->data, x->data, bytes);
        return output_is(im, t);
    }
    /* activation: a Reshape to the new per-sample shape */
    int64_t sd = nd;
    nx_tensor *tt = &im->g->t[t];
    free(tt->name);
    tt->name = nx_strdup("");   /* this tensor becomes the shape constant */
    tt->ndim = 1;
    tt->dims[0] = sd;
    tt->dtype = NX_I64;
    tt->is_const = true;
    tt->data = nx_malloc((size_t)nd * 8);
    copy_bytes(tt->data, d, (size_t)nd * 8);
    int node;
    if ((rc = add_node(im, NX_OP_RESHAPE, 1, &node)))
        return rc;
    nx_node *n = &im->g->n[node];
    n->ninputs = 2;
    n->inputs[1] = t;
    return infer(im, node);
}

static int op_constant(imp *im, int unused)
{
    (void)unused;
    static const char *const allowed[] = {"value", "value_float", "value_floats", "value_int",
                                          "value_ints", NULL};
    int rc;
    if ((rc = attrs_check(im, allowed)))
        return rc;
    if (im->np->n_attribute != 1 || im->np->n_output != 1)
        return NODE_ERR(NX_ERR_CONFIG, "needs exactly one value attribute and one output");
    Onnx__AttributeProto *a = im->np->attribute[0];
    const char *out = im->np->output[0];
    if (strcmp(a->name, "value") == 0) {
        if (!a->t)
            return NODE_ERR(NX_ERR_CONFIG, "'value' is not a tensor");
        int t;
        if ((rc = tensor_from_proto(im, a->t, out, &t)))
            return rc;
        return output_is(im, t);
    }
    if (strcmp(a->name, "value_int") == 0)
        return output_i64(im, &a->i, 0, NULL);
    if (strcmp(a->name, "value_ints") == 0) {
        int64_t d = (int64_t)a->n_ints;
        return output_i64(im, a->ints, 1, &d);
    }
    size_t n = strcmp(a->name, "value_float") == 0 ? 1 : a->n_floats;
    float *f = nx_malloc(n ? n * 4 : 4);
    copy_bytes(f, n == 1 && a->n_floats == 0 ? &a->f : a->floats, n * 4);
    int64_t d = (int64_t)n;
    return output_is(im, nx_graph_add_const(im->g, out, strcmp(a->name, "value_float") ? 1 : 0,
                                            &d, f));
}

static int op_shape(imp *im, int unused)
{
    (void)unused;
    static const char *const allowed[] = {"start", "end", NULL};
    int rc;
    if ((rc = attrs_check(im, allowed)))
        return rc;
    const nx_tensor *x = input_t(im, 0);
    if (!x)
        return im->eb->rc ? im->eb->rc : NODE_ERR(NX_ERR_CONFIG, "missing input");
    int64_t v[NX_DNN_MAX_DIMS];
    int nd = x->ndim;
    int64_t s = attr_i(im, "start", 0), e = attr_i(im, "end", nd);
    if (s < 0)
        s += nd;
    if (e < 0)
        e += nd;
    s = s < 0 ? 0 : s > nd ? nd : s;
    e = e < s ? s : e > nd ? nd : e;
    for (int64_t i = s; i < e; i++)
        v[i - s] = i == 0 && !x->is_const ? SYM_BATCH : x->dims[i];
    int64_t d = e - s;
    return output_i64(im, v, 1, &d);
}

static int op_gather(imp *im, int unused)
{
    (void)unused;
    static const char *const allowed[] = {"axis", NULL};
    int rc;
    if ((rc = attrs_check(im, allowed)))
        return rc;
    const nx_tensor *x = input_t(im, 0), *ix = input_t(im, 1);
    if (!x || !ix)
        return im->eb->rc ? im->eb->rc : NODE_ERR(NX_ERR_CONFIG, "missing input");
    if (!x->is_const || x->dtype != NX_I64 || x->ndim != 1 || !ix->is_const ||
        ix->dtype != NX_I64 || ix->ndim > 1 || attr_i(im, "axis", 0) != 0)
        return NODE_ERR(NX_ERR_NOTSUP, "only gathering from constant int64 lists (shape "
                        "arithmetic) is supported");
    size_t n = nx_dims_elems(ix->dims, ix->ndim);
    int64_t v[NX_DNN_MAX_DIMS * 4];
    if (n > sizeof v / sizeof *v)
        return NODE_ERR(NX_ERR_NOTSUP, "too many indices");
    for (size_t i = 0; i < n; i++) {
        int64_t k = ((int64_t *)ix->data)[i];
        if (k < 0)
            k += x->dims[0];
        if (k < 0 || k >= x->dims[0])
            return NODE_ERR(NX_ERR_CONFIG, "index %lld out of range", (long long)k);
        v[i] = ((int64_t *)x->data)[k];
    }
    int64_t d = (int64_t)n;
    return output_i64(im, v, ix->ndim, &d);
}

/* A constant (fp32 or int64) as element size, dims and data. */
static size_t elem_size(const nx_tensor *t)
{
    return t->dtype == NX_I64 ? 8 : 4;
}

/* out = x[perm-or-slice] for constants: out element i (row-major over od) is read from x at
 * offset base + sum idx[k] * st[k]. */
static void gather_const(const nx_tensor *x, int nd, const int64_t *od, const int64_t *st,
                         int64_t base, void *out)
{
    size_t es = elem_size(x), total = nx_dims_elems(od, nd);
    int64_t idx[NX_DNN_MAX_DIMS] = {0};
    for (size_t i = 0; i < total; i++) {
        int64_t off = base;
        for (int k = 0; k < nd; k++)
            off += idx[k] * st[k];
        copy_bytes((char *)out + i * es, (const char *)x->data + (size_t)off * es, es);
        for (int k = nd - 1; k >= 0; k--) {
            if (++idx[k] < od[k])
                break;
            idx[k] = 0;
        }
    }
}

static int const_output(imp *im, const nx_tensor *like, int nd, const int64_t *od, void *data)
{
    int t = nx_graph_add_tensor(im->g, im->np->output[0]);
    nx_tensor *o = &im->g->t[t];
    o->ndim = nd;
    copy_bytes(o->dims, od, (size_t)nd * sizeof *od);
    o->dtype = like->dtype;
    o->is_const = true;
    o->data = data;
    return output_is(im, t);
}

static void row_strides(const nx_tensor *x, int64_t *st)
{
    int64_t s = 1;
    for (int k = x->ndim - 1; k >= 0; k--) {
        st[k] = s;
        s *= x->dims[k];
    }
}

/* Slice of a constant (shape arithmetic, or folding a constant weight). */
static int op_slice(imp *im, int unused)
{
    (void)unused;
    int rc;
    if ((rc = attrs_check(im, A_NONE)))
        return rc;
    const nx_tensor *x = input_t(im, 0);
    if (!x)
        return im->eb->rc ? im->eb->rc : NODE_ERR(NX_ERR_CONFIG, "missing input");
    if (!x->is_const)
        return NODE_ERR(NX_ERR_NOTSUP, "slicing activations is not supported (only constants "
                        "and shape arithmetic)");
    int64_t st[NX_DNN_MAX_DIMS], en[NX_DNN_MAX_DIMS], ax[NX_DNN_MAX_DIMS], sp[NX_DNN_MAX_DIMS];
    int n1, n2, n3, n4;
    if ((rc = input_ints(im, 1, st, NX_DNN_MAX_DIMS, &n1, false)) ||
        (rc = input_ints(im, 2, en, NX_DNN_MAX_DIMS, &n2, false)) ||
        (rc = input_ints(im, 3, ax, NX_DNN_MAX_DIMS, &n3, false)) ||
        (rc = input_ints(im, 4, sp, NX_DNN_MAX_DIMS, &n4, false)))
        return rc;
    if (n1 < 1 || n2 != n1 || (n3 >= 0 && n3 != n1) || (n4 >= 0 && n4 != n1))
        return NODE_ERR(NX_ERR_CONFIG, "starts, ends, axes and steps differ in length");
    int nd = x->ndim;
    int64_t od[NX_DNN_MAX_DIMS], xs[NX_DNN_MAX_DIMS], ost[NX_DNN_MAX_DIMS], base = 0;
    row_strides(x, xs);
    copy_bytes(od, x->dims, sizeof od);
    copy_bytes(ost, xs, sizeof ost);
    for (int i = 0; i < n1; i++) {
        int64_t a = n3 >= 0 ? ax[i] : i, step = n4 >= 0 ? sp[i] : 1;
        if (a < 0)
            a += nd;
        if (a < 0 || a >= nd || step == 0)
            return NODE_ERR(NX_ERR_CONFIG, "bad axis or zero step");
        int64_t len = x->dims[a], s0 = st[i], e0 = en[i];
        if (s0 < 0)
            s0 += len;
        if (e0 < 0)
            e0 += len;
        int64_t cnt;
        if (step > 0) {
            s0 = s0 < 0 ? 0 : s0 > len ? len : s0;
            e0 = e0 < 0 ? 0 : e0 > len ? len : e0;
            cnt = e0 > s0 ? (e0 - s0 + step - 1) / step : 0;
        } else {
            s0 = s0 < 0 ? -1 : s0 >= len ? len - 1 : s0;
            e0 = e0 < -1 ? -1 : e0 >= len ? len - 1 : e0;
            cnt = s0 > e0 ? (s0 - e0 - step - 1) / -step : 0;
        }
        od[a] = cnt;
        ost[a] = xs[a] * step;
        base += s0 * xs[a];
    }
    size_t n = nx_dims_elems(od, nd);
    void *data = nx_malloc((n ? n : 1) * elem_size(x));
    if (n)
        gather_const(x, nd, od, ost, base, data);
    return const_output(im, x, nd, od, data);
}

/* Transpose of a constant: folded (activations go through op_transpose). */
static int transpose_const(imp *im, const nx_tensor *x, const int64_t *perm, int np)
{
    int nd = x->ndim;
    int64_t p[NX_DNN_MAX_DIMS], xs[NX_DNN_MAX_DIMS], od[NX_DNN_MAX_DIMS], ost[NX_DNN_MAX_DIMS];
    bool seen[NX_DNN_MAX_DIMS] = {0};
    for (int i = 0; i < nd; i++) {
        p[i] = np ? perm[i] : nd - 1 - i;
        if (p[i] < 0 || p[i] >= nd || seen[p[i]] || (np && np != nd))
            return NODE_ERR(NX_ERR_CONFIG, "perm is not a permutation");
        seen[p[i]] = true;
    }
    row_strides(x, xs);
    for (int i = 0; i < nd; i++) {
        od[i] = x->dims[p[i]];
        ost[i] = xs[p[i]];
    }
    size_t n = nx_dims_elems(od, nd);
    void *data = nx_malloc((n ? n : 1) * elem_size(x));
    gather_const(x, nd, od, ost, 0, data);
    return const_output(im, x, nd, od, data);
}

static int op_constant_of_shape(imp *im, int unused)
{
    (void)unused;
    static const char *const allowed[] = {"value", NULL};
    int rc, nd;
    if ((rc = attrs_check(im, allowed)))
        return rc;
    int64_t d[NX_DNN_MAX_DIMS];
    if ((rc = input_ints(im, 0, d, NX_DNN_MAX_DIMS, &nd, false)))
        return rc;
    if (nd < 0 || !dims_ok(d, (size_t)nd) || nx_dims_elems(d, nd) > (1u << 24))
        return NODE_ERR(NX_ERR_CONFIG, "bad shape");
    nx_tensor like = {.dtype = NX_F32};
    int64_t iv = 0;
    float fv = 0.0f;
    const Onnx__AttributeProto *a = attr_find(im->np, "value");
    if (a && a->t) {
        int t;
        if ((rc = tensor_from_proto(im, a->t, "", &t)))
            return rc;
        const nx_tensor *vt = &im->g->t[t];
        if (nx_dims_elems(vt->dims, vt->ndim) != 1)
            return NODE_ERR(NX_ERR_CONFIG, "value must hold one element");
        like.dtype = vt->dtype;
        if (vt->dtype == NX_I64)
            iv = *(int64_t *)vt->data;
        else
            fv = *(float *)vt->data;
    }
    size_t n = nx_dims_elems(d, nd);
    void *data = nx_malloc((n ? n : 1) * elem_size(&like));
    for (size_t i = 0; i < n; i++) {
        if (like.dtype == NX_I64)
            ((int64_t *)data)[i] = iv;
        else
            ((float *)data)[i] = fv;
    }
    return const_output(im, &like, nd, d, data);
}

static int op_cast(imp *im, int unused)
{
    (void)unused;
    static const char *const allowed[] = {"to", NULL};
    int rc;
    if ((rc = attrs_check(im, allowed)))
        return rc;
    const nx_tensor *x = input_t(im, 0);
    if (!x)
        return im->eb->rc ? im->eb->rc : NODE_ERR(NX_ERR_CONFIG, "missing input");
    int64_t to = attr_i(im, "to", 0);
    int it;
    input_idx(im, 0, &it);
    if ((to == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 && x->dtype == NX_I64) ||
        (to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && x->dtype == NX_F32))
        return x->is_const ? output_is(im, it) : simple_node(im, NX_OP_IDENTITY, 1);
    return NODE_ERR(NX_ERR_NOTSUP, "unsupported attribute value to=%lld for this input",
                    (long long)to);
}

static int op_identity(imp *im, int op)
{
    static const char *const allowed[] = {"ratio", "seed", "is_test", NULL};
    int rc, it;
    if ((rc = attrs_check(im, op == NX_OP_DROPOUT ? allowed : A_NONE)))
        return rc;
    if ((rc = input_idx(im, 0, &it)))
        return rc;
    if (it < 0)
        return NODE_ERR(NX_ERR_CONFIG, "missing input");
    if (op == NX_OP_DROPOUT && im->np->n_input > 2) {
        float tm;
        bool has;
        if ((rc = input_scalar(im, 2, &tm, &has)))
            return rc;
        if (has && tm != 0)
            return NODE_ERR(NX_ERR_NOTSUP, "training_mode = true is not supported");
    }
    if (im->g->t[it].is_const)
        return output_is(im, it);
    return simple_node(im, op, 1);
}

/* Every operator the importer knows: ONNX op type, handler, handler argument. */
typedef struct op_row {
    const char *name;
    int (*fn)(imp *im, int arg);
    int arg;
} op_row;

static const op_row op_table[] = {
    {"Conv", op_conv, 0},
    {"MaxPool", op_pool, NX_OP_MAXPOOL},
    {"AveragePool", op_pool, NX_OP_AVGPOOL},
    {"GlobalAveragePool", op_unary, NX_OP_GLOBALAVGPOOL},
    {"BatchNormalization", op_batchnorm, 0},
    {"Relu", op_unary, NX_OP_RELU},
    {"Sigmoid", op_unary, NX_OP_SIGMOID},
    {"Clip", op_clip, 0},
    {"Add", op_binary, NX_OP_ADD},
    {"Sub", op_binary, NX_OP_SUB},
    {"Mul", op_binary, NX_OP_MUL},
    {"Div", op_binary, NX_OP_DIV},
    {"Gemm", op_gemm, 0},
    {"MatMul", op_gemm, 1},
    {"Concat", op_concat, 0},
    {"Softmax", op_softmax, 0},
    {"Flatten", op_squeeze, 2},
    {"Squeeze", op_squeeze, 0},
    {"Unsqueeze", op_squeeze, 1},
    {"Reshape", op_reshape, 0},
    {"Expand", op_reshape, 1},
    {"Transpose", op_transpose, 0},
    {"Pad", op_pad, 0},
    {"ReduceL2", op_reduce, NX_OP_REDUCEL2},
    {"ReduceMean", op_reduce, NX_OP_REDUCEMEAN},
    {"Dropout", op_identity, NX_OP_DROPOUT},
    {"Identity", op_identity, NX_OP_IDENTITY},
    {"Constant", op_constant, 0},
    {"Shape", op_shape, 0},
    {"Gather", op_gather, 0},
    {"ConstantOfShape", op_constant_of_shape, 0},
    {"Slice", op_slice, 0},
    {"Cast", op_cast, 0},
};

static int import_node(imp *im)
{
    const Onnx__NodeProto *np = im->np;
    const char *op = np->op_type ? np->op_type : "";
    if (np->domain && np->domain[0] && strcmp(np->domain, "ai.onnx") != 0)
        return NODE_ERR(NX_ERR_NOTSUP, "unsupported operator domain '%s'", np->domain);
    if (np->n_output < 1 || !np->output[0][0])
        return NODE_ERR(NX_ERR_CONFIG, "no output");
    for (size_t i = 0; i < np->n_output; i++)
        if (!np->output[i])
            return NODE_ERR(NX_ERR_CONFIG, "null output name");
    for (size_t i = 0; i < sizeof op_table / sizeof *op_table; i++)
        if (!strcmp(op, op_table[i].name))
            return op_table[i].fn(im, op_table[i].arg);
    return NODE_ERR(NX_ERR_NOTSUP, "unsupported operator");
}

/* ---- the model ----------------------------------------------------------------------- */

static int import_input(imp *im, const Onnx__ValueInfoProto *vi)
{
    const char *name = vi->name ? vi->name : "";
    if (map_get(&im->names, name) >= 0)
        return 0;   /* an initializer listed as an input (older exporters) */
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type->shape ||
        (tp->tensor_type->has_elem_type &&
         tp->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)) {
        nx_err_set(im->eb, NX_ERR_NOTSUP, "%s: input '%s': only float tensors of known rank are "
                   "supported", im->path, name);
        return NX_ERR_NOTSUP;
    }
    const Onnx__TensorShapeProto *sp = tp->tensor_type->shape;
    if (sp->n_dim < 1 || sp->n_dim > NX_DNN_MAX_DIMS) {
        nx_err_set(im->eb, NX_ERR_NOTSUP, "%s: input '%s': rank %zu (1..%d supported; dimension "
                   "0 is the batch)", im->path, name, sp->n_dim, NX_DNN_MAX_DIMS);
        return NX_ERR_NOTSUP;
    }
    int t = nx_graph_add_tensor(im->g, name);
    nx_tensor *x = &im->g->t[t];
    x->ndim = (int)sp->n_dim;
    x->dims[0] = 1;   /* the batch, symbolic or fixed */
    for (size_t i = 1; i < sp->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = sp->dim[i];
        if (d->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ||
            d->dim_value < 1 || d->dim_value > (1 << 24)) {
            nx_err_set(im->eb, NX_ERR_NOTSUP, "%s: input '%s': dimension %zu must be a fixed "
                       "positive size (only the batch dimension 0 may be symbolic)", im->path,
                       name, i);
            return NX_ERR_NOTSUP;
        }
        x->dims[i] = d->dim_value;
    }
    x->is_input = true;
    im->g->inputs = nx_realloc(im->g->inputs, (size_t)(im->g->ninputs + 1) * sizeof(int));
    im->g->inputs[im->g->ninputs++] = t;
    return define(im, name, t);
}

/* Declared output shapes (where fixed) must agree with ours, batch aside. */
static int check_output(imp *im, const Onnx__ValueInfoProto *vi, const nx_tensor *t)
{
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type->shape)
        return 0;
    const Onnx__TensorShapeProto *sp = tp->tensor_type->shape;
    bool bad = sp->n_dim != (size_t)t->ndim;
    for (size_t i = 1; !bad && i < sp->n_dim; i++)
        bad = sp->dim[i]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
              sp->dim[i]->dim_value != t->dims[i];
    if (bad) {
        char b[128];
        nx_err_set(im->eb, NX_ERR_CONFIG, "%s: output '%s': the model declares another shape "
                   "than the inferred %s", im->path, t->name,
                   nx_dims_str(b, sizeof b, t->dims, t->ndim));
        return NX_ERR_CONFIG;
    }
    return 0;
}

static int import_model(imp *im, Onnx__ModelProto *m)
{
    nx_graph *g = im->g;
    int rc;
    im->opset = 0;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        if (!o->domain || !o->domain[0] || strcmp(o->domain, "ai.onnx") == 0)
            im->opset = o->version;
    }
    if (m->n_opset_import == 0)
        im->opset = 1;
    if (im->opset < 7 || im->opset > 18) {
        nx_err_set(im->eb, NX_ERR_NOTSUP, "%s: ONNX opset %lld is not supported (7..18 are)",
                   im->path, (long long)im->opset);
        return NX_ERR_NOTSUP;
    }
    Onnx__GraphProto *gp = m->graph;
    if (!gp) {
        nx_err_set(im->eb, NX_ERR_CONFIG, "%s: the model has no graph", im->path);
        return NX_ERR_CONFIG;
    }
    g->name = nx_strdup(gp->name && gp->name[0] ? gp->name : "model");
    for (size_t i = 0; i < gp->n_initializer; i++) {
        Onnx__TensorProto *tp = gp->initializer[i];
        const char *name = tp->name ? tp->name : "";
        int t;
        if ((rc = tensor_from_proto(im, tp, name, &t)) || (rc = define(im, name, t)))
            return rc;
    }
    if (gp->n_sparse_initializer) {
        nx_err_set(im->eb, NX_ERR_NOTSUP, "%s: sparse initializers are not supported", im->path);
        return NX_ERR_NOTSUP;
    }
    for (size_t i = 0; i < gp->n_input; i++)
        if ((rc = import_input(im, gp->input[i])))
            return rc;
    if (g->ninputs == 0) {
        nx_err_set(im->eb, NX_ERR_CONFIG, "%s: the graph has no input", im->path);
        return NX_ERR_CONFIG;
    }
    for (size_t i = 0; i < gp->n_node; i++) {
        im->np = gp->node[i];
        if (im->np->name && im->np->name[0])
            snprintf(im->nname, sizeof im->nname, "%s", im->np->name);
        else
            snprintf(im->nname, sizeof im->nname, "%s_%zu",
                     im->np->op_type ? im->np->op_type : "node", i);
        if ((rc = import_node(im)))
            return rc;
    }
    im->np = NULL;
    if (gp->n_output == 0) {
        nx_err_set(im->eb, NX_ERR_CONFIG, "%s: the graph has no output", im->path);
        return NX_ERR_CONFIG;
    }
    g->outputs = nx_calloc(gp->n_output, sizeof(int));
    for (size_t i = 0; i < gp->n_output; i++) {
        const char *name = gp->output[i]->name ? gp->output[i]->name : "";
        int t = map_get(&im->names, name);
        if (t < 0 || g->t[t].is_const || g->t[t].is_input) {
            nx_err_set(im->eb, t < 0 ? NX_ERR_CONFIG : NX_ERR_NOTSUP, "%s: output '%s' %s",
                       im->path, name, t < 0 ? "is not produced by any node"
                       : "is a constant or a graph input (not supported)");
            return im->eb->rc;
        }
        if ((rc = check_output(im, gp->output[i], &g->t[t])))
            return rc;
        g->t[t].is_output = true;
        g->outputs[g->noutputs++] = t;
    }
    return 0;
}

int nx_onnx_import(nx_graph *g, const uint8_t *buf, size_t len, const char *path, nx_errbuf *eb)
{
    nx_graph_init(g);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    if (!m) {
        nx_err_set(eb, NX_ERR_PARSE, "%s: not a valid ONNX model: protobuf decoding failed "
                   "(truncated or corrupt file?)", path);
        return NX_ERR_PARSE;
    }
    imp im = {.g = g, .path = path, .eb = eb};
    nx_errbuf local = {0};
    if (!eb)
        im.eb = &local;
    int rc = import_model(&im, m);
    onnx__model_proto__free_unpacked(m, NULL);
    map_free(&im.names);
    if (rc)
        nx_graph_free(g);
    return rc;
}

int nx_onnx_load(nx_graph *g, const char *path, nx_errbuf *eb)
{
    nx_graph_init(g);
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        nx_err_set(eb, NX_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NX_ERR_IO;
    }
    if (st.st_size == 0) {
        close(fd);
        nx_err_set(eb, NX_ERR_PARSE, "%s: empty file", path);
        return NX_ERR_PARSE;
    }
    size_t len = (size_t)st.st_size;
    void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        nx_err_set(eb, NX_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
        return NX_ERR_IO;
    }
    int rc = nx_onnx_import(g, p, len, path, eb);
    munmap(p, len);
    return rc;
}

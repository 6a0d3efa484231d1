/* graph.h — the inference engine's model graph and the executor interface.
 *
 * changed (CPU side, additive only):
 *  - ops appended: NX_OP_PAD, NX_OP_SUB, NX_OP_DIV, NX_OP_EXPAND, NX_OP_REDUCEL2,
 *    NX_OP_REDUCEMEAN, NX_OP_SIGMOID (NX_OP_COUNT_BASE is still the count).
 *  - NX_DNN_MAX_IO 8 -> 64 (densenet121's Concat nodes have up to 49 inputs).
 *  - node fields appended: pad_value (Pad), axes/naxes/keepdims (ReduceL2/ReduceMean).
 *  - semantics pinned down below ("Operator semantics"), nx_onnx_load() (from a file),
 *    nx_graph_infer() (shape inference, also run by prepare), nx_graph_dump().
 *  - nx_exec_ops.device (appended, optional): the device's name, for nexus-profile.
 *  - nx_graph_cut(): a model's prefix or suffix (prefix batching; nexus-profile --part).
 * changed (CUDA side, additive only):
 *  - nx_exec_ops.bench appended (optional, NULL for the CPU): device-only timing of a batch,
 *    the inputs already on the GPU (CUDA-graph replays bracketed by events), which is what
 *    ../shared/data/h100-pytorch-cudagraph.json measures; nexus-profile should use it when
 *    it is not NULL. The CUDA executor plans its own device buffers (it adds layout twins and
 *    fusions); it reads max_batch but not buffer/buffer_elems.
 *
 * An ONNX model (real/dnn/onnx_import.c) becomes an nx_graph: tensors (with
 * static shapes whose first dimension is the batch), initializers (weights,
 * always fp32 here; an executor converts as it needs), and nodes in
 * topological order. nx_graph_prepare() (real/dnn/prepare.c) folds
 * BatchNormalization into the preceding Conv, fuses activations into their
 * producer, removes dead nodes, and plans activation buffers by lifetime.
 *
 * Executors run a prepared graph for a batch of inputs. They are ops tables
 * (ggml's backend iface): the CPU reference (real/dnn/cpu.c) and CUDA
 * (real/dnn/cuda/, built with USE_CUDA=1; without it its init returns
 * NX_ERR_NOTSUP). No CUDA type appears in this header.
 *
 * Ownership: the graph owns every name, shape, attribute array and
 * initializer buffer; nx_graph_free() releases them. */
#ifndef NX_DNN_GRAPH_H
#define NX_DNN_GRAPH_H

#include <stdio.h>

#include "nx.h"

#define NX_DNN_MAX_DIMS 8
#define NX_DNN_MAX_IO 64   /* densenet121 concatenates up to 49 tensors */

typedef enum nx_dtype {
    NX_F32 = 0,
    NX_F16,
    NX_I64,   /* shape tensors (Reshape); only as initializers */
} nx_dtype;

typedef struct nx_tensor {
    char *name;
    int ndim;
    int64_t dims[NX_DNN_MAX_DIMS];  /* dims[0] is the batch for activations */
    nx_dtype dtype;
    void *data;          /* initializer data (owned), or NULL for activations */
    bool is_input, is_output, is_const;
    /* filled by nx_graph_prepare: */
    int buffer;          /* activation buffer index, -1 for constants/graph inputs */
    int first_use, last_use; /* node indices */
} nx_tensor;

typedef enum nx_op {
    NX_OP_CONV = 0,
    NX_OP_BATCHNORM,
    NX_OP_RELU,
    NX_OP_CLIP,
    NX_OP_MAXPOOL,
    NX_OP_AVGPOOL,
    NX_OP_GLOBALAVGPOOL,
    NX_OP_ADD,
    NX_OP_MUL,
    NX_OP_CONCAT,
    NX_OP_GEMM,
    NX_OP_MATMUL,
    NX_OP_FLATTEN,
    NX_OP_RESHAPE,
    NX_OP_TRANSPOSE,
    NX_OP_SOFTMAX,
    NX_OP_DROPOUT,
    NX_OP_IDENTITY,
    /* whatever else the zoo needs is appended here (keep nx_op_name in sync) */
    NX_OP_PAD,          /* constant padding of H and W (pads[], pad_value); inception, densenet */
    NX_OP_SUB,
    NX_OP_DIV,
    NX_OP_EXPAND,       /* broadcast input 0 to the output's shape */
    NX_OP_REDUCEL2,     /* over axes[0..naxes) (never axis 0), keepdims; SSD's L2Norm */
    NX_OP_REDUCEMEAN,
    NX_OP_SIGMOID,
    NX_OP_COUNT_BASE,
} nx_op;

typedef enum nx_act {
    NX_ACT_NONE = 0,
    NX_ACT_RELU,
    NX_ACT_CLIP,     /* clamp to [act_min, act_max] (ReLU6 = Clip(0, 6)) */
} nx_act;

typedef struct nx_node {
    nx_op op;
    char *name;
    int ninputs, noutputs;
    int inputs[NX_DNN_MAX_IO];   /* tensor indices; -1 for an absent optional input */
    int outputs[NX_DNN_MAX_IO];
    /* attributes (the union of what the supported ops use) */
    int64_t kernel[2], strides[2], pads[4], dilations[2]; /* pads: top, left, bottom, right */
    int64_t group;
    int64_t axis;
    int64_t perm[NX_DNN_MAX_DIMS];
    int nperm;
    float alpha, beta;           /* Gemm */
    int64_t trans_a, trans_b;    /* Gemm */
    float epsilon;               /* BatchNormalization */
    float clip_min, clip_max;    /* Clip */
    int64_t ceil_mode, count_include_pad;
    /* fused by prepare: */
    nx_act act;
    float act_min, act_max;
    bool dead;                   /* removed by prepare (folded or unused) */
    /* appended (see "changed" at the top): */
    float pad_value;             /* Pad: the constant */
    int64_t axes[NX_DNN_MAX_DIMS];  /* ReduceL2/ReduceMean: reduced axes, sorted, >= 1 */
    int naxes;
    int64_t keepdims;
} nx_node;

/* Operator semantics (what every executor implements, after nx_graph_prepare):
 *  - Tensors are dense, row-major (NCHW for 4-D activations). Every activation's dims[0] is
 *    the batch: dims are stored for batch 1 and scale with the batch at run time.
 *  - Conv: inputs X, W [M, C/group, kh, kw], optional B [M]; kernel/strides/pads/dilations/group;
 *    then `act`. Gemm: A [batch, K] (trans_a = 0 only), B [N, K] (trans_b = 1) or [K, N]
 *    (trans_b = 0), optional C [N]; y = alpha*A*B' + beta*C, then `act`. MatMul: A [batch.., K]
 *    by a constant B [K, N]: rows = every leading dim of A, no bias, alpha = 1.
 *  - BatchNormalization (only where it does not follow a Conv): inputs X, scale, B, mean, var;
 *    epsilon; then `act`.
 *  - Add/Mul/Sub/Div: numpy broadcasting of two inputs to the output's shape (either input may
 *    be a constant); then `act` (Add only). Expand: broadcast input 0 to the output's shape.
 *  - MaxPool/AveragePool: kernel, strides, pads, ceil_mode; AveragePool's count_include_pad.
 *    GlobalAveragePool: mean over H and W.
 *  - Concat: along `axis` (>= 1). Transpose: `perm` (perm[0] = 0). Softmax: along `axis`
 *    (normalised to >= 1), opset-13 semantics (one axis).
 *  - Flatten/Reshape: the output tensor's dims are final (shape inputs were folded at import);
 *    the data is copied (or aliased) unchanged. Squeeze/Unsqueeze import as Reshape.
 *  - Pad: pads[] = top, left, bottom, right of the last two dims, pad_value; mode constant.
 *  - ReduceL2/ReduceMean: over axes[], keepdims. Sigmoid/Relu/Clip: elementwise.
 *  - Dropout/Identity: copy (prepare removes them unless an output needs the copy).
 *  - `act` (NX_ACT_RELU, or NX_ACT_CLIP to [act_min, act_max]) is set by prepare only on Conv,
 *    Gemm, MatMul, BatchNormalization and Add; standalone Relu/Clip nodes remain elsewhere.
 *  - After prepare, a zero Pad in front of a Conv or an AveragePool is gone: its pads were
 *    added to the node's (AveragePool then has count_include_pad = 1).
 *  - Graph inputs are never written; graph outputs have their own buffers. */

typedef struct nx_graph {
    char *name;
    nx_tensor *t;
    int nt, capt;
    nx_node *n;
    int nn, capn;
    int *inputs, ninputs;        /* graph inputs (tensor indices), not initializers */
    int *outputs, noutputs;
    /* filled by nx_graph_prepare: */
    int max_batch;
    int nbuffers;
    size_t *buffer_elems;        /* per buffer: elements at max_batch */
} nx_graph;

void nx_graph_init(nx_graph *g);
void nx_graph_free(nx_graph *g);
const char *nx_op_name(nx_op op);
/* Elements of tensor i at batch b (dims[0] replaced by b for activations). */
size_t nx_tensor_elems(const nx_tensor *t, int batch);

/* Parse an ONNX ModelProto from a buffer. An unsupported operator or
 * attribute is NX_ERR_NOTSUP with "node 'name' (OpType): what"; malformed
 * protobuf is NX_ERR_PARSE. `path` is for messages. */
int nx_onnx_import(nx_graph *g, const uint8_t *buf, size_t len, const char *path,
                   nx_errbuf *eb);

/* Read a file and nx_onnx_import() it (NX_ERR_IO if it cannot be read). */
int nx_onnx_load(nx_graph *g, const char *path, nx_errbuf *eb);

/* Fold, fuse, remove dead nodes, infer shapes, plan buffers for max_batch. */
int nx_graph_prepare(nx_graph *g, int max_batch, nx_errbuf *eb);

/* Shape inference of node i's outputs from its inputs (the importer runs it node by node,
 * prepare runs it over every live node). NX_ERR_CONFIG names the node on a mismatch. */
int nx_graph_infer(nx_graph *g, int node, nx_errbuf *eb);

/* Keep only the part of the model before (prefix) or after (suffix) activation `tensor`
 * (its name; NULL, "" or "auto": the data input of the last node, e.g. a classifier's
 * features): the prefix's only output, or the suffix's only input, becomes that tensor. For
 * prefix batching: models that share a trunk run its prefix once, then each its suffix. Call
 * before nx_graph_prepare. NX_ERR_NOTFOUND for an unknown tensor, NX_ERR_CONFIG when the
 * suffix would need another tensor from before the cut (a skip connection). */
int nx_graph_cut(nx_graph *g, const char *tensor, bool suffix, nx_errbuf *eb);

/* A readable listing of the live graph (one line per node: op, name, act, output shape). */
void nx_graph_dump(const nx_graph *g, FILE *f);

/* ---- executors ------------------------------------------------------------------ */

typedef struct nx_exec nx_exec;

typedef enum nx_precision {
    NX_PREC_FP32 = 0,
    NX_PREC_FP16,
} nx_precision;

typedef struct nx_exec_ops {
    const char *name;
    /* Load a prepared graph: reserve every buffer and workspace for
     * g->max_batch once. device: GPU index (ignored by the CPU). The executor keeps
     * the graph pointer: do not free, cut or re-prepare the graph while it lives. */
    int (*init)(nx_exec **out, const nx_graph *g, nx_precision prec, int device,
                nx_errbuf *eb);
    /* Run a batch: in[i] points to batch x input i (fp32, NCHW, host memory);
     * out[i] receives batch x output i (fp32, host). Synchronous. */
    int (*run)(nx_exec *e, int batch, const float *const *in, float *const *out,
               nx_errbuf *eb);
    /* Peak device (or host) memory the executor holds, in bytes. */
    size_t (*memory)(const nx_exec *e);
    void (*free)(nx_exec *e);
    /* Optional (NULL where absent; appended by the CUDA side): time `reps` forward passes
     * at `batch` with the inputs already in device memory, after `warmup` untimed ones;
     * us[r] receives pass r in microseconds. The first call at a batch size also tunes and
     * captures it (not timed). */
    int (*bench)(nx_exec *e, int batch, int warmup, int reps, double *us, nx_errbuf *eb);
    /* Optional (NULL allowed; appended by the CPU side): the device's name as its vendor
     * gives it ("NVIDIA H100 80GB HBM3", the CPU's model name); nexus-profile writes it into
     * the profile's provenance and derives the `gpu:` field from it. */
    const char *(*device)(const nx_exec *e);
} nx_exec_ops;

extern const nx_exec_ops nx_exec_cpu_ops;
extern const nx_exec_ops nx_exec_cuda_ops;   /* NX_ERR_NOTSUP without USE_CUDA=1 */

#endif

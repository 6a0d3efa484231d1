/* graph.h — the inference engine's model graph and the executor interface.
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

#include "nx.h"

#define NX_DNN_MAX_DIMS 8
#define NX_DNN_MAX_IO 8

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
} nx_node;

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

/* Fold, fuse, remove dead nodes, infer shapes, plan buffers for max_batch. */
int nx_graph_prepare(nx_graph *g, int max_batch, nx_errbuf *eb);

/* ---- executors ------------------------------------------------------------------ */

typedef struct nx_exec nx_exec;

typedef enum nx_precision {
    NX_PREC_FP32 = 0,
    NX_PREC_FP16,
} nx_precision;

typedef struct nx_exec_ops {
    const char *name;
    /* Load a prepared graph: reserve every buffer and workspace for
     * g->max_batch once. device: GPU index (ignored by the CPU). */
    int (*init)(nx_exec **out, const nx_graph *g, nx_precision prec, int device,
                nx_errbuf *eb);
    /* Run a batch: in[i] points to batch x input i (fp32, NCHW, host memory);
     * out[i] receives batch x output i (fp32, host). Synchronous. */
    int (*run)(nx_exec *e, int batch, const float *const *in, float *const *out,
               nx_errbuf *eb);
    /* Peak device (or host) memory the executor holds, in bytes. */
    size_t (*memory)(const nx_exec *e);
    void (*free)(nx_exec *e);
} nx_exec_ops;

extern const nx_exec_ops nx_exec_cpu_ops;
extern const nx_exec_ops nx_exec_cuda_ops;   /* NX_ERR_NOTSUP without USE_CUDA=1 */

#endif

/* dnn_int.h — helpers shared by the engine's own files (import, prepare, shape inference,
 * CPU executor); not part of the executor contract in graph.h. */
#ifndef NX_DNN_INT_H
#define NX_DNN_INT_H

#include "graph.h"

/* Append a tensor (name copied; dims zeroed, buffer -1) or a node (name copied, attributes at
 * their ONNX defaults). Both return the new index. Pointers into g->t / g->n are invalidated. */
int nx_graph_add_tensor(nx_graph *g, const char *name);
int nx_graph_add_node(nx_graph *g, nx_op op, const char *name);
/* A constant fp32 tensor of the given shape that owns `data` (malloc'd). */
int nx_graph_add_const(nx_graph *g, const char *name, int ndim, const int64_t *dims, float *data);
/* Elements of a tensor's dims (constants: as stored; activations: at batch 1). */
size_t nx_dims_elems(const int64_t *dims, int ndim);
/* "[1, 3, 224, 224]" into buf. */
const char *nx_dims_str(char *buf, size_t n, const int64_t *dims, int ndim);

#endif

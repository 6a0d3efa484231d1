/* cpu_ops.h — the CPU executor's operators other than GEMM-based ones (internal to
 * real/dnn/): each reads its inputs and writes its output for a batch, as graph.h's
 * "Operator semantics" describe. */
#ifndef NX_DNN_CPU_OPS_H
#define NX_DNN_CPU_OPS_H

#include "dnn_int.h"
#include "gemm.h"

/* Round each value to the nearest fp16 value (ties to even; overflow to infinity). */
void nx_round_half(float *x, size_t n);
float nx_half_round(float x);

/* Depthwise convolution (group = channels, one filter each): w [c][kh][kw]. */
void nx_cpu_depthwise(const float *x, float *y, const float *w, const float *bias, int batch,
                      int c, int h, int wd, int oh, int ow, const nx_node *n,
                      const nx_gemm_epi *epi);
/* y = act(x * scale[c] + shift[c]) over channel axis 1 (BatchNormalization). */
void nx_cpu_scale_shift(const nx_graph *g, int node, int batch, const float *x, float *y,
                        const float *scale, const float *shift);
/* Add/Sub/Mul/Div with broadcasting (a, b: the node's two inputs). */
void nx_cpu_binary(const nx_graph *g, int node, int batch, const float *a, const float *b,
                   float *y);
/* Concat: xs[k] is input k. */
void nx_cpu_concat(const nx_graph *g, int node, int batch, const float *const *xs, float *y);
/* Every other operator: one data input x. */
void nx_cpu_op(const nx_graph *g, int node, int batch, const float *x, float *y);

#endif

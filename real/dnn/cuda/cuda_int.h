/* cuda_int.h — internal to real/dnn/cuda/: the kernels that the CUDA executor (cuda_exec.cu)
 * launches besides cuDNN and cuBLASLt (copies and layout conversion, epilogues, element-wise,
 * pooling, reductions, depthwise and small direct convolutions). The one check macro for
 * CUDA, cuDNN and cuBLAS calls (CK) lives in cuda_exec.cu, the only file that calls them.
 *
 * This header is CUDA C++ and is included only by the .cu files of this folder; nothing
 * outside real/dnn/cuda/ sees a CUDA type. Every launcher enqueues on the given stream (so it
 * can be captured into a CUDA graph), never synchronises and never allocates, and returns the
 * launch's cudaError_t. Element counts must stay below 2^31 (the executor checks at load).
 *
 * Tensors are described by views: logical dims (the ONNX order, NCHW for 4-D) and physical
 * strides in elements, so one kernel serves NCHW and NHWC storage, transposes, broadcasting
 * and concatenation slices. */
#ifndef NX_DNN_CUDA_INT_H
#define NX_DNN_CUDA_INT_H

#include <cuda_runtime.h>

namespace nxc {

enum dtype_t { DT_F32 = 0, DT_F16 = 1 };
enum act_kind { ACT_NONE = 0, ACT_RELU = 1, ACT_CLIP = 2, ACT_SIGMOID = 3 };
enum bin_op { BIN_ADD = 0, BIN_SUB = 1, BIN_MUL = 2, BIN_DIV = 3 };
enum red_op { RED_L2 = 0, RED_MEAN = 1 };

#define NXC_MAX_DIMS 8

struct act_p {
    int kind;
    float lo, hi;
};

/* A strided view: n logical dims d[], element strides s[] (0 = broadcast). */
struct view_t {
    int n;
    int d[NXC_MAX_DIMS];
    long long s[NXC_MAX_DIMS];
};

struct pool_p {
    int N, C, H, W, OH, OW;
    int kh, kw, sh, sw, dh, dw;
    int pt, pl, pb, pr;           /* pads: top, left, bottom, right */
    int is_max, count_include_pad;
    int nhwc;
};

static inline size_t dt_size(dtype_t t) { return t == DT_F16 ? 2 : 4; }
long long view_elems(const view_t &v);

/* dst = convert(src) over dst's logical dims (src has the same logical dims). */
cudaError_t k_copy(cudaStream_t s, dtype_t ts, const void *src, const view_t &sv, dtype_t td,
                   void *dst, const view_t &dv);
/* rows x cols block copy between row-major matrices with leading dims (elements). */
cudaError_t k_rows(cudaStream_t s, dtype_t t, const void *src, long long sld, void *dst,
                   long long dld, long long rows, long long cols);
/* y = act(y + bias[c] + z) with c = (i / inner) % C; bias and z may be NULL. */
cudaError_t k_bias_act(cudaStream_t s, dtype_t t, void *y, const void *bias, const void *z,
                       long long n, int C, long long inner, act_p a);
/* y = act(x * scale[c] + shift[c]) (scale/shift fp32), c as above. */
cudaError_t k_scale_shift(cudaStream_t s, dtype_t t, const void *x, void *y, const float *scale,
                          const float *shift, long long n, int C, long long inner, act_p a);
/* y = act(x) */
cudaError_t k_act(cudaStream_t s, dtype_t t, const void *x, void *y, long long n, act_p a);
/* y = act(a op b), same shape and layout */
cudaError_t k_bin_same(cudaStream_t s, dtype_t t, int op, const void *a, const void *b, void *y,
                       long long n, act_p act);
/* y = act(a op b) over y's logical dims; av/bv carry stride 0 on broadcast dims */
cudaError_t k_bin_bcast(cudaStream_t s, dtype_t t, int op, const void *a, const view_t &av,
                        const void *b, const view_t &bv, void *y, const view_t &yv, act_p act);
cudaError_t k_pool(cudaStream_t s, dtype_t t, const void *x, void *y, const pool_p &p);
/* mean over HW of an N x C x HW tensor (nhwc: stored N x HW x C); y is N x C */
cudaError_t k_gap(cudaStream_t s, dtype_t t, int nhwc, const void *x, void *y, int N, int C,
                  int HW);
/* softmax over n elements at stride `inner`, for outer x inner rows (contiguous tensor) */
cudaError_t k_softmax(cudaStream_t s, dtype_t t, const void *x, void *y, long long outer, int n,
                      long long inner);
/* y[o] = reduce over r of x[o, r]: ov maps an output index to x's offset (over y's logical
 * dims, reduced dims of size 1), rv spans the reduced dims with x's strides. */
cudaError_t k_reduce(cudaStream_t s, dtype_t t, int op, const void *x, const view_t &ov,
                     const view_t &rv, void *y, const view_t &yv);
/* constant pad of the last two logical dims: y[.., h, w] = x[.., h - top, w - left] or value */
cudaError_t k_pad(cudaStream_t s, dtype_t t, const void *x, const view_t &xv, void *y,
                  const view_t &yv, int top, int left, float value);
/* depthwise convolution, NHWC: y[n,oh,ow,c] = act(sum_{r,s} x[n,ih,iw,c] * w[r,s,c] + bias[c]
 * + z[n,oh,ow,c]); w in [R][S][C]; bias and z may be NULL */
struct dw_p {
    int N, C, H, W, OH, OW, R, S, sh, sw, dh, dw, pt, pl;
};
cudaError_t k_dwconv(cudaStream_t s, dtype_t t, const void *x, const void *w, const void *bias,
                     const void *z, void *y, const dw_p &p, act_p a);
/* direct convolution for small layers, NHWC in and out, weights KRSC (groups allowed): one
 * warp per output element, the lanes splitting the R*S*Cg reduction */
struct dconv_p {
    int N, C, H, W, K, OH, OW, R, S, Cg, Kg, sh, sw, dh, dw, pt, pl;
};
cudaError_t k_dconv(cudaStream_t s, dtype_t t, const void *x, const void *w, const void *bias,
                    const void *z, void *y, const dconv_p &p, act_p a);
/* direct convolution for small layers with K <= 128 and one group: one warp per 4 output
 * pixels, each lane 1..4 output channels; weights transposed to [R*S*C][K] (wt) */
cudaError_t k_dconv_px(cudaStream_t s, dtype_t t, const void *x, const void *wt,
                       const void *bias, const void *z, void *y, const dconv_p &p, act_p a);
/* direct convolution, K <= 128, one group, tiled through shared memory: a block computes 32
 * output pixels x all K channels, the reduction in chunks of 32 (weights wt as above) */
cudaError_t k_dconv_tile(cudaStream_t s, dtype_t t, const void *x, const void *wt,
                         const void *bias, const void *z, void *y, const dconv_p &p, act_p a);
/* deterministic pseudo-random fill in [-1, 1) (autotuning never times zeros) */
cudaError_t k_fill(cudaStream_t s, dtype_t t, void *p, long long n, unsigned seed);

}  // namespace nxc

#endif

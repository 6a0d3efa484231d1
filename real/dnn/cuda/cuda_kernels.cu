/* cuda_kernels.cu — the CUDA executor's own kernels: everything a DNN needs besides
 * convolutions (cuDNN) and matrix products (cuBLASLt). Layout conversion and transposes
 * (strided copy with type conversion), concatenation (row-block copy), bias + residual +
 * activation epilogues, standalone batch norm, element-wise ops with broadcasting, max/avg
 * pooling (NCHW and NHWC, ceil mode, count_include_pad as PyTorch), global average pooling,
 * softmax, ReduceL2/ReduceMean, constant padding, and a pseudo-random fill.
 *
 * All arithmetic is in fp32 (fp16 values are widened on load and rounded once on store).
 * The hot element-wise kernels move 16 bytes per thread when pointers, counts and channel
 * strides allow it, and fall back to one element per thread otherwise. Indices are 32-bit:
 * the executor refuses tensors of 2^31 elements or more. Launchers never synchronise, so
 * every one of them can be captured into a CUDA graph. */
#include <cuda_fp16.h>
#include <stdint.h>

#include "cuda_int.h"

namespace nxc {

namespace {

const int THREADS = 256;
const unsigned MAX_BLOCKS = 8192;

unsigned blocks_for(long long n)
{
    long long b = (n + THREADS - 1) / THREADS;
    if (b < 1)
        b = 1;
    return b > MAX_BLOCKS ? MAX_BLOCKS : (unsigned)b;
}

/* ---- scalar conversions and activation ---- */

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__half x) { return __half2float(x); }
template <typename T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_f<__half>(float x) { return __float2half_rn(x); }

__device__ __forceinline__ float apply_act(float v, const act_p &a)
{
    switch (a.kind) {
    case ACT_RELU: return fmaxf(v, 0.0f);
    case ACT_CLIP: return fminf(fmaxf(v, a.lo), a.hi);
    case ACT_SIGMOID: return 1.0f / (1.0f + __expf(-v));
    default: return v;
    }
}

__device__ __forceinline__ float apply_bin(int op, float a, float b)
{
    switch (op) {
    case BIN_ADD: return a + b;
    case BIN_SUB: return a - b;
    case BIN_MUL: return a * b;
    default: return a / b;
    }
}

/* A convolution's output element: + bias[k] + z[o] (either may be NULL), activation, store. */
template <typename T>
__device__ __forceinline__ void conv_out(T *y, long long o, float v, const T *bias, int k,
                                         const T *z, const act_p &a)
{
    if (bias)
        v += to_f(bias[k]);
    if (z)
        v += to_f(z[o]);
    y[o] = from_f<T>(apply_act(v, a));
}

/* ---- 16-byte vectors: 4 floats or 8 halves ---- */

template <typename T> struct vec { static const int N = 16 / sizeof(T); };

template <typename T> __device__ __forceinline__ void unpack(const uint4 &u, float *f);
template <> __device__ __forceinline__ void unpack<float>(const uint4 &u, float *f)
{
    f[0] = __uint_as_float(u.x);
    f[1] = __uint_as_float(u.y);
    f[2] = __uint_as_float(u.z);
    f[3] = __uint_as_float(u.w);
}
template <> __device__ __forceinline__ void unpack<__half>(const uint4 &u, float *f)
{
    const __half2 *h = reinterpret_cast<const __half2 *>(&u);
#pragma unroll
    for (int k = 0; k < 4; k++) {
        float2 t = __half22float2(h[k]);
        f[2 * k] = t.x;
        f[2 * k + 1] = t.y;
    }
}
template <typename T> __device__ __forceinline__ uint4 pack(const float *f);
template <> __device__ __forceinline__ uint4 pack<float>(const float *f)
{
    return make_uint4(__float_as_uint(f[0]), __float_as_uint(f[1]), __float_as_uint(f[2]),
                      __float_as_uint(f[3]));
}
template <> __device__ __forceinline__ uint4 pack<__half>(const float *f)
{
    uint4 u;
    __half2 *h = reinterpret_cast<__half2 *>(&u);
#pragma unroll
    for (int k = 0; k < 4; k++)
        h[k] = __floats2half2_rn(f[2 * k], f[2 * k + 1]);
    return u;
}

bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

#define GRID_LOOP(i, n) \
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < (unsigned)(n); \
         i += gridDim.x * blockDim.x)

/* ---- strided copy with conversion ---- */

template <typename TS, typename TD>
__global__ void copy_k(const TS *__restrict__ src, view_t sv, TD *__restrict__ dst, view_t dv,
                       unsigned total)
{
    GRID_LOOP(i, total) {
        unsigned r = i;
        long long so = 0, d = 0;
#pragma unroll
        for (int k = NXC_MAX_DIMS - 1; k >= 0; k--) {
            if (k < dv.n) {     /* unrolled: the views stay in parameter space */
                unsigned c = r % (unsigned)dv.d[k];
                r /= (unsigned)dv.d[k];
                so += (long long)c * sv.s[k];
                d += (long long)c * dv.s[k];
            }
        }
        dst[d] = from_f<TD>(to_f(src[so]));
    }
}

/* contiguous -> contiguous with a type conversion */
template <typename TS, typename TD>
__global__ void convert_k(const TS *__restrict__ src, TD *__restrict__ dst, unsigned n)
{
    GRID_LOOP(i, n) dst[i] = from_f<TD>(to_f(src[i]));
}

template <typename T>
__global__ void rows_vec_k(const uint4 *__restrict__ src, long long sld, uint4 *__restrict__ dst,
                           long long dld, unsigned rows, unsigned cols)
{
    GRID_LOOP(i, (unsigned long long)rows * cols) {
        unsigned r = i / cols, c = i - r * cols;
        dst[(long long)r * dld + c] = src[(long long)r * sld + c];
    }
}

template <typename T>
__global__ void rows_k(const T *__restrict__ src, long long sld, T *__restrict__ dst, long long dld,
                       unsigned rows, unsigned cols)
{
    GRID_LOOP(i, (unsigned long long)rows * cols) {
        unsigned r = i / cols, c = i - r * cols;
        dst[(long long)r * dld + c] = src[(long long)r * sld + c];
    }
}

/* ---- epilogues and element-wise ---- */

/* mode 0: one element per thread; 1: vector whose channels are consecutive (inner == 1);
 * 2: vector within one channel (inner % N == 0) */
template <typename T, int MODE>
__global__ void bias_act_k(T *__restrict__ y, const T *__restrict__ bias, const T *__restrict__ z,
                           unsigned n, unsigned C, unsigned inner, act_p a)
{
    const int N = vec<T>::N;
    if constexpr (MODE == 0) {
        GRID_LOOP(i, n) {
            float v = to_f(y[i]);
            if (bias)
                v += to_f(bias[(i / inner) % C]);
            if (z)
                v += to_f(z[i]);
            y[i] = from_f<T>(apply_act(v, a));
        }
    } else {
        GRID_LOOP(i, n / N) {
            unsigned e = i * N;
            float f[16 / sizeof(T)], zf[16 / sizeof(T)];
            unpack<T>(reinterpret_cast<const uint4 *>(y)[i], f);
            if (z)
                unpack<T>(reinterpret_cast<const uint4 *>(z)[i], zf);
            if (bias) {
                if (MODE == 1) {
                    float bf[16 / sizeof(T)];
                    unpack<T>(*reinterpret_cast<const uint4 *>(bias + e % C), bf);
#pragma unroll
                    for (int k = 0; k < N; k++)
                        f[k] += bf[k];
                } else {
                    float b = to_f(bias[(e / inner) % C]);
#pragma unroll
                    for (int k = 0; k < N; k++)
                        f[k] += b;
                }
            }
#pragma unroll
            for (int k = 0; k < N; k++)
                f[k] = apply_act(z ? f[k] + zf[k] : f[k], a);
            reinterpret_cast<uint4 *>(y)[i] = pack<T>(f);
        }
    }
}

template <typename T, int MODE>
__global__ void scale_shift_k(const T *__restrict__ x, T *__restrict__ y,
                              const float *__restrict__ sc, const float *__restrict__ sh,
                              unsigned n, unsigned C, unsigned inner, act_p a)
{
    const int N = vec<T>::N;
    if constexpr (MODE == 0) {
        GRID_LOOP(i, n) {
            unsigned c = (i / inner) % C;
            y[i] = from_f<T>(apply_act(to_f(x[i]) * sc[c] + sh[c], a));
        }
    } else {
        GRID_LOOP(i, n / N) {
            unsigned e = i * N;
            float f[16 / sizeof(T)];
            unpack<T>(reinterpret_cast<const uint4 *>(x)[i], f);
            if (MODE == 1) {
                unsigned c = e % C;
#pragma unroll
                for (int k = 0; k < N; k++)
                    f[k] = apply_act(f[k] * sc[c + k] + sh[c + k], a);
            } else {
                unsigned c = (e / inner) % C;
#pragma unroll
                for (int k = 0; k < N; k++)
                    f[k] = apply_act(f[k] * sc[c] + sh[c], a);
            }
            reinterpret_cast<uint4 *>(y)[i] = pack<T>(f);
        }
    }
}

template <typename T, bool VEC>
__global__ void act_k(const T *__restrict__ x, T *__restrict__ y, unsigned n, act_p a)
{
    if constexpr (!VEC) {
        GRID_LOOP(i, n) y[i] = from_f<T>(apply_act(to_f(x[i]), a));
    } else {
        const int N = vec<T>::N;
        GRID_LOOP(i, n / N) {
            float f[16 / sizeof(T)];
            unpack<T>(reinterpret_cast<const uint4 *>(x)[i], f);
#pragma unroll
            for (int k = 0; k < N; k++)
                f[k] = apply_act(f[k], a);
            reinterpret_cast<uint4 *>(y)[i] = pack<T>(f);
        }
    }
}

template <typename T, bool VEC>
__global__ void bin_same_k(int op, const T *__restrict__ a, const T *__restrict__ b,
                           T *__restrict__ y, unsigned n, act_p act)
{
    if constexpr (!VEC) {
        GRID_LOOP(i, n) y[i] = from_f<T>(apply_act(apply_bin(op, to_f(a[i]), to_f(b[i])), act));
    } else {
        const int N = vec<T>::N;
        GRID_LOOP(i, n / N) {
            float fa[16 / sizeof(T)], fb[16 / sizeof(T)];
            unpack<T>(reinterpret_cast<const uint4 *>(a)[i], fa);
            unpack<T>(reinterpret_cast<const uint4 *>(b)[i], fb);
#pragma unroll
            for (int k = 0; k < N; k++)
                fa[k] = apply_act(apply_bin(op, fa[k], fb[k]), act);
            reinterpret_cast<uint4 *>(y)[i] = pack<T>(fa);
        }
    }
}

template <typename T>
__global__ void bin_bcast_k(int op, const T *__restrict__ a, view_t av, const T *__restrict__ b,
                            view_t bv, T *__restrict__ y, view_t yv, unsigned total, act_p act)
{
    GRID_LOOP(i, total) {
        unsigned r = i;
        long long ao = 0, bo = 0, yo = 0;
#pragma unroll
        for (int k = NXC_MAX_DIMS - 1; k >= 0; k--) {
            if (k < yv.n) {
                unsigned c = r % (unsigned)yv.d[k];
                r /= (unsigned)yv.d[k];
                ao += (long long)c * av.s[k];
                bo += (long long)c * bv.s[k];
                yo += (long long)c * yv.s[k];
            }
        }
        y[yo] = from_f<T>(apply_act(apply_bin(op, to_f(a[ao]), to_f(b[bo])), act));
    }
}

/* ---- pooling ---- */

/* V channels per thread (NHWC with C % V == 0), else 1 */
template <typename T, int V>
__global__ void pool_k(const T *__restrict__ x, T *__restrict__ y, pool_p p, unsigned total)
{
    GRID_LOOP(i, total) {
        unsigned r = i;
        int n, c, oh, ow;
        if (p.nhwc) {
            int cv = p.C / V;
            c = (r % cv) * V; r /= cv;
            ow = r % p.OW; r /= p.OW;
            oh = r % p.OH; n = r / p.OH;
        } else {
            ow = r % p.OW; r /= p.OW;
            oh = r % p.OH; r /= p.OH;
            c = r % p.C; n = r / p.C;
        }
        int hs = oh * p.sh - p.pt, ws = ow * p.sw - p.pl;
        float acc[V];
#pragma unroll
        for (int k = 0; k < V; k++)
            acc[k] = p.is_max ? -INFINITY : 0.0f;
        int cnt = 0;
        for (int u = 0; u < p.kh; u++) {
            int h = hs + u * p.dh;
            if (h < 0 || h >= p.H)
                continue;
            for (int v = 0; v < p.kw; v++) {
                int w = ws + v * p.dw;
                if (w < 0 || w >= p.W)
                    continue;
                cnt++;
                if constexpr (V > 1) {
                    const T *src = x + (((long long)n * p.H + h) * p.W + w) * p.C + c;
                    float f[V];
                    unpack<T>(*reinterpret_cast<const uint4 *>(src), f);
#pragma unroll
                    for (int k = 0; k < V; k++)
                        acc[k] = p.is_max ? fmaxf(acc[k], f[k]) : acc[k] + f[k];
                } else {
                    long long off = p.nhwc ? (((long long)n * p.H + h) * p.W + w) * p.C + c
                                           : (((long long)n * p.C + c) * p.H + h) * p.W + w;
                    float f = to_f(x[off]);
                    acc[0] = p.is_max ? fmaxf(acc[0], f) : acc[0] + f;
                }
            }
        }
        if (!p.is_max) {
            float div;
            if (p.count_include_pad) {
                int he = min(hs + p.kh, p.H + p.pb), we = min(ws + p.kw, p.W + p.pr);
                div = (float)((he - hs) * (we - ws));
            } else {
                div = (float)(cnt > 0 ? cnt : 1);
            }
#pragma unroll
            for (int k = 0; k < V; k++)
                acc[k] /= div;
        }
        if constexpr (V > 1) {
            T *dst = y + (((long long)n * p.OH + oh) * p.OW + ow) * p.C + c;
            *reinterpret_cast<uint4 *>(dst) = pack<T>(acc);
        } else {
            long long off = p.nhwc ? (((long long)n * p.OH + oh) * p.OW + ow) * p.C + c
                                   : (((long long)n * p.C + c) * p.OH + oh) * p.OW + ow;
            y[off] = from_f<T>(acc[0]);
        }
    }
}

/* NCHW: one warp per (n, c) row of HW elements */
template <typename T>
__global__ void gap_nchw_k(const T *__restrict__ x, T *__restrict__ y, unsigned rows, int HW)
{
    unsigned warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x & 31;
    unsigned nw = gridDim.x * blockDim.x / 32;
    for (unsigned r = warp; r < rows; r += nw) {
        const T *p = x + (long long)r * HW;
        float s = 0.0f;
        for (int k = lane; k < HW; k += 32)
            s += to_f(p[k]);
#pragma unroll
        for (int o = 16; o > 0; o >>= 1)
            s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0)
            y[r] = from_f<T>(s / (float)HW);
    }
}

/* NHWC: one thread per (n, V channels), walking HW */
template <typename T, int V>
__global__ void gap_nhwc_k(const T *__restrict__ x, T *__restrict__ y, int N, int C, int HW)
{
    unsigned cv = C / V;
    GRID_LOOP(i, (unsigned)N * cv) {
        unsigned n = i / cv, c = (i % cv) * V;
        const T *p = x + (long long)n * HW * C + c;
        float acc[V];
#pragma unroll
        for (int k = 0; k < V; k++)
            acc[k] = 0.0f;
        for (int h = 0; h < HW; h++) {
            if constexpr (V > 1) {
                float f[V];
                unpack<T>(*reinterpret_cast<const uint4 *>(p + (long long)h * C), f);
#pragma unroll
                for (int k = 0; k < V; k++)
                    acc[k] += f[k];
            } else {
                acc[0] += to_f(p[(long long)h * C]);
            }
        }
#pragma unroll
        for (int k = 0; k < V; k++)
            acc[k] /= (float)HW;
        if constexpr (V > 1)
            *reinterpret_cast<uint4 *>(y + (long long)n * C + c) = pack<T>(acc);
        else
            y[(long long)n * C + c] = from_f<T>(acc[0]);
    }
}

/* ---- softmax and reductions: one warp per row ---- */

template <typename T>
__global__ void softmax_k(const T *__restrict__ x, T *__restrict__ y, unsigned outer, int n,
                          unsigned inner)
{
    unsigned warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x & 31;
    unsigned nw = gridDim.x * blockDim.x / 32;
    for (unsigned r = warp; r < outer * inner; r += nw) {
        unsigned o = r / inner, in = r % inner;
        long long base = (long long)o * n * inner + in;
        float m = -INFINITY;
        for (int k = lane; k < n; k += 32)
            m = fmaxf(m, to_f(x[base + (long long)k * inner]));
#pragma unroll
        for (int s = 16; s > 0; s >>= 1)
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, s));
        float sum = 0.0f;
        for (int k = lane; k < n; k += 32)
            sum += __expf(to_f(x[base + (long long)k * inner]) - m);
#pragma unroll
        for (int s = 16; s > 0; s >>= 1)
            sum += __shfl_xor_sync(0xffffffffu, sum, s);
        float inv = 1.0f / sum;
        for (int k = lane; k < n; k += 32)
            y[base + (long long)k * inner] =
                from_f<T>(__expf(to_f(x[base + (long long)k * inner]) - m) * inv);
    }
}

template <typename T>
__global__ void reduce_k(int op, const T *__restrict__ x, view_t ov, view_t rv, T *__restrict__ y,
                         view_t yv, unsigned outs, unsigned rcount)
{
    unsigned warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x & 31;
    unsigned nw = gridDim.x * blockDim.x / 32;
    for (unsigned o = warp; o < outs; o += nw) {
        unsigned r = o;
        long long xo = 0, yo = 0;
#pragma unroll
        for (int k = NXC_MAX_DIMS - 1; k >= 0; k--) {
            if (k < yv.n) {
                unsigned c = r % (unsigned)yv.d[k];
                r /= (unsigned)yv.d[k];
                xo += (long long)c * ov.s[k];
                yo += (long long)c * yv.s[k];
            }
        }
        float s = 0.0f;
        for (unsigned j = lane; j < rcount; j += 32) {
            unsigned q = j;
            long long off = xo;
#pragma unroll
            for (int k = NXC_MAX_DIMS - 1; k >= 0; k--) {
                if (k < rv.n) {
                    unsigned c = q % (unsigned)rv.d[k];
                    q /= (unsigned)rv.d[k];
                    off += (long long)c * rv.s[k];
                }
            }
            float v = to_f(x[off]);
            s += op == RED_L2 ? v * v : v;
        }
#pragma unroll
        for (int sh = 16; sh > 0; sh >>= 1)
            s += __shfl_xor_sync(0xffffffffu, s, sh);
        if (lane == 0)
            y[yo] = from_f<T>(op == RED_L2 ? sqrtf(s) : s / (float)rcount);
    }
}

template <typename T>
__global__ void pad_k(const T *__restrict__ x, view_t xv, T *__restrict__ y, view_t yv,
                      unsigned total, int top, int left, float value)
{
    GRID_LOOP(i, total) {
        unsigned r = i;
        long long xo = 0, yo = 0;
        bool in = true;
#pragma unroll
        for (int k = NXC_MAX_DIMS - 1; k >= 0; k--) {
            if (k < yv.n) {
                int c = (int)(r % (unsigned)yv.d[k]);
                r /= (unsigned)yv.d[k];
                yo += (long long)c * yv.s[k];
                if (k == yv.n - 1)
                    c -= left;
                else if (k == yv.n - 2)
                    c -= top;
                if (c < 0 || c >= xv.d[k])
                    in = false;
                else
                    xo += (long long)c * xv.s[k];
            }
        }
        y[yo] = in ? x[xo] : from_f<T>(value);
    }
}

/* depthwise convolution, NHWC, V channels per thread (16-byte loads when C % V == 0) */
template <typename T, int V>
__global__ void dwconv_k(const T *__restrict__ x, const T *__restrict__ w,
                         const T *__restrict__ bias, const T *__restrict__ z, T *__restrict__ y,
                         dw_p p, act_p a, unsigned total)
{
    GRID_LOOP(i, total) {
        unsigned cvn = p.C / V, r = i;
        int c = (int)(r % cvn) * V;
        r /= cvn;
        int ow = r % p.OW;
        r /= p.OW;
        int oh = r % p.OH, n = r / p.OH;
        float acc[V];
#pragma unroll
        for (int k = 0; k < V; k++)
            acc[k] = 0.0f;
        int hs = oh * p.sh - p.pt, ws = ow * p.sw - p.pl;
        for (int u = 0; u < p.R; u++) {
            int h = hs + u * p.dh;
            if (h < 0 || h >= p.H)
                continue;
            for (int v = 0; v < p.S; v++) {
                int wi = ws + v * p.dw;
                if (wi < 0 || wi >= p.W)
                    continue;
                const T *xp = x + (((long long)n * p.H + h) * p.W + wi) * p.C + c;
                const T *wp = w + ((long long)u * p.S + v) * p.C + c;
                if constexpr (V > 1) {
                    float fx[V], fw[V];
                    unpack<T>(*reinterpret_cast<const uint4 *>(xp), fx);
                    unpack<T>(*reinterpret_cast<const uint4 *>(wp), fw);
#pragma unroll
                    for (int k = 0; k < V; k++)
                        acc[k] += fx[k] * fw[k];
                } else {
                    acc[0] += to_f(*xp) * to_f(*wp);
                }
            }
        }
        long long o = (((long long)n * p.OH + oh) * p.OW + ow) * p.C + c;
        if constexpr (V > 1) {
            if (bias) {
                float fb[V];
                unpack<T>(*reinterpret_cast<const uint4 *>(bias + c), fb);
#pragma unroll
                for (int k = 0; k < V; k++)
                    acc[k] += fb[k];
            }
            if (z) {
                float fz[V];
                unpack<T>(*reinterpret_cast<const uint4 *>(z + o), fz);
#pragma unroll
                for (int k = 0; k < V; k++)
                    acc[k] += fz[k];
            }
#pragma unroll
            for (int k = 0; k < V; k++)
                acc[k] = apply_act(acc[k], a);
            *reinterpret_cast<uint4 *>(y + o) = pack<T>(acc);
        } else {
            float v = acc[0] + (bias ? to_f(bias[c]) : 0.0f) + (z ? to_f(z[o]) : 0.0f);
            y[o] = from_f<T>(apply_act(v, a));
        }
    }
}

template <typename T>
__global__ void dconv_k(const T *__restrict__ x, const T *__restrict__ w,
                        const T *__restrict__ bias, const T *__restrict__ z, T *__restrict__ y,
                        dconv_p p, act_p a, unsigned outs)
{
    unsigned warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x & 31;
    unsigned nw = gridDim.x * blockDim.x / 32;
    int red = p.R * p.S * p.Cg;
    for (unsigned o = warp; o < outs; o += nw) {
        unsigned r = o;
        int k = r % p.K;
        r /= p.K;
        int ow = r % p.OW;
        r /= p.OW;
        int oh = r % p.OH, n = r / p.OH;
        int cbase = (k / p.Kg) * p.Cg;
        int hs = oh * p.sh - p.pt, ws = ow * p.sw - p.pl;
        const T *wk = w + (long long)k * red;
        float acc = 0.0f;
        for (int j = lane; j < red; j += 32) {
            int c = j % p.Cg, t = j / p.Cg;
            int sx = t % p.S, ry = t / p.S;
            int ih = hs + ry * p.dh, iw = ws + sx * p.dw;
            if (ih >= 0 && ih < p.H && iw >= 0 && iw < p.W)
                acc += to_f(x[(((long long)n * p.H + ih) * p.W + iw) * p.C + cbase + c]) * to_f(wk[j]);
        }
#pragma unroll
        for (int sh = 16; sh > 0; sh >>= 1)
            acc += __shfl_xor_sync(0xffffffffu, acc, sh);
        if (lane == 0)
            conv_out(y, (long long)o, acc, bias, k, z, a);
    }
}

template <typename T, int KC, int P>
__global__ void dconv_px_k(const T *__restrict__ x, const T *__restrict__ wt,
                           const T *__restrict__ bias, const T *__restrict__ z,
                           T *__restrict__ y, dconv_p p, act_p a, unsigned pixels)
{
    unsigned warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x & 31;
    unsigned nw = gridDim.x * blockDim.x / 32;
    for (unsigned p0 = warp * P; p0 < pixels; p0 += nw * P) {
        long long base[P];
        int hs[P], ws[P];
        bool live[P];
#pragma unroll
        for (int q = 0; q < P; q++) {
            unsigned px = p0 + q;
            live[q] = px < pixels;
            unsigned r = live[q] ? px : 0;
            int ow = r % p.OW;
            r /= p.OW;
            int oh = r % p.OH, n = r / p.OH;
            hs[q] = oh * p.sh - p.pt;
            ws[q] = ow * p.sw - p.pl;
            base[q] = (long long)n * p.H * p.W * p.C;
        }
        float acc[P][KC];
#pragma unroll
        for (int q = 0; q < P; q++)
#pragma unroll
            for (int c = 0; c < KC; c++)
                acc[q][c] = 0.0f;
        const T *w = wt;
        for (int ry = 0; ry < p.R; ry++) {
            for (int sx = 0; sx < p.S; sx++) {
                const T *xp[P];
#pragma unroll
                for (int q = 0; q < P; q++) {
                    int ih = hs[q] + ry * p.dh, iw = ws[q] + sx * p.dw;
                    xp[q] = live[q] && ih >= 0 && ih < p.H && iw >= 0 && iw < p.W
                                ? x + base[q] + ((long long)ih * p.W + iw) * p.C
                                : NULL;
                }
                for (int c = 0; c < p.C; c++, w += p.K) {
                    float wv[KC];
#pragma unroll
                    for (int kc = 0; kc < KC; kc++) {
                        int k = lane + 32 * kc;
                        wv[kc] = k < p.K ? to_f(w[k]) : 0.0f;
                    }
#pragma unroll
                    for (int q = 0; q < P; q++) {
                        float xv = xp[q] ? to_f(xp[q][c]) : 0.0f;
#pragma unroll
                        for (int kc = 0; kc < KC; kc++)
                            acc[q][kc] += xv * wv[kc];
                    }
                }
            }
        }
#pragma unroll
        for (int q = 0; q < P; q++) {
            if (!live[q])
                continue;
#pragma unroll
            for (int kc = 0; kc < KC; kc++) {
                int k = lane + 32 * kc;
                if (k >= p.K)
                    continue;
                conv_out(y, (long long)(p0 + q) * p.K + k, acc[q][kc], bias, k, z, a);
            }
        }
    }
}

/* 256 threads: thread t computes pixel t / 8 of the tile and channels t % 8 + 8 i */
template <typename T>
__global__ void __launch_bounds__(256) dconv_tile_k(const T *__restrict__ x, const T *__restrict__ wt,
                                                    const T *__restrict__ bias, const T *__restrict__ z,
                                                    T *__restrict__ y, dconv_p p, act_p a,
                                                    unsigned pixels)
{
    const int TP = 32, JC = 32, KMAX = 128;
    __shared__ float ws[JC][KMAX];
    __shared__ float xs[TP][JC + 1];
    __shared__ int pix_h[TP], pix_w[TP];
    __shared__ long long pix_base[TP];
    int t = threadIdx.x;
    int red = p.R * p.S * p.C;
    for (unsigned tile = blockIdx.x; tile * TP < pixels; tile += gridDim.x) {
        unsigned p0 = tile * TP;
        __syncthreads();
        if (t < TP) {
            unsigned px = p0 + t;
            unsigned r = px < pixels ? px : 0;
            int ow = r % p.OW;
            r /= p.OW;
            int oh = r % p.OH, n = r / p.OH;
            pix_h[t] = px < pixels ? oh * p.sh - p.pt : -1000000;
            pix_w[t] = ow * p.sw - p.pl;
            pix_base[t] = (long long)n * p.H * p.W * p.C;
        }
        float acc[KMAX / 8];
#pragma unroll
        for (int i = 0; i < KMAX / 8; i++)
            acc[i] = 0.0f;
        int tp = t / 8, k0 = t % 8;
        for (int j0 = 0; j0 < red; j0 += JC) {
            __syncthreads();
            for (int e = t; e < JC * p.K; e += 256) {
                int jj = e / p.K, k = e % p.K;
                ws[jj][k] = j0 + jj < red ? to_f(wt[(long long)(j0 + jj) * p.K + k]) : 0.0f;
            }
            for (int e = t; e < TP * JC; e += 256) {
                int q = e / JC, jj = e % JC, j = j0 + jj;
                float v = 0.0f;
                if (j < red) {
                    int c = j % p.C, rs = j / p.C;
                    int ih = pix_h[q] + (rs / p.S) * p.dh, iw = pix_w[q] + (rs % p.S) * p.dw;
                    if (ih >= 0 && ih < p.H && iw >= 0 && iw < p.W)
                        v = to_f(x[pix_base[q] + ((long long)ih * p.W + iw) * p.C + c]);
                }
                xs[q][jj] = v;
            }
            __syncthreads();
#pragma unroll 4
            for (int jj = 0; jj < JC; jj++) {
                float xv = xs[tp][jj];
#pragma unroll
                for (int i = 0; i < KMAX / 8; i++)
                    acc[i] += xv * ws[jj][k0 + 8 * i];
            }
        }
        unsigned px = p0 + tp;
        if (px < pixels) {
#pragma unroll
            for (int i = 0; i < KMAX / 8; i++) {
                int k = k0 + 8 * i;
                if (k >= p.K)
                    break;
                conv_out(y, (long long)px * p.K + k, acc[i], bias, k, z, a);
            }
        }
    }
}

template <typename T>
__global__ void fill_k(T *p, unsigned n, unsigned seed)
{
    GRID_LOOP(i, n) {
        unsigned h = (i + 0x9e3779b9u * seed) * 2654435761u;
        h ^= h >> 15;
        h *= 2246822519u;
        h ^= h >> 13;
        p[i] = from_f<T>((float)(h & 0xffffff) / 8388608.0f - 1.0f);
    }
}

/* Views v[0..nv) over the same logical dims, v[0] the one written: drop dims of size 1, order
 * the dims by v[0]'s strides (largest first, so consecutive threads write consecutive
 * addresses), and merge neighbours that are contiguous in every view. Fewer dims, less index
 * arithmetic per element. */
void simplify(view_t *v, int nv)
{
    int n = 0;
    for (int k = 0; k < v[0].n; k++) {
        if (v[0].d[k] == 1)
            continue;
        for (int j = 0; j < nv; j++) {
            v[j].d[n] = v[j].d[k];
            v[j].s[n] = v[j].s[k];
        }
        n++;
    }
    for (int i = 1; i < n; i++)
        for (int k = i; k > 0 && v[0].s[k - 1] < v[0].s[k]; k--)
            for (int j = 0; j < nv; j++) {
                int td = v[j].d[k]; v[j].d[k] = v[j].d[k - 1]; v[j].d[k - 1] = td;
                long long ts = v[j].s[k]; v[j].s[k] = v[j].s[k - 1]; v[j].s[k - 1] = ts;
            }
    int m = 0;
    for (int k = 0; k < n; k++) {
        bool merge = m > 0;
        for (int j = 0; merge && j < nv; j++)
            merge = v[j].s[m - 1] == v[j].s[k] * v[j].d[k];
        for (int j = 0; j < nv; j++) {
            if (merge) {
                v[j].d[m - 1] *= v[j].d[k];
                v[j].s[m - 1] = v[j].s[k];
            } else {
                v[j].d[m] = v[j].d[k];
                v[j].s[m] = v[j].s[k];
            }
        }
        if (!merge)
            m++;
    }
    if (m == 0) {          /* a single element */
        for (int j = 0; j < nv; j++) {
            v[j].d[0] = 1;
            v[j].s[0] = 0;
        }
        m = 1;
    }
    for (int j = 0; j < nv; j++)
        v[j].n = m;
}

}  // namespace

long long view_elems(const view_t &v)
{
    long long n = 1;
    for (int i = 0; i < v.n; i++)
        n *= v.d[i];
    return n;
}

cudaError_t k_copy(cudaStream_t s, dtype_t ts, const void *src, const view_t &sv0, dtype_t td,
                   void *dst, const view_t &dv0)
{
    unsigned n = (unsigned)view_elems(dv0);
    if (n == 0)
        return cudaSuccess;
    view_t v[2] = {dv0, sv0};
    simplify(v, 2);
    view_t dv = v[0], sv = v[1];
    unsigned b = blocks_for(n);
    if (dv.n == 1 && dv.s[0] == 1 && sv.s[0] == 1) {   /* contiguous: a flat conversion */
        if (ts == td)
            return cudaMemcpyAsync(dst, src, (size_t)n * dt_size(td), cudaMemcpyDeviceToDevice, s);
        if (ts == DT_F32)
            convert_k<float, __half><<<b, THREADS, 0, s>>>((const float *)src, (__half *)dst, n);
        else
            convert_k<__half, float><<<b, THREADS, 0, s>>>((const __half *)src, (float *)dst, n);
        return cudaGetLastError();
    }
    if (ts == DT_F32 && td == DT_F32)
        copy_k<float, float><<<b, THREADS, 0, s>>>((const float *)src, sv, (float *)dst, dv, n);
    else if (ts == DT_F32)
        copy_k<float, __half><<<b, THREADS, 0, s>>>((const float *)src, sv, (__half *)dst, dv, n);
    else if (td == DT_F32)
        copy_k<__half, float><<<b, THREADS, 0, s>>>((const __half *)src, sv, (float *)dst, dv, n);
    else
        copy_k<__half, __half><<<b, THREADS, 0, s>>>((const __half *)src, sv, (__half *)dst, dv, n);
    return cudaGetLastError();
}

cudaError_t k_rows(cudaStream_t s, dtype_t t, const void *src, long long sld, void *dst,
                   long long dld, long long rows, long long cols)
{
    if (rows == 0 || cols == 0)
        return cudaSuccess;
    long long V = 16 / (long long)dt_size(t);
    if (aligned16(src) && aligned16(dst) && cols % V == 0 && sld % V == 0 && dld % V == 0) {
        unsigned c = (unsigned)(cols / V);
        rows_vec_k<float><<<blocks_for(rows * c), THREADS, 0, s>>>(
            (const uint4 *)src, sld / V, (uint4 *)dst, dld / V, (unsigned)rows, c);
    } else if (t == DT_F32) {
        rows_k<float><<<blocks_for(rows * cols), THREADS, 0, s>>>(
            (const float *)src, sld, (float *)dst, dld, (unsigned)rows, (unsigned)cols);
    } else {
        rows_k<__half><<<blocks_for(rows * cols), THREADS, 0, s>>>(
            (const __half *)src, sld, (__half *)dst, dld, (unsigned)rows, (unsigned)cols);
    }
    return cudaGetLastError();
}

/* Which of the three element-wise modes fits (see bias_act_k). */
static int ew_mode(dtype_t t, const void *const *ptrs, int np, long long n, int C,
                   long long inner, bool per_channel_vec_load)
{
    long long V = 16 / (long long)dt_size(t);
    if (n % V)
        return 0;
    for (int i = 0; i < np; i++)
        if (ptrs[i] && !aligned16(ptrs[i]))
            return 0;
    if (inner == 1 && C % V == 0)
        return 1;
    if (inner % V == 0)
        return 2;
    (void)per_channel_vec_load;
    return 0;
}

template <typename T>
static void launch_bias_act(cudaStream_t s, int mode, T *y, const T *bias, const T *z, unsigned n,
                            unsigned C, unsigned inner, act_p a)
{
    unsigned nb = blocks_for(mode ? n / vec<T>::N : n);
    if (mode == 1)
        bias_act_k<T, 1><<<nb, THREADS, 0, s>>>(y, bias, z, n, C, inner, a);
    else if (mode == 2)
        bias_act_k<T, 2><<<nb, THREADS, 0, s>>>(y, bias, z, n, C, inner, a);
    else
        bias_act_k<T, 0><<<nb, THREADS, 0, s>>>(y, bias, z, n, C, inner, a);
}

cudaError_t k_bias_act(cudaStream_t s, dtype_t t, void *y, const void *bias, const void *z,
                       long long n, int C, long long inner, act_p a)
{
    if (n == 0)
        return cudaSuccess;
    const void *ptrs[3] = {y, z, bias};
    int mode = ew_mode(t, ptrs, 3, n, C, inner, true);
    if (t == DT_F32)
        launch_bias_act<float>(s, mode, (float *)y, (const float *)bias, (const float *)z,
                               (unsigned)n, (unsigned)C, (unsigned)inner, a);
    else
        launch_bias_act<__half>(s, mode, (__half *)y, (const __half *)bias, (const __half *)z,
                                (unsigned)n, (unsigned)C, (unsigned)inner, a);
    return cudaGetLastError();
}

template <typename T>
static void launch_scale_shift(cudaStream_t s, int mode, const T *x, T *y, const float *sc,
                               const float *sh, unsigned n, unsigned C, unsigned inner, act_p a)
{
    unsigned nb = blocks_for(mode ? n / vec<T>::N : n);
    if (mode == 1)
        scale_shift_k<T, 1><<<nb, THREADS, 0, s>>>(x, y, sc, sh, n, C, inner, a);
    else if (mode == 2)
        scale_shift_k<T, 2><<<nb, THREADS, 0, s>>>(x, y, sc, sh, n, C, inner, a);
    else
        scale_shift_k<T, 0><<<nb, THREADS, 0, s>>>(x, y, sc, sh, n, C, inner, a);
}

cudaError_t k_scale_shift(cudaStream_t s, dtype_t t, const void *x, void *y, const float *scale,
                          const float *shift, long long n, int C, long long inner, act_p a)
{
    if (n == 0)
        return cudaSuccess;
    const void *ptrs[2] = {x, y};
    int mode = ew_mode(t, ptrs, 2, n, C, inner, false);
    if (t == DT_F32)
        launch_scale_shift<float>(s, mode, (const float *)x, (float *)y, scale, shift,
                                  (unsigned)n, (unsigned)C, (unsigned)inner, a);
    else
        launch_scale_shift<__half>(s, mode, (const __half *)x, (__half *)y, scale, shift,
                                   (unsigned)n, (unsigned)C, (unsigned)inner, a);
    return cudaGetLastError();
}

cudaError_t k_act(cudaStream_t s, dtype_t t, const void *x, void *y, long long n, act_p a)
{
    if (n == 0)
        return cudaSuccess;
    long long V = 16 / (long long)dt_size(t);
    bool vec_ok = n % V == 0 && aligned16(x) && aligned16(y);
    unsigned nb = blocks_for(vec_ok ? n / V : n);
    if (t == DT_F32) {
        if (vec_ok)
            act_k<float, true><<<nb, THREADS, 0, s>>>((const float *)x, (float *)y, (unsigned)n, a);
        else
            act_k<float, false><<<nb, THREADS, 0, s>>>((const float *)x, (float *)y, (unsigned)n, a);
    } else {
        if (vec_ok)
            act_k<__half, true><<<nb, THREADS, 0, s>>>((const __half *)x, (__half *)y, (unsigned)n, a);
        else
            act_k<__half, false><<<nb, THREADS, 0, s>>>((const __half *)x, (__half *)y, (unsigned)n, a);
    }
    return cudaGetLastError();
}

cudaError_t k_bin_same(cudaStream_t s, dtype_t t, int op, const void *a, const void *b, void *y,
                       long long n, act_p act)
{
    if (n == 0)
        return cudaSuccess;
    long long V = 16 / (long long)dt_size(t);
    bool vec_ok = n % V == 0 && aligned16(a) && aligned16(b) && aligned16(y);
    unsigned nb = blocks_for(vec_ok ? n / V : n);
    if (t == DT_F32) {
        if (vec_ok)
            bin_same_k<float, true><<<nb, THREADS, 0, s>>>(op, (const float *)a, (const float *)b,
                                                           (float *)y, (unsigned)n, act);
        else
            bin_same_k<float, false><<<nb, THREADS, 0, s>>>(op, (const float *)a, (const float *)b,
                                                            (float *)y, (unsigned)n, act);
    } else {
        if (vec_ok)
            bin_same_k<__half, true><<<nb, THREADS, 0, s>>>(
                op, (const __half *)a, (const __half *)b, (__half *)y, (unsigned)n, act);
        else
            bin_same_k<__half, false><<<nb, THREADS, 0, s>>>(
                op, (const __half *)a, (const __half *)b, (__half *)y, (unsigned)n, act);
    }
    return cudaGetLastError();
}

cudaError_t k_bin_bcast(cudaStream_t s, dtype_t t, int op, const void *a, const view_t &av0,
                        const void *b, const view_t &bv0, void *y, const view_t &yv0, act_p act)
{
    unsigned n = (unsigned)view_elems(yv0);
    if (n == 0)
        return cudaSuccess;
    view_t v[3] = {yv0, av0, bv0};
    simplify(v, 3);
    const view_t &yv = v[0], &av = v[1], &bv = v[2];
    if (t == DT_F32)
        bin_bcast_k<float><<<blocks_for(n), THREADS, 0, s>>>(op, (const float *)a, av,
                                                             (const float *)b, bv, (float *)y, yv,
                                                             n, act);
    else
        bin_bcast_k<__half><<<blocks_for(n), THREADS, 0, s>>>(op, (const __half *)a, av,
                                                              (const __half *)b, bv, (__half *)y,
                                                              yv, n, act);
    return cudaGetLastError();
}

cudaError_t k_pool(cudaStream_t s, dtype_t t, const void *x, void *y, const pool_p &p)
{
    long long total = (long long)p.N * p.C * p.OH * p.OW;
    if (total == 0)
        return cudaSuccess;
    int V = 16 / (int)dt_size(t);
    bool vec_ok = p.nhwc && p.C % V == 0 && aligned16(x) && aligned16(y);
    if (vec_ok) {
        unsigned n = (unsigned)(total / V);
        if (t == DT_F32)
            pool_k<float, 4><<<blocks_for(n), THREADS, 0, s>>>((const float *)x, (float *)y, p, n);
        else
            pool_k<__half, 8><<<blocks_for(n), THREADS, 0, s>>>((const __half *)x, (__half *)y, p, n);
    } else {
        unsigned n = (unsigned)total;
        if (t == DT_F32)
            pool_k<float, 1><<<blocks_for(n), THREADS, 0, s>>>((const float *)x, (float *)y, p, n);
        else
            pool_k<__half, 1><<<blocks_for(n), THREADS, 0, s>>>((const __half *)x, (__half *)y, p, n);
    }
    return cudaGetLastError();
}

cudaError_t k_gap(cudaStream_t s, dtype_t t, int nhwc, const void *x, void *y, int N, int C,
                  int HW)
{
    if ((long long)N * C == 0)
        return cudaSuccess;
    if (!nhwc || HW == 1) {
        unsigned rows = (unsigned)N * C;
        unsigned nb = blocks_for((long long)rows * 32);
        if (t == DT_F32)
            gap_nchw_k<float><<<nb, THREADS, 0, s>>>((const float *)x, (float *)y, rows, HW);
        else
            gap_nchw_k<__half><<<nb, THREADS, 0, s>>>((const __half *)x, (__half *)y, rows, HW);
        return cudaGetLastError();
    }
    int V = 16 / (int)dt_size(t);
    bool vec_ok = C % V == 0 && aligned16(x) && aligned16(y);
    if (t == DT_F32) {
        if (vec_ok)
            gap_nhwc_k<float, 4><<<blocks_for((long long)N * C / 4), THREADS, 0, s>>>(
                (const float *)x, (float *)y, N, C, HW);
        else
            gap_nhwc_k<float, 1><<<blocks_for((long long)N * C), THREADS, 0, s>>>(
                (const float *)x, (float *)y, N, C, HW);
    } else {
        if (vec_ok)
            gap_nhwc_k<__half, 8><<<blocks_for((long long)N * C / 8), THREADS, 0, s>>>(
                (const __half *)x, (__half *)y, N, C, HW);
        else
            gap_nhwc_k<__half, 1><<<blocks_for((long long)N * C), THREADS, 0, s>>>(
                (const __half *)x, (__half *)y, N, C, HW);
    }
    return cudaGetLastError();
}

cudaError_t k_softmax(cudaStream_t s, dtype_t t, const void *x, void *y, long long outer, int n,
                      long long inner)
{
    long long rows = outer * inner;
    if (rows == 0)
        return cudaSuccess;
    unsigned nb = blocks_for(rows * 32);
    if (t == DT_F32)
        softmax_k<float><<<nb, THREADS, 0, s>>>((const float *)x, (float *)y, (unsigned)outer, n,
                                                (unsigned)inner);
    else
        softmax_k<__half><<<nb, THREADS, 0, s>>>((const __half *)x, (__half *)y, (unsigned)outer,
                                                 n, (unsigned)inner);
    return cudaGetLastError();
}

cudaError_t k_reduce(cudaStream_t s, dtype_t t, int op, const void *x, const view_t &ov,
                     const view_t &rv, void *y, const view_t &yv)
{
    unsigned outs = (unsigned)view_elems(yv), rc = (unsigned)view_elems(rv);
    if (outs == 0)
        return cudaSuccess;
    unsigned nb = blocks_for((long long)outs * 32);
    if (t == DT_F32)
        reduce_k<float><<<nb, THREADS, 0, s>>>(op, (const float *)x, ov, rv, (float *)y, yv, outs,
                                               rc);
    else
        reduce_k<__half><<<nb, THREADS, 0, s>>>(op, (const __half *)x, ov, rv, (__half *)y, yv,
                                                outs, rc);
    return cudaGetLastError();
}

cudaError_t k_pad(cudaStream_t s, dtype_t t, const void *x, const view_t &xv, void *y,
                  const view_t &yv, int top, int left, float value)
{
    unsigned n = (unsigned)view_elems(yv);
    if (n == 0)
        return cudaSuccess;
    if (t == DT_F32)
        pad_k<float><<<blocks_for(n), THREADS, 0, s>>>((const float *)x, xv, (float *)y, yv, n,
                                                       top, left, value);
    else
        pad_k<__half><<<blocks_for(n), THREADS, 0, s>>>((const __half *)x, xv, (__half *)y, yv,
                                                        n, top, left, value);
    return cudaGetLastError();
}

cudaError_t k_dwconv(cudaStream_t s, dtype_t t, const void *x, const void *w, const void *bias,
                     const void *z, void *y, const dw_p &p, act_p a)
{
    long long total = (long long)p.N * p.OH * p.OW * p.C;
    if (total == 0)
        return cudaSuccess;
    int V = 16 / (int)dt_size(t);
    bool vec_ok = p.C % V == 0 && aligned16(x) && aligned16(w) && aligned16(y) &&
                  (!bias || aligned16(bias)) && (!z || aligned16(z));
    unsigned n = (unsigned)(vec_ok ? total / V : total);
    if (t == DT_F32) {
        if (vec_ok)
            dwconv_k<float, 4><<<blocks_for(n), THREADS, 0, s>>>(
                (const float *)x, (const float *)w, (const float *)bias, (const float *)z,
                (float *)y, p, a, n);
        else
            dwconv_k<float, 1><<<blocks_for(n), THREADS, 0, s>>>(
                (const float *)x, (const float *)w, (const float *)bias, (const float *)z,
                (float *)y, p, a, n);
    } else {
        if (vec_ok)
            dwconv_k<__half, 8><<<blocks_for(n), THREADS, 0, s>>>(
                (const __half *)x, (const __half *)w, (const __half *)bias, (const __half *)z,
                (__half *)y, p, a, n);
        else
            dwconv_k<__half, 1><<<blocks_for(n), THREADS, 0, s>>>(
                (const __half *)x, (const __half *)w, (const __half *)bias, (const __half *)z,
                (__half *)y, p, a, n);
    }
    return cudaGetLastError();
}

cudaError_t k_dconv(cudaStream_t s, dtype_t t, const void *x, const void *w, const void *bias,
                    const void *z, void *y, const dconv_p &p, act_p a)
{
    long long outs = (long long)p.N * p.OH * p.OW * p.K;
    if (outs == 0)
        return cudaSuccess;
    unsigned nb = blocks_for(outs * 32);
    if (t == DT_F32)
        dconv_k<float><<<nb, THREADS, 0, s>>>((const float *)x, (const float *)w,
                                              (const float *)bias, (const float *)z, (float *)y,
                                              p, a, (unsigned)outs);
    else
        dconv_k<__half><<<nb, THREADS, 0, s>>>((const __half *)x, (const __half *)w,
                                               (const __half *)bias, (const __half *)z,
                                               (__half *)y, p, a, (unsigned)outs);
    return cudaGetLastError();
}

template <typename T, int KC>
static void launch_dconv_px(cudaStream_t s, const void *x, const void *wt, const void *bias,
                            const void *z, void *y, const dconv_p &p, act_p a, unsigned pixels)
{
    const int P = 4;
    unsigned nb = blocks_for(((long long)pixels + P - 1) / P * 32);
    dconv_px_k<T, KC, P><<<nb, THREADS, 0, s>>>((const T *)x, (const T *)wt, (const T *)bias,
                                                (const T *)z, (T *)y, p, a, pixels);
}

cudaError_t k_dconv_px(cudaStream_t s, dtype_t t, const void *x, const void *wt,
                       const void *bias, const void *z, void *y, const dconv_p &p, act_p a)
{
    unsigned pixels = (unsigned)((long long)p.N * p.OH * p.OW);
    if (pixels == 0)
        return cudaSuccess;
    if (p.K > 128)
        return cudaErrorInvalidValue;
    int kc = (p.K + 31) / 32;
    if (t == DT_F32) {
        if (kc == 1) launch_dconv_px<float, 1>(s, x, wt, bias, z, y, p, a, pixels);
        else if (kc == 2) launch_dconv_px<float, 2>(s, x, wt, bias, z, y, p, a, pixels);
        else launch_dconv_px<float, 4>(s, x, wt, bias, z, y, p, a, pixels);
    } else {
        if (kc == 1) launch_dconv_px<__half, 1>(s, x, wt, bias, z, y, p, a, pixels);
        else if (kc == 2) launch_dconv_px<__half, 2>(s, x, wt, bias, z, y, p, a, pixels);
        else launch_dconv_px<__half, 4>(s, x, wt, bias, z, y, p, a, pixels);
    }
    return cudaGetLastError();
}

cudaError_t k_dconv_tile(cudaStream_t s, dtype_t t, const void *x, const void *wt,
                         const void *bias, const void *z, void *y, const dconv_p &p, act_p a)
{
    unsigned pixels = (unsigned)((long long)p.N * p.OH * p.OW);
    if (pixels == 0)
        return cudaSuccess;
    if (p.K > 128)
        return cudaErrorInvalidValue;
    unsigned tiles = (pixels + 31) / 32;
    unsigned nb = tiles < MAX_BLOCKS ? tiles : MAX_BLOCKS;
    if (t == DT_F32)
        dconv_tile_k<float><<<nb, 256, 0, s>>>((const float *)x, (const float *)wt,
                                               (const float *)bias, (const float *)z, (float *)y,
                                               p, a, pixels);
    else
        dconv_tile_k<__half><<<nb, 256, 0, s>>>((const __half *)x, (const __half *)wt,
                                                (const __half *)bias, (const __half *)z,
                                                (__half *)y, p, a, pixels);
    return cudaGetLastError();
}

cudaError_t k_fill(cudaStream_t s, dtype_t t, void *p, long long n, unsigned seed)
{
    if (n == 0)
        return cudaSuccess;
    if (t == DT_F32)
        fill_k<float><<<blocks_for(n), THREADS, 0, s>>>((float *)p, (unsigned)n, seed);
    else
        fill_k<__half><<<blocks_for(n), THREADS, 0, s>>>((__half *)p, (unsigned)n, seed);
    return cudaGetLastError();
}

}  // namespace nxc

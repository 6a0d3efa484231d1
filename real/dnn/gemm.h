/* gemm.h — the CPU executor's single-precision matrix multiply (internal to real/dnn/).
 *
 * C = epilogue(A · B) where A (M x K) is a constant packed once at load time, B (K x N) is
 * read through a source description (a strided matrix, or a convolution's input image read
 * as its im2col matrix without materialising it), and C is written with arbitrary strides.
 * The epilogue adds a per-row and/or per-column bias and applies the activation. Blocking
 * follows BLIS (Goto): B is packed in KC x NC blocks into NR-wide panels, A is pre-packed in
 * MR-tall panels per KC block, and a register-blocked MR x NR micro-kernel (AVX2+FMA where the
 * CPU has it, portable C otherwise; chosen at run time) does the arithmetic. */
#ifndef NX_DNN_GEMM_H
#define NX_DNN_GEMM_H

#include <stddef.h>

#include "graph.h"

#define NX_GEMM_MR 6
#define NX_GEMM_NR 16
#define NX_GEMM_KC 256
#define NX_GEMM_NC 2048
#define NX_GEMM_MC 144

/* A packed constant left operand. */
typedef struct nx_gemm_a {
    int m, k, mp;      /* mp: m rounded up to MR */
    float *p;          /* for each KC block: mp x kc, MR-row panels stored k-major */
} nx_gemm_a;

/* A(i, k) = a[i * rs + k * cs]; each value is multiplied by `scale`. */
void nx_gemm_pack_a(nx_gemm_a *pa, const float *a, int m, int k, ptrdiff_t rs, ptrdiff_t cs,
                    float scale);
void nx_gemm_a_free(nx_gemm_a *pa);

/* Where B comes from. */
typedef struct nx_gemm_b {
    const float *p;
    /* dense: B(k, j) = p[k * rs + j * cs] */
    ptrdiff_t rs, cs;
    /* conv (when c > 0): p is one image [c][h][w]; B(k, j) with k = (ci, ky, kx) and
     * j = (oy, ox) over an oh x ow output is the input pixel under that tap, 0 in padding */
    int c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow;
} nx_gemm_b;

typedef struct nx_gemm_epi {
    const float *bias_row;  /* per row i, or NULL */
    const float *bias_col;  /* per column j, or NULL */
    nx_act act;
    float lo, hi;           /* NX_ACT_CLIP bounds */
} nx_gemm_epi;

/* Bytes of B-packing workspace nx_gemm needs. */
size_t nx_gemm_work_size(void);

/* C(i, j) = c[i * rsc + j * csc] = epi(sum_k A(i, k) B(k, j)) for j < n. `work` holds
 * nx_gemm_work_size() bytes, 64-byte aligned. */
void nx_gemm(const nx_gemm_a *a, const nx_gemm_b *b, int n, float *c, ptrdiff_t rsc,
             ptrdiff_t csc, const nx_gemm_epi *epi, float *work);

#endif

/* gemm.c — the CPU executor's blocked SGEMM (see gemm.h for the contract).
 *
 * Loop nest (BLIS): for each NC-wide column block of B, for each KC-deep slice, pack the
 * KC x NC block of B into NR-wide panels (reading a convolution's input directly as its
 * im2col matrix), then for each MC-tall block of rows, for each NR panel and MR panel, run
 * the micro-kernel into a small tile and merge the tile into C (overwrite on the first slice,
 * accumulate after, bias and activation on the last). The AVX2/FMA micro-kernel keeps its
 * 6 x 16 accumulators in 12 ymm registers; the portable kernel is plain C that compilers
 * vectorise. Which one runs is decided per call from the CPU's features, so one binary
 * built without -march runs everywhere. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

enum { MR = NX_GEMM_MR, NR = NX_GEMM_NR, KC = NX_GEMM_KC, NC = NX_GEMM_NC, MC = NX_GEMM_MC };

/* Where a kernel may merge its tile directly (NULL: into `tile` only, merge_tile does it). */
typedef struct direct {
    float *c;
    ptrdiff_t rsc;
    int i0, j0;
    bool first, last;
    const nx_gemm_epi *e;
} direct;

typedef void (*kernel_fn)(int kc, const float *a, const float *b, float *tile, const direct *m);

static void kernel_c(int kc, const float *a, const float *b, float *tile, const direct *m)
{
    (void)m;   /* always through the tile */
    float acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (int k = 0; k < kc; k++, a += MR, b += NR)
        for (int r = 0; r < MR; r++)
            for (int j = 0; j < NR; j++)
                acc[r][j] += a[r] * b[j];
    memcpy(tile, acc, sizeof acc);
}

#if HAVE_X86
__attribute__((target("avx2,fma"))) static void kernel_avx2(int kc, const float *a,
                                                            const float *b, float *tile,
                                                            const direct *m)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
/* one row of A times the two B vectors into that row's two accumulators */
#define ROW(r, lo, hi) do { __m256 x_ = _mm256_broadcast_ss(a + (r)); \
        lo = _mm256_fmadd_ps(x_, b0, lo); hi = _mm256_fmadd_ps(x_, b1, hi); } while (0)
    for (int k = 0; k < kc; k++, a += MR, b += NR) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        ROW(0, c00, c01);
        ROW(1, c10, c11);
        ROW(2, c20, c21);
        ROW(3, c30, c31);
        ROW(4, c40, c41);
        ROW(5, c50, c51);
    }
#undef ROW
    __m256 acc[MR * 2] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
    if (!m) {
        for (int i = 0; i < MR * 2; i++)
            _mm256_storeu_ps(tile + 8 * i, acc[i]);
        return;
    }
    /* merge straight into C (a full tile with unit column stride), as merge_tile does */
    __m256 zero = _mm256_setzero_ps(), bc0 = zero, bc1 = zero;
    __m256 lo = _mm256_set1_ps(m->e->lo), hi = _mm256_set1_ps(m->e->hi);
    if (m->last && m->e->bias_col) {
        bc0 = _mm256_loadu_ps(m->e->bias_col + m->j0);
        bc1 = _mm256_loadu_ps(m->e->bias_col + m->j0 + 8);
    }
    for (int r = 0; r < MR; r++) {
        float *row = m->c + (ptrdiff_t)(m->i0 + r) * m->rsc + m->j0;
        __m256 v0 = acc[2 * r], v1 = acc[2 * r + 1];
        if (!m->first) {
            v0 = _mm256_add_ps(_mm256_loadu_ps(row), v0);
            v1 = _mm256_add_ps(_mm256_loadu_ps(row + 8), v1);
        }
        if (m->last) {
            __m256 br = _mm256_set1_ps(m->e->bias_row ? m->e->bias_row[m->i0 + r] : 0.0f);
            v0 = _mm256_add_ps(_mm256_add_ps(v0, br), bc0);
            v1 = _mm256_add_ps(_mm256_add_ps(v1, br), bc1);
            if (m->e->act == NX_ACT_RELU) {          /* NaN -> 0, as the scalar v > 0 ? v : 0 */
                v0 = _mm256_max_ps(v0, zero);
                v1 = _mm256_max_ps(v1, zero);
            } else if (m->e->act == NX_ACT_CLIP) {   /* NaN stays NaN, as the scalar clamp */
                v0 = _mm256_min_ps(hi, _mm256_max_ps(lo, v0));
                v1 = _mm256_min_ps(hi, _mm256_max_ps(lo, v1));
            }
        }
        _mm256_storeu_ps(row, v0);
        _mm256_storeu_ps(row + 8, v1);
    }
}
#endif

static kernel_fn pick_kernel(void)
{
#if HAVE_X86
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return kernel_avx2;
#endif
    return kernel_c;
}

void nx_gemm_pack_a(nx_gemm_a *pa, const float *a, int m, int k, ptrdiff_t rs, ptrdiff_t cs,
                    float scale)
{
    pa->m = m;
    pa->k = k;
    pa->mp = (m + MR - 1) / MR * MR;
    pa->p = nx_malloc((size_t)pa->mp * (size_t)(k ? k : 1) * sizeof(float));
    for (int pc = 0; pc < k; pc += KC) {
        int kc = NX_MIN(KC, k - pc);
        float *blk = pa->p + (size_t)pc * (size_t)pa->mp;
        for (int i0 = 0; i0 < pa->mp; i0 += MR) {
            float *panel = blk + (size_t)i0 * (size_t)kc;
            for (int kk = 0; kk < kc; kk++)
                for (int r = 0; r < MR; r++) {
                    int i = i0 + r;
                    panel[kk * MR + r] = i < m ? a[i * rs + (pc + kk) * cs] * scale : 0.0f;
                }
        }
    }
}

void nx_gemm_a_free(nx_gemm_a *pa)
{
    free(pa->p);
    pa->p = NULL;
}

size_t nx_gemm_work_size(void)
{
    return (size_t)KC * (size_t)(NC + NR) * sizeof(float);
}

/* Pack B(pc.., jc..) (kc x nc) into NR-wide panels, zero beyond n. */
static void pack_b(const nx_gemm_b *b, int pc, int kc, int jc, int nc, float *bp)
{
    if (b->c == 0) {
        for (int j0 = 0; j0 < nc; j0 += NR) {
            float *panel = bp + (size_t)j0 * (size_t)kc;
            int nr = NX_MIN(NR, nc - j0);
            for (int k = 0; k < kc; k++) {
                const float *src = b->p + (ptrdiff_t)(pc + k) * b->rs + (ptrdiff_t)(jc + j0) * b->cs;
                float *dst = panel + k * NR;
                if (b->cs == 1 && nr == NR) {
                    memcpy(dst, src, NR * sizeof(float));
                } else {
                    int j = 0;
                    for (; j < nr; j++)
                        dst[j] = src[j * b->cs];
                    for (; j < NR; j++)
                        dst[j] = 0.0f;
                }
            }
        }
        return;
    }
    /* convolution: column j is output pixel (oy, ox); row k is tap (ci, ky, kx) */
    int iy0[NC + NR], ix0[NC + NR], left[NC + NR];   /* left: columns to the row's end */
    for (int j = 0; j < nc; j++) {
        int oy = (jc + j) / b->ow, ox = (jc + j) % b->ow;
        iy0[j] = oy * b->sh - b->pt;
        ix0[j] = ox * b->sw - b->pl;
        left[j] = b->ow - ox;
    }
    int khw = b->kh * b->kw;
    for (int k = 0; k < kc; k++) {
        int kk = pc + k, ci = kk / khw, r = kk % khw;
        int dy = (r / b->kw) * b->dh, dx = (r % b->kw) * b->dw;
        const float *img = b->p + (size_t)ci * (size_t)b->h * (size_t)b->w;
        for (int j0 = 0; j0 < nc; j0 += NR) {
            float *dst = bp + (size_t)j0 * (size_t)kc + (size_t)k * NR;
            int nr = NX_MIN(NR, nc - j0), j = 0;
            if (b->sw == 1) {
                /* runs of columns on one output row read a contiguous input row */
                while (j < nr) {
                    int col = j0 + j, run = NX_MIN(nr - j, left[col]);
                    int iy = iy0[col] + dy, ix = ix0[col] + dx;
                    if ((unsigned)iy >= (unsigned)b->h) {
                        memset(dst + j, 0, (size_t)run * sizeof(float));
                    } else {
                        int lo = NX_MIN(NX_MAX(-ix, 0), run), hi = NX_MAX(NX_MIN(b->w - ix, run), lo);
                        memset(dst + j, 0, (size_t)lo * sizeof(float));
                        memcpy(dst + j + lo, img + (size_t)iy * b->w + ix + lo,
                               (size_t)(hi - lo) * sizeof(float));
                        memset(dst + j + hi, 0, (size_t)(run - hi) * sizeof(float));
                    }
                    j += run;
                }
            } else {
                for (; j < nr; j++) {
                    int iy = iy0[j0 + j] + dy, ix = ix0[j0 + j] + dx;
                    dst[j] = (unsigned)iy < (unsigned)b->h && (unsigned)ix < (unsigned)b->w
                                 ? img[iy * b->w + ix] : 0.0f;
                }
            }
            for (; j < NR; j++)
                dst[j] = 0.0f;
        }
    }
}

static inline float act_apply(float v, const nx_gemm_epi *e)
{
    if (e->act == NX_ACT_RELU)
        return v > 0.0f ? v : 0.0f;
    if (e->act == NX_ACT_CLIP)
        return v < e->lo ? e->lo : v > e->hi ? e->hi : v;
    return v;
}

static void merge_tile(const float *tile, float *c, ptrdiff_t rsc, ptrdiff_t csc, int i0, int j0,
                       int mr, int nr, bool first, bool last, const nx_gemm_epi *e)
{
    for (int r = 0; r < mr; r++) {
        float *row = c + (ptrdiff_t)(i0 + r) * rsc + (ptrdiff_t)j0 * csc;
        const float *t = tile + r * NR;
        float br = last && e->bias_row ? e->bias_row[i0 + r] : 0.0f;
        if (csc == 1) {
            if (first && !last) {
                memcpy(row, t, (size_t)nr * sizeof(float));
            } else if (!last) {
                for (int j = 0; j < nr; j++)
                    row[j] += t[j];
            } else {
                for (int j = 0; j < nr; j++) {
                    float v = (first ? 0.0f : row[j]) + t[j] + br +
                              (e->bias_col ? e->bias_col[j0 + j] : 0.0f);
                    row[j] = act_apply(v, e);
                }
            }
            continue;
        }
        for (int j = 0; j < nr; j++) {
            float *p = row + j * csc;
            float v = (first ? 0.0f : *p) + t[j];
            if (last)
                v = act_apply(v + br + (e->bias_col ? e->bias_col[j0 + j] : 0.0f), e);
            *p = v;
        }
    }
}

void nx_gemm(const nx_gemm_a *a, const nx_gemm_b *b, int n, float *c, ptrdiff_t rsc,
             ptrdiff_t csc, const nx_gemm_epi *epi, float *work)
{
    kernel_fn kernel = pick_kernel();
    bool direct_ok = kernel != kernel_c && csc == 1;   /* the AVX2 kernel merges full tiles */
    int m = a->m, k = a->k;
    float tile[MR * NR] __attribute__((aligned(32)));
    if (k == 0) {   /* degenerate: C = epilogue(0) */
        memset(tile, 0, sizeof tile);
        for (int i = 0; i < m; i += MR)
            for (int j = 0; j < n; j += NR)
                merge_tile(tile, c, rsc, csc, i, j, NX_MIN(MR, m - i), NX_MIN(NR, n - j), true,
                           true, epi);
        return;
    }
    for (int jc = 0; jc < n; jc += NC) {
        int nc = NX_MIN(NC, n - jc);
        for (int pc = 0; pc < k; pc += KC) {
            int kc = NX_MIN(KC, k - pc);
            bool first = pc == 0, last = pc + kc >= k;
            pack_b(b, pc, kc, jc, nc, work);
            const float *ablk = a->p + (size_t)pc * (size_t)a->mp;
            for (int ic = 0; ic < m; ic += MC) {
                int mc = NX_MIN(MC, m - ic);
                for (int jr = 0; jr < nc; jr += NR) {
                    const float *bpanel = work + (size_t)jr * (size_t)kc;
                    int nr = NX_MIN(NR, nc - jr);
                    for (int ir = ic; ir < ic + mc; ir += MR) {
                        int mr = NX_MIN(MR, m - ir);
                        direct d = {c, rsc, ir, jc + jr, first, last, epi};
                        bool full = direct_ok && mr == MR && nr == NR;
                        kernel(kc, ablk + (size_t)ir * (size_t)kc, bpanel, tile, full ? &d : NULL);
                        if (!full)
                            merge_tile(tile, c, rsc, csc, ir, jc + jr, mr, nr, first, last, epi);
                    }
                }
            }
        }
    }
}

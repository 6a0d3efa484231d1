/* prepost.c — per-request CPU work around a model (see prepost.h): JPEG decoding with
 * libjpeg, bilinear resizing and normalisation into a float tensor; softmax and top-n for
 * classifiers; SSD300's default boxes, box decoding, per-class selection and non-maximum
 * suppression for the detector. libjpeg reports errors through longjmp here (its default
 * handler would exit the process). */
#include <math.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>   /* after stdio.h and stddef.h, which it needs */

#include "prepost.h"

/* ---- JPEG ------------------------------------------------------------------------------ */

typedef struct jerr {
    struct jpeg_error_mgr mgr;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jerr;

static void on_error(j_common_ptr cinfo)
{
    jerr *e = (jerr *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
    longjmp(e->jb, 1);
}

static void on_message(j_common_ptr cinfo)
{
    (void)cinfo;   /* warnings (e.g. premature end of data) are not printed */
}

size_t nx_pre_scratch_size(const uint8_t *jpeg, size_t len)
{
    struct jpeg_decompress_struct ci;
    jerr je;
    ci.err = jpeg_std_error(&je.mgr);
    je.mgr.error_exit = on_error;
    je.mgr.output_message = on_message;
    if (setjmp(je.jb)) {
        jpeg_destroy_decompress(&ci);
        return 0;
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, jpeg, (unsigned long)len);
    jpeg_read_header(&ci, TRUE);
    size_t n = (size_t)ci.image_width * ci.image_height * 3;
    jpeg_destroy_decompress(&ci);
    return n;
}

int nx_pre_image(const uint8_t *jpeg, size_t len, int c, int h, int w, float *out,
                 void *scratch, size_t scratch_len, nx_errbuf *eb)
{
    if ((c != 1 && c != 3) || h < 1 || w < 1) {
        nx_err_set(eb, NX_ERR_INVAL, "image input must be 1 or 3 channels, got %d x %d x %d",
                   c, h, w);
        return NX_ERR_INVAL;
    }
    struct jpeg_decompress_struct ci;
    jerr je;
    uint8_t *volatile own = NULL;
    ci.err = jpeg_std_error(&je.mgr);
    je.mgr.error_exit = on_error;
    je.mgr.output_message = on_message;
    if (setjmp(je.jb)) {
        jpeg_destroy_decompress(&ci);
        free(own);
        nx_err_set(eb, NX_ERR_PARSE, "bad JPEG: %s", je.msg);
        return NX_ERR_PARSE;
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, jpeg, (unsigned long)len);
    jpeg_read_header(&ci, TRUE);
    ci.out_color_space = c == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_start_decompress(&ci);
    int iw = (int)ci.output_width, ih = (int)ci.output_height, comp = ci.output_components;
    size_t need = (size_t)iw * ih * comp;
    uint8_t *px = scratch;
    if (!px || scratch_len < need)
        px = own = nx_malloc(need);
    while (ci.output_scanline < ci.output_height) {
        JSAMPROW row = px + (size_t)ci.output_scanline * iw * comp;
        jpeg_read_scanlines(&ci, &row, 1);
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    /* bilinear, half-pixel centres (PIL / torchvision "antialias=False") */
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
    float sy = (float)ih / h, sx = (float)iw / w;
    for (int y = 0; y < h; y++) {
        float fy = (y + 0.5f) * sy - 0.5f;
        fy = fy < 0 ? 0 : fy;
        int y0 = (int)fy, y1 = y0 + 1 < ih ? y0 + 1 : ih - 1;
        float wy = fy - y0;
        for (int x = 0; x < w; x++) {
            float fx = (x + 0.5f) * sx - 0.5f;
            fx = fx < 0 ? 0 : fx;
            int x0 = (int)fx, x1 = x0 + 1 < iw ? x0 + 1 : iw - 1;
            float wx = fx - x0;
            for (int k = 0; k < c; k++) {
                const uint8_t *r0 = px + (size_t)y0 * iw * comp, *r1 = px + (size_t)y1 * iw * comp;
                float v = (1 - wy) * ((1 - wx) * r0[x0 * comp + k] + wx * r0[x1 * comp + k]) +
                          wy * ((1 - wx) * r1[x0 * comp + k] + wx * r1[x1 * comp + k]);
                v /= 255.0f;
                if (c == 3)
                    v = (v - mean[k]) / stdv[k];
                out[((size_t)k * h + y) * w + x] = v;
            }
        }
    }
    free(own);
    return 0;
}

/* ---- classification -------------------------------------------------------------------- */

void nx_post_classify(const float *logits, int k, int n, int *idx, float *prob)
{
    float mx = -INFINITY;
    for (int i = 0; i < k; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (int i = 0; i < k; i++)
        sum += exp((double)logits[i] - mx);
    for (int j = 0; j < n; j++) {
        idx[j] = -1;
        prob[j] = -INFINITY;
    }
    /* insertion into a sorted top-n list */
    for (int i = 0; i < k; i++) {
        float v = logits[i];
        if (n == 0 || v <= prob[n - 1])
            continue;
        int j = n - 1;
        while (j > 0 && prob[j - 1] < v) {
            prob[j] = prob[j - 1];
            idx[j] = idx[j - 1];
            j--;
        }
        prob[j] = v;
        idx[j] = i;
    }
    for (int j = 0; j < n; j++)
        prob[j] = (float)(exp((double)prob[j] - mx) / sum);
}

/* ---- SSD ------------------------------------------------------------------------------- */

int nx_ssd300_anchors(float *anchors, int max)
{
    static const int fmap[6] = {38, 19, 10, 5, 3, 1};
    static const int steps[6] = {8, 16, 32, 64, 100, 300};
    static const int nar[6] = {1, 2, 2, 2, 1, 1};   /* aspect ratios {2} or {2, 3} */
    static const double scales[7] = {0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05};
    int n = 0;
    for (int k = 0; k < 6; k++) {
        double wh[6][2];
        int np = 0;
        double s = scales[k], sp = sqrt(scales[k] * scales[k + 1]);
        wh[np][0] = s, wh[np][1] = s, np++;
        wh[np][0] = sp, wh[np][1] = sp, np++;
        for (int a = 0; a < nar[k]; a++) {
            double r = sqrt(a == 0 ? 2.0 : 3.0);
            wh[np][0] = s * r, wh[np][1] = s / r, np++;
            wh[np][0] = s / r, wh[np][1] = s * r, np++;
        }
        double f = 300.0 / steps[k];
        for (int y = 0; y < fmap[k]; y++)
            for (int x = 0; x < fmap[k]; x++)
                for (int p = 0; p < np; p++) {
                    if (n >= max)
                        return n;
                    float *a = anchors + 4 * n++;
                    a[0] = (float)((x + 0.5) / f);
                    a[1] = (float)((y + 0.5) / f);
                    a[2] = (float)(wh[p][0] > 1 ? 1 : wh[p][0]);
                    a[3] = (float)(wh[p][1] > 1 ? 1 : wh[p][1]);
                }
    }
    return n;
}

typedef struct cand {
    float score;
    int anchor;
} cand;

static int cand_desc(const void *a, const void *b)
{
    float x = ((const cand *)a)->score, y = ((const cand *)b)->score;
    return x < y ? 1 : x > y ? -1 : ((const cand *)a)->anchor - ((const cand *)b)->anchor;
}

/* Keep the k best of c[0..n) in c[0..k) (unordered): a min-heap on the score. */
static int better(const cand *a, const cand *b)
{
    return a->score > b->score || (a->score == b->score && a->anchor < b->anchor);
}

static void sift_down(cand *h, int k, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < k && better(&h[m], &h[l]))
            m = l;
        if (r < k && better(&h[m], &h[r]))
            m = r;
        if (m == i)
            return;
        cand t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void select_top(cand *c, int n, int k)
{
    for (int i = k / 2 - 1; i >= 0; i--)
        sift_down(c, k, i);
    for (int i = k; i < n; i++)
        if (better(&c[i], &c[0])) {
            c[0] = c[i];
            sift_down(c, k, 0);
        }
}

static float iou(const nx_detection *a, const nx_detection *b)
{
    float ix = fminf(a->x1, b->x1) - fmaxf(a->x0, b->x0);
    float iy = fminf(a->y1, b->y1) - fmaxf(a->y0, b->y0);
    if (ix <= 0 || iy <= 0)
        return 0;
    float inter = ix * iy;
    float ua = (a->x1 - a->x0) * (a->y1 - a->y0) + (b->x1 - b->x0) * (b->y1 - b->y0) - inter;
    return ua > 0 ? inter / ua : 0;
}

static int det_desc(const void *a, const void *b)
{
    float x = ((const nx_detection *)a)->score, y = ((const nx_detection *)b)->score;
    return x < y ? 1 : x > y ? -1 : 0;
}

enum { SSD_TOPK = 400 };
#define SSD_SCORE_MIN 0.01f
#define SSD_NMS_IOU 0.45f

size_t nx_post_ssd_work_size(int n, int classes)
{
    return (size_t)n * classes * sizeof(float) + (size_t)n * sizeof(cand) +
           (size_t)n * sizeof(nx_detection) + (size_t)classes * SSD_TOPK * sizeof(nx_detection);
}

int nx_post_ssd(const float *boxes, const float *logits, const float *anchors, int n,
                int classes, nx_detection *out, int max, void *work)
{
    float *prob = work;
    cand *cs = (cand *)(prob + (size_t)n * classes);
    nx_detection *dec = (nx_detection *)(cs + n);
    nx_detection *kept = dec + n;
    int nkept = 0;
    const float clampv = logf(1000.0f / 16.0f);
    for (int a = 0; a < n; a++) {
        const float *l = logits + (size_t)a * classes, *r = boxes + 4 * (size_t)a,
                    *an = anchors + 4 * (size_t)a;
        float mx = -INFINITY;
        for (int k = 0; k < classes; k++)
            mx = l[k] > mx ? l[k] : mx;
        float sum = 0;
        for (int k = 0; k < classes; k++)
            sum += prob[(size_t)a * classes + k] = expf(l[k] - mx);
        for (int k = 0; k < classes; k++)
            prob[(size_t)a * classes + k] /= sum;
        float dw = fminf(r[2] / 5.0f, clampv), dh = fminf(r[3] / 5.0f, clampv);
        float cx = r[0] / 10.0f * an[2] + an[0], cy = r[1] / 10.0f * an[3] + an[1];
        float w = expf(dw) * an[2], h = expf(dh) * an[3];
        dec[a] = (nx_detection){.x0 = fmaxf(cx - w / 2, 0), .y0 = fmaxf(cy - h / 2, 0),
                                .x1 = fminf(cx + w / 2, 1), .y1 = fminf(cy + h / 2, 1)};
    }
    for (int k = 1; k < classes; k++) {
        int nc = 0;
        for (int a = 0; a < n; a++) {
            float s = prob[(size_t)a * classes + k];
            if (s > SSD_SCORE_MIN)
                cs[nc++] = (cand){s, a};
        }
        if (nc > SSD_TOPK) {
            select_top(cs, nc, SSD_TOPK);
            nc = SSD_TOPK;
        }
        qsort(cs, (size_t)nc, sizeof *cs, cand_desc);
        int first = nkept;
        for (int i = 0; i < nc; i++) {
            nx_detection d = dec[cs[i].anchor];
            bool keep = true;
            for (int j = first; j < nkept && keep; j++)
                keep = iou(&d, &kept[j]) <= SSD_NMS_IOU;
            if (keep) {
                d.score = cs[i].score;
                d.label = k;
                kept[nkept++] = d;
            }
        }
    }
    qsort(kept, (size_t)nkept, sizeof *kept, det_desc);
    int m = nkept < max ? nkept : max;
    memcpy(out, kept, (size_t)m * sizeof *out);
    return m;
}

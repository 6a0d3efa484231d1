/* refio.c — the DNN tests' reference files (format in tools/export_models.py: write_ref) and
 * the normalized max error. */
#include "refio.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rd(FILE *f, void *p, size_t n)
{
    return fread(p, 1, n, f) == n ? 0 : -1;
}

static int read_tensor(FILE *f, nx_ref_tensor *t)
{
    uint32_t nd;
    if (rd(f, &nd, 4) || nd > 8)
        return -1;
    t->ndim = (int)nd;
    if (rd(f, t->dims, 8 * nd))
        return -1;
    t->n = 1;
    for (uint32_t i = 0; i < nd; i++) {
        if (t->dims[i] < 0 || t->dims[i] > (1 << 28))
            return -1;
        t->n *= (size_t)t->dims[i];
    }
    if (t->n > ((size_t)1 << 30))
        return -1;
    t->data = malloc(t->n * 4 + 4);
    return t->data && !rd(f, t->data, t->n * 4) ? 0 : -1;
}

void nx_ref_free(nx_ref *r)
{
    for (int c = 0; c < r->ncases; c++) {
        nx_ref_case *k = &r->cases[c];
        for (int i = 0; k->in && i < k->nin; i++)
            free(k->in[i].data);
        for (int i = 0; k->out && i < k->nout; i++)
            free(k->out[i].data);
        free(k->in);
        free(k->out);
    }
    free(r->cases);
    memset(r, 0, sizeof *r);
}

int nx_ref_load(nx_ref *r, const char *path, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return -1;
    }
    char magic[8];
    uint32_t nc;
    if (rd(f, magic, 8) || memcmp(magic, "NXREF001", 8) || rd(f, &nc, 4) || nc > 64)
        goto bad;
    r->cases = calloc(nc, sizeof *r->cases);
    r->ncases = (int)nc;
    for (uint32_t c = 0; c < nc; c++) {
        nx_ref_case *k = &r->cases[c];
        uint32_t h[3];
        if (rd(f, h, 12) || h[1] > 8 || h[2] > 8)
            goto bad;
        k->batch = (int)h[0];
        k->nin = (int)h[1];
        k->nout = (int)h[2];
        k->in = calloc(h[1] + 1, sizeof *k->in);
        k->out = calloc(h[2] + 1, sizeof *k->out);
        for (int i = 0; i < k->nin; i++)
            if (read_tensor(f, &k->in[i]))
                goto bad;
        for (int i = 0; i < k->nout; i++)
            if (read_tensor(f, &k->out[i]))
                goto bad;
    }
    fclose(f);
    return 0;
bad:
    fclose(f);
    nx_ref_free(r);
    snprintf(err, errlen, "%s: malformed reference file", path);
    return -1;
}

double nx_norm_err(const float *a, const float *b, size_t n)
{
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i]))
            return INFINITY;
        double d = fabs((double)a[i] - (double)b[i]);
        md = d > md ? d : md;
        mb = fabs((double)b[i]) > mb ? fabs((double)b[i]) : mb;
    }
    return mb > 0 ? md / mb : md;
}

/* dnntest.c — helpers of the DNN CUnit suites (see dnntest.h). */
#include "dnntest.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void nx_dt_check(bool ok, const char *file, int line, const char *fmt, ...)
{
    char msg[1024] = "";
    if (!ok) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\n  %s:%d: %s\n", file, line, msg);
    }
    CU_assertImplementation(ok, (unsigned)line, msg, file, "", CU_FALSE);
}

const char *nx_dt_root(void)
{
    const char *r = getenv("NX_ROOT");
    return r && *r ? r : ".";
}

const char *nx_dt_python(void)
{
    const char *p = getenv("NX_PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

int nx_dt_run_ref(const char *model, const nx_ref *ref, const nx_exec_ops *ops,
                  nx_precision prec, int max_batch, double *err, double *errs, int nerrs,
                  nx_errbuf *eb)
{
    nx_graph g;
    nx_exec *e = NULL;
    int rc = nx_onnx_load(&g, model, eb);
    if (rc)
        return rc;
    *err = 0;
    if ((rc = nx_graph_prepare(&g, max_batch, eb)) || (rc = ops->init(&e, &g, prec, 0, eb)))
        goto out;
    for (int c = 0; c < ref->ncases; c++) {
        const nx_ref_case *k = &ref->cases[c];
        if (k->batch > max_batch)
            continue;
        if (k->nin != g.ninputs || k->nout != g.noutputs) {
            nx_err_set(eb, NX_ERR_CONFIG, "%s: the reference has %d inputs and %d outputs, the "
                       "model %d and %d", model, k->nin, k->nout, g.ninputs, g.noutputs);
            rc = NX_ERR_CONFIG;
            goto out;
        }
        const float *in[8];
        float *outs[8] = {0};
        for (int i = 0; i < k->nin; i++)
            in[i] = k->in[i].data;
        for (int i = 0; i < k->nout; i++) {
            size_t n = nx_tensor_elems(&g.t[g.outputs[i]], k->batch);
            if (n != k->out[i].n) {
                nx_err_set(eb, NX_ERR_CONFIG, "%s: output %d has %zu values at batch %d, the "
                           "reference %zu", model, i, n, k->batch, k->out[i].n);
                rc = NX_ERR_CONFIG;
                for (int j = 0; j < i; j++)
                    free(outs[j]);
                goto out;
            }
            outs[i] = malloc(n * sizeof(float));
        }
        rc = ops->run(e, k->batch, in, outs, eb);
        double worst = 0;
        for (int i = 0; i < k->nout; i++) {
            if (!rc) {
                double d = nx_norm_err(outs[i], k->out[i].data, k->out[i].n);
                worst = d > worst || isnan(d) ? d : worst;
            }
            free(outs[i]);
        }
        if (rc)
            goto out;
        if (errs && c < nerrs)
            errs[c] = worst;
        *err = worst > *err || isnan(worst) ? worst : *err;
    }
out:
    if (e)
        ops->free(e);
    nx_graph_free(&g);
    return rc;
}

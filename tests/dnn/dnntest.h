/* dnntest.h — what the DNN CUnit suites share: assertions that print both values, the
 * repository root and interpreter, running a model's reference cases on an executor. */
#ifndef NX_TESTS_DNN_DNNTEST_H
#define NX_TESTS_DNN_DNNTEST_H

#include <CUnit/Basic.h>
#include <stdbool.h>
#include <stdio.h>

#include "graph.h"
#include "refio.h"

void nx_dt_check(bool ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define DT_CHECK(ok, ...) nx_dt_check((ok), __FILE__, __LINE__, __VA_ARGS__)
#define DT_INT(a, b) do { long long a_ = (a), b_ = (b); \
    DT_CHECK(a_ == b_, "%s = %lld, expected %lld", #a, a_, b_); } while (0)
#define DT_HAS(msg, sub) do { const char *m_ = (msg), *s_ = (sub); \
    DT_CHECK(strstr(m_, s_) != NULL, "message '%s' does not contain '%s'", m_, s_); } while (0)

/* $NX_ROOT or "." ; $NX_PYTHON or /usr/bin/python3 (Debian's, with torch and onnx). */
const char *nx_dt_root(void);
const char *nx_dt_python(void);

/* Load model + prepare for max_batch + init `ops` at `prec`; run every case of ref whose
 * batch <= max_batch and return the largest normalized error over all outputs and cases in
 * *err (per case in errs[] if not NULL, up to nerrs). 0 or an nx_err (message in eb). */
int nx_dt_run_ref(const char *model, const nx_ref *ref, const nx_exec_ops *ops,
                  nx_precision prec, int max_batch, double *err, double *errs, int nerrs,
                  nx_errbuf *eb);

#endif

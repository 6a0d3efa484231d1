/* refio.h — reading the reference files that tools/export_models.py and tools/dnn_cases.py
 * write (NAME.ref: PyTorch's inputs and outputs per batch size), and the normalized error
 * the DNN tests compare with. */
#ifndef NX_TESTS_DNN_REFIO_H
#define NX_TESTS_DNN_REFIO_H

#include <stddef.h>
#include <stdint.h>

typedef struct nx_ref_tensor {
    int ndim;
    int64_t dims[8];
    size_t n;
    float *data;
} nx_ref_tensor;

typedef struct nx_ref_case {
    int batch, nin, nout;
    nx_ref_tensor *in, *out;
} nx_ref_case;

typedef struct nx_ref {
    int ncases;
    nx_ref_case *cases;
} nx_ref;

/* 0, or -1 with a message in err. */
int nx_ref_load(nx_ref *r, const char *path, char *err, size_t errlen);
void nx_ref_free(nx_ref *r);

/* max|a - b| / max|b| (max|a - b| when b is all zero); NaN anywhere gives INFINITY. */
double nx_norm_err(const float *a, const float *b, size_t n);

#endif

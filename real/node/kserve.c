/* kserve.c — checks and accessors for KServe v2 messages (see kserve.h). */
#include "kserve.h"

#include <stdio.h>
#include <string.h>

#define MAX_ELEMS ((int64_t)1 << 30)

int nx_kserve_input(const Inference__ModelInferRequest *rq, const uint8_t **data, size_t *len,
                    char *why, size_t n)
{
    *data = NULL;
    *len = 0;
    if (rq->n_inputs == 0) {
        if (rq->n_raw_input_contents > 0) {
            snprintf(why, n, "raw_input_contents without an input tensor");
            return NX_ERR_INVAL;
        }
        return 0;
    }
    if (rq->n_inputs > 1) {
        snprintf(why, n, "%zu input tensors; the models here take one", rq->n_inputs);
        return NX_ERR_INVAL;
    }
    const Inference__ModelInferRequest__InferInputTensor *t = rq->inputs[0];
    if (strcmp(t->datatype, "FP32") != 0) {
        snprintf(why, n, "input '%.64s': datatype '%.32s', expected FP32", t->name, t->datatype);
        return NX_ERR_INVAL;
    }
    int64_t elems = 1;
    for (size_t i = 0; i < t->n_shape; i++) {
        if (t->shape[i] < 0 || (t->shape[i] > 0 && elems > MAX_ELEMS / t->shape[i])) {
            snprintf(why, n, "input '%.64s': bad shape dimension %lld", t->name,
                     (long long)t->shape[i]);
            return NX_ERR_INVAL;
        }
        elems *= t->shape[i];
    }
    size_t want = (size_t)elems * sizeof(float);
    bool has_contents = t->contents && t->contents->n_fp32_contents > 0;
    if (rq->n_raw_input_contents > 1 || (rq->n_raw_input_contents == 1 && has_contents)) {
        snprintf(why, n, "input '%.64s': give raw_input_contents or contents, once", t->name);
        return NX_ERR_INVAL;
    }
    if (rq->n_raw_input_contents == 1) {
        if (rq->raw_input_contents[0].len != want) {
            snprintf(why, n, "input '%.64s': %zu raw bytes, its shape needs %zu", t->name,
                     rq->raw_input_contents[0].len, want);
            return NX_ERR_INVAL;
        }
        *data = rq->raw_input_contents[0].data;
        *len = want;
        return 0;
    }
    size_t have = t->contents ? t->contents->n_fp32_contents : 0;
    if (have != (size_t)elems) {
        snprintf(why, n, "input '%.64s': %zu fp32_contents, its shape needs %lld", t->name, have,
                 (long long)elems);
        return NX_ERR_INVAL;
    }
    *data = have ? (const uint8_t *)t->contents->fp32_contents : NULL;
    *len = want;
    return 0;
}

static const Inference__InferParameter *param(const Inference__ModelInferResponse *r,
                                              const char *key)
{
    for (size_t i = 0; i < r->n_parameters; i++)
        if (r->parameters[i]->key && strcmp(r->parameters[i]->key, key) == 0)
            return r->parameters[i]->value;
    return NULL;
}

bool nx_kserve_param(const Inference__ModelInferResponse *r, const char *key, int64_t *out)
{
    const Inference__InferParameter *p = param(r, key);
    if (!p)
        return false;
    if (p->parameter_choice_case == INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_INT64_PARAM)
        *out = p->int64_param;
    else if (p->parameter_choice_case == INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_BOOL_PARAM)
        *out = p->bool_param;
    else
        return false;
    return true;
}

const char *nx_kserve_param_str(const Inference__ModelInferResponse *r, const char *key)
{
    const Inference__InferParameter *p = param(r, key);
    return p && p->parameter_choice_case ==
                    INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_STRING_PARAM
               ? p->string_param
               : NULL;
}

/* kserve.h — the KServe v2 / Open Inference Protocol messages
 * (real/proto/inference.proto) as the frontend and the load generator use
 * them: the one input tensor of a request, checked against its declared type
 * and shape; the "nexus_*" parameters of a response. */
#ifndef NX_KSERVE_H
#define NX_KSERVE_H

#include <stddef.h>
#include <stdint.h>

#include "nx.h"
#include "inference.pb-c.h"

/* The request's input bytes: none (no input tensor), or its one FP32 tensor
 * from raw_input_contents[0] or contents.fp32_contents, whose size must match
 * its shape. *data points into rq. NX_ERR_INVAL with a reason otherwise. */
int nx_kserve_input(const Inference__ModelInferRequest *rq, const uint8_t **data, size_t *len,
                    char *why, size_t n);

/* The int64 (or bool) parameter `key` of a response; false if absent. */
bool nx_kserve_param(const Inference__ModelInferResponse *r, const char *key, int64_t *out);
/* Its string parameter `key`, or NULL. */
const char *nx_kserve_param_str(const Inference__ModelInferResponse *r, const char *key);

#endif

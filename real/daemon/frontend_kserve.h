/* frontend_kserve.h — nexus-frontend's client API: the KServe v2 / Open
 * Inference Protocol service (inference.GRPCInferenceService: ServerLive,
 * ServerReady, ServerMetadata, ModelReady, ModelMetadata, ModelInfer; a
 * "model" is an app of the experiment, version "1").
 *
 * The service checks what the protocol defines (the model name and version,
 * the input tensor: real/node/kserve.h) and answers the metadata calls from
 * the catalog; a well-formed ModelInfer goes to the daemon through `infer`,
 * which owns the call from then on and answers it once, with
 * nx_fe_kserve_reply() or nx_rpc_fail(). No engine or daemon state here. */
#ifndef NX_FRONTEND_KSERVE_H
#define NX_FRONTEND_KSERVE_H

#include "catalog.h"
#include "rpc.h"

typedef struct nx_fe_kserve {
    const nx_catalog *cat;
    void *ctx;
    bool (*ready)(void *ctx);              /* ServerReady, ModelReady: health "" SERVING */
    bool (*accepting)(void *ctx);          /* ModelInfer: once ready, not stopping */
    bool (*app_routed)(void *ctx, int app);/* every stage of app has a backend */
    /* a ModelInfer of app refused here: code NX_RPC_UNAVAILABLE (not accepting) or
     * NX_RPC_INVALID_ARGUMENT (bad input tensor); for the daemon's counters */
    void (*refused)(void *ctx, int app, int code);
    /* a checked ModelInfer of app with its input bytes (in points into the
     * request: copy what is kept); the callee answers c exactly once */
    void (*infer)(void *ctx, nx_rpc_call *c, int app, const char *id, const uint8_t *in,
                  size_t nin);
} nx_fe_kserve;

#define NX_FE_KSERVE_METHODS 6
/* The service's methods, for nx_rpc_serve(); k must outlive the server. */
void nx_fe_kserve_methods(nx_fe_kserve *k, nx_rpc_method m[NX_FE_KSERVE_METHODS]);

/* A query's answer: OK (good or late) with the nexus_* parameters and the
 * last call's output as one FP32 tensor OUTPUT0. */
typedef struct nx_fe_answer {
    int app;
    const char *id;             /* the request's id, echoed */
    bool good;                  /* within the SLO ("ok"), else "late" */
    int64_t gpu, batch, exec_us, queue_us, server_us, calls;
    const uint8_t *out;
    size_t nout;
} nx_fe_answer;

void nx_fe_kserve_reply(const nx_fe_kserve *k, nx_rpc_call *c, const nx_fe_answer *a);

#endif

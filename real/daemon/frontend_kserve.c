/* frontend_kserve.c — the KServe v2 service of nexus-frontend (see
 * frontend_kserve.h): request checks, metadata, and the ModelInfer response
 * with its nexus_* parameters (nexus_status, nexus_gpu, nexus_batch,
 * nexus_exec_us, nexus_queue_us, nexus_server_us, nexus_calls). */
#include "frontend_kserve.h"

#include <stdio.h>
#include <string.h>

#include "inference.pb-c.h"
#include "kserve.h"

/* The app a request names, or -1 after answering NOT_FOUND. */
static int app_of(nx_fe_kserve *k, nx_rpc_call *c, const char *name, const char *version)
{
    int a = nx_catalog_app(k->cat, name);
    if (a < 0 || (version[0] && strcmp(version, "1") != 0)) {
        char why[300];
        snprintf(why, sizeof why, "%s '%.80s'%s%.20s is not served here (models: apps of '%s')",
                 a < 0 ? "model" : "version", a < 0 ? name : version, a < 0 ? "" : " of ",
                 a < 0 ? "" : name, k->cat->x->name);
        nx_rpc_fail(c, NX_RPC_NOT_FOUND, why);
        return -1;
    }
    return a;
}

static void model_infer(void *ctx, nx_rpc_call *c, ProtobufCMessage *pm)
{
    nx_fe_kserve *k = ctx;
    Inference__ModelInferRequest *rq = (Inference__ModelInferRequest *)pm;
    int a = app_of(k, c, rq->model_name, rq->model_version);
    if (a < 0)
        return;
    if (!k->accepting(k->ctx)) {
        k->refused(k->ctx, a, NX_RPC_UNAVAILABLE);
        nx_rpc_fail(c, NX_RPC_UNAVAILABLE, "the frontend is not ready yet (no routes, or no data stream to their backends)");
        return;
    }
    const uint8_t *data;
    size_t len;
    char why[200];
    if (nx_kserve_input(rq, &data, &len, why, sizeof why) < 0) {
        k->refused(k->ctx, a, NX_RPC_INVALID_ARGUMENT);
        nx_rpc_fail(c, NX_RPC_INVALID_ARGUMENT, why);
        return;
    }
    k->infer(k->ctx, c, a, rq->id, data, len);
}

static Inference__InferParameter *iparam(Inference__InferParameter *p, int64_t v)
{
    inference__infer_parameter__init(p);
    p->parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_INT64_PARAM;
    p->int64_param = v;
    return p;
}

void nx_fe_kserve_reply(const nx_fe_kserve *k, nx_rpc_call *c, const nx_fe_answer *a)
{
    const char *keys[] = {"nexus_gpu", "nexus_batch", "nexus_exec_us", "nexus_queue_us",
                          "nexus_server_us", "nexus_calls"};
    int64_t vals[] = {a->gpu, a->batch, a->exec_us, a->queue_us, a->server_us, a->calls};
    Inference__InferParameter pv[7];
    Inference__ModelInferResponse__ParametersEntry pe[7], *pp[7];
    for (int i = 0; i < 7; i++) {
        inference__model_infer_response__parameters_entry__init(&pe[i]);
        pp[i] = &pe[i];
    }
    inference__infer_parameter__init(&pv[0]);
    pv[0].parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_STRING_PARAM;
    pv[0].string_param = a->good ? "ok" : "late";
    pe[0].key = "nexus_status";
    pe[0].value = &pv[0];
    for (int i = 0; i < 6; i++) {
        pe[i + 1].key = (char *)keys[i];
        pe[i + 1].value = iparam(&pv[i + 1], vals[i]);
    }
    int64_t shape[2] = {1, (int64_t)(a->nout / sizeof(float))};
    Inference__ModelInferResponse__InferOutputTensor ot =
        INFERENCE__MODEL_INFER_RESPONSE__INFER_OUTPUT_TENSOR__INIT;
    ot.name = "OUTPUT0";
    ot.datatype = "FP32";
    ot.n_shape = 2;
    ot.shape = shape;
    Inference__ModelInferResponse__InferOutputTensor *otp = &ot;
    ProtobufCBinaryData raw = {.len = a->nout, .data = (uint8_t *)a->out};
    Inference__ModelInferResponse r = INFERENCE__MODEL_INFER_RESPONSE__INIT;
    r.model_name = k->cat->x->apps[a->app].name;
    r.model_version = "1";
    r.id = (char *)a->id;
    r.n_parameters = 7;
    r.parameters = pp;
    r.n_outputs = 1;
    r.outputs = &otp;
    r.n_raw_output_contents = 1;
    r.raw_output_contents = &raw;
    nx_rpc_reply(c, &r.base);
}

static void server_live(void *ctx, nx_rpc_call *c, ProtobufCMessage *pm)
{
    (void)ctx;
    (void)pm;
    Inference__ServerLiveResponse r = INFERENCE__SERVER_LIVE_RESPONSE__INIT;
    r.live = 1;
    nx_rpc_reply(c, &r.base);
}

static void server_ready(void *ctx, nx_rpc_call *c, ProtobufCMessage *pm)
{
    nx_fe_kserve *k = ctx;
    (void)pm;
    Inference__ServerReadyResponse r = INFERENCE__SERVER_READY_RESPONSE__INIT;
    r.ready = k->ready(k->ctx);
    nx_rpc_reply(c, &r.base);
}

static void server_metadata(void *ctx, nx_rpc_call *c, ProtobufCMessage *pm)
{
    (void)ctx;
    (void)pm;
    Inference__ServerMetadataResponse r = INFERENCE__SERVER_METADATA_RESPONSE__INIT;
    r.name = "nexus";
    r.version = "1";
    nx_rpc_reply(c, &r.base);
}

static void model_ready(void *ctx, nx_rpc_call *c, ProtobufCMessage *pm)
{
    nx_fe_kserve *k = ctx;
    Inference__ModelReadyRequest *rq = (Inference__ModelReadyRequest *)pm;
    int a = app_of(k, c, rq->name, rq->version);
    if (a < 0)
        return;
    Inference__ModelReadyResponse r = INFERENCE__MODEL_READY_RESPONSE__INIT;
    r.ready = k->ready(k->ctx) && k->app_routed(k->ctx, a);
    nx_rpc_reply(c, &r.base);
}

static void model_metadata(void *ctx, nx_rpc_call *c, ProtobufCMessage *pm)
{
    nx_fe_kserve *k = ctx;
    Inference__ModelMetadataRequest *rq = (Inference__ModelMetadataRequest *)pm;
    int a = app_of(k, c, rq->name, rq->version);
    if (a < 0)
        return;
    const nx_profile *p = k->cat->sess[k->cat->app_sess[a]].prof;
    int64_t ishape[9] = {-1, -1};
    size_t ni = 2;
    if (p->input_ndim > 0) {
        ni = 1;
        for (int i = 0; i < p->input_ndim && i < 8; i++)
            ishape[ni++] = p->input_shape[i];
    }
    int64_t oshape[2] = {-1, -1};
    Inference__ModelMetadataResponse__TensorMetadata in =
        INFERENCE__MODEL_METADATA_RESPONSE__TENSOR_METADATA__INIT;
    in.name = "INPUT0";
    in.datatype = "FP32";
    in.n_shape = ni;
    in.shape = ishape;
    Inference__ModelMetadataResponse__TensorMetadata out =
        INFERENCE__MODEL_METADATA_RESPONSE__TENSOR_METADATA__INIT;
    out.name = "OUTPUT0";
    out.datatype = "FP32";
    out.n_shape = 2;
    out.shape = oshape;
    Inference__ModelMetadataResponse__TensorMetadata *ip = &in, *op = &out;
    char *versions[1] = {"1"};
    char platform[96];
    snprintf(platform, sizeof platform, "nexus_%s_%s", p->model, p->precision);
    Inference__ModelMetadataResponse r = INFERENCE__MODEL_METADATA_RESPONSE__INIT;
    r.name = k->cat->x->apps[a].name;
    r.n_versions = 1;
    r.versions = versions;
    r.platform = platform;
    r.n_inputs = 1;
    r.inputs = &ip;
    r.n_outputs = 1;
    r.outputs = &op;
    nx_rpc_reply(c, &r.base);
}

void nx_fe_kserve_methods(nx_fe_kserve *k, nx_rpc_method m[NX_FE_KSERVE_METHODS])
{
#define KS(name) "/inference.GRPCInferenceService/" name
    const nx_rpc_method all[NX_FE_KSERVE_METHODS] = {
        {.path = KS("ModelInfer"), .req = &inference__model_infer_request__descriptor,
         .on_unary = model_infer, .ctx = k},
        {.path = KS("ServerLive"), .req = &inference__server_live_request__descriptor,
         .on_unary = server_live, .ctx = k},
        {.path = KS("ServerReady"), .req = &inference__server_ready_request__descriptor,
         .on_unary = server_ready, .ctx = k},
        {.path = KS("ServerMetadata"), .req = &inference__server_metadata_request__descriptor,
         .on_unary = server_metadata, .ctx = k},
        {.path = KS("ModelReady"), .req = &inference__model_ready_request__descriptor,
         .on_unary = model_ready, .ctx = k},
        {.path = KS("ModelMetadata"), .req = &inference__model_metadata_request__descriptor,
         .on_unary = model_metadata, .ctx = k},
    };
#undef KS
    memcpy(m, all, sizeof all);
}

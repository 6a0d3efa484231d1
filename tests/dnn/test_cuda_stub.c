/* test_cuda_stub.c — CUnit suite for nx_exec_cuda_ops where no GPU can run it: in a plain
 * build (no USE_CUDA=1) init must fail with NX_ERR_NOTSUP, leave *out NULL and say how to
 * get the CUDA backend ("make USE_CUDA=1"); in a USE_CUDA=1 build on a machine without a
 * GPU it must fail the same way naming the missing GPU, never crash. On a machine with a GPU
 * the executor loads a one-node graph (Relu) and runs it. The graph is built by hand, so this
 * suite depends on nothing but graph.h. */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"

static void check(bool ok, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void check(bool ok, int line, const char *fmt, ...)
{
    char msg[1024] = "";
    if (!ok) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\n  test_cuda_stub.c:%d: %s\n", line, msg);
    }
    CU_assertImplementation(ok, (unsigned)line, msg, __FILE__, "", CU_FALSE);
}
#define CHECK_INT(a, b) do { long long a_ = (a), b_ = (b); \
    check(a_ == b_, __LINE__, "%s == %lld, expected %s == %lld", #a, a_, #b, b_); } while (0)

/* x [1, 8] -> Relu -> y, prepared by hand (max batch 4, one buffer per tensor). */
static void tiny_graph(nx_graph *g)
{
    nx_graph_init(g);
    g->nt = g->capt = 2;
    g->t = calloc(2, sizeof *g->t);
    for (int i = 0; i < 2; i++) {
        g->t[i].name = strdup(i ? "y" : "x");
        g->t[i].ndim = 2;
        g->t[i].dims[0] = 1;
        g->t[i].dims[1] = 8;
        g->t[i].buffer = i;
        g->t[i].first_use = 0;
        g->t[i].last_use = 0;
    }
    g->t[0].is_input = true;
    g->t[1].is_output = true;
    g->nn = g->capn = 1;
    g->n = calloc(1, sizeof *g->n);
    g->n[0].op = NX_OP_RELU;
    g->n[0].name = strdup("relu");
    g->n[0].ninputs = g->n[0].noutputs = 1;
    g->n[0].inputs[0] = 0;
    g->n[0].outputs[0] = 1;
    g->inputs = malloc(sizeof(int));
    g->inputs[0] = 0;
    g->ninputs = 1;
    g->outputs = malloc(sizeof(int));
    g->outputs[0] = 1;
    g->noutputs = 1;
    g->max_batch = 4;
    g->nbuffers = 2;
    g->buffer_elems = malloc(2 * sizeof(size_t));
    g->buffer_elems[0] = g->buffer_elems[1] = 32;
}

static void test_init(void)
{
    nx_graph g;
    tiny_graph(&g);
    for (int p = 0; p < 2; p++) {
        nx_errbuf eb;
        nx_err_clear(&eb);
        nx_exec *e = (nx_exec *)&eb;   /* must be overwritten */
        int rc = nx_exec_cuda_ops.init(&e, &g, p ? NX_PREC_FP16 : NX_PREC_FP32, 0, &eb);
        if (rc == 0) {
            /* a GPU and a CUDA build: the one-node graph must run */
            float in[16], out[16];
            for (int i = 0; i < 16; i++)
                in[i] = (float)i - 7.5f;
            const float *ins[1] = {in};
            float *outs[1] = {out};
            CHECK_INT(nx_exec_cuda_ops.run(e, 2, ins, outs, &eb), 0);
            for (int i = 0; i < 16; i++)
                check(fabsf(out[i] - fmaxf(in[i], 0.0f)) < 1e-2f, __LINE__,
                      "relu(%g) = %g on the GPU", in[i], out[i]);
            nx_exec_cuda_ops.free(e);
            continue;
        }
        CHECK_INT(rc, NX_ERR_NOTSUP);
        CHECK_INT(eb.rc, NX_ERR_NOTSUP);
        check(e == NULL, __LINE__, "init left *out = %p after failing", (void *)e);
        check(strstr(eb.msg, "USE_CUDA=1") || strstr(eb.msg, "GPU"), __LINE__,
              "the message should say how to get the CUDA backend (make USE_CUDA=1) or name the "
              "missing GPU: '%s'", eb.msg);
        printf("\n  init (%s): %s ", p ? "fp16" : "fp32", eb.msg);
    }
    nx_graph_free(&g);
}

static void test_ops_table(void)
{
    check(nx_exec_cuda_ops.name && !strcmp(nx_exec_cuda_ops.name, "cuda"), __LINE__,
          "name is '%s'", nx_exec_cuda_ops.name ? nx_exec_cuda_ops.name : "(null)");
    check(nx_exec_cuda_ops.init && nx_exec_cuda_ops.run && nx_exec_cuda_ops.memory &&
          nx_exec_cuda_ops.free, __LINE__, "an op of the table is NULL");
    /* freeing nothing is allowed */
    nx_exec_cuda_ops.free(NULL);
    CHECK_INT((long long)nx_exec_cuda_ops.memory(NULL), 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("cuda_stub", NULL, NULL);
    CU_add_test(s, "ops table", test_ops_table);
    CU_add_test(s, "init without a usable GPU: NX_ERR_NOTSUP and what to do", test_init);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails ? 1 : 0;
}

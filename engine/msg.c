/* msg.c — allocation of control-plane messages (one block each, see msg.h). */
#include "msg.h"

#include <string.h>

nx_gpu_msg *nx_gpu_msg_new(int type, int gpu)
{
    nx_gpu_msg *g = nx_calloc(1, sizeof *g);
    g->m.type = type;
    g->gpu = gpu;
    return g;
}

nx_batch_msg *nx_batch_msg_new(int n)
{
    nx_batch_msg *b = nx_calloc(1, sizeof *b + sizeof(nx_req *) * (size_t)n);
    b->m.type = NX_MSG_BATCH;
    b->n = n;
    return b;
}

nx_table_msg *nx_table_msg_new(int n)
{
    nx_table_msg *t = nx_calloc(1, sizeof *t + sizeof(nx_table_entry) * (size_t)n);
    t->m.type = NX_MSG_TABLE;
    t->n = n;
    return t;
}

nx_routes_msg *nx_routes_msg_new(int nsess, int nroutes)
{
    size_t sz = sizeof(nx_routes_msg) + sizeof(double) * ((size_t)nroutes + (size_t)nsess) +
                sizeof(int) * ((size_t)nsess + 1 + (size_t)nroutes);
    nx_routes_msg *r = nx_calloc(1, sz);
    char *p = (char *)(r + 1);
    r->w = (double *)p;
    p += sizeof(double) * (size_t)nroutes;
    r->slo_us = (double *)p;
    p += sizeof(double) * (size_t)nsess;
    r->off = (int *)p;
    p += sizeof(int) * ((size_t)nsess + 1);
    r->gpu = (int *)p;
    r->m.type = NX_MSG_ROUTES;
    r->nsess = nsess;
    return r;
}

nx_rates_msg *nx_rates_msg_new(int nsess, int nsamples)
{
    nx_rates_msg *r = nx_calloc(1, sizeof *r + sizeof(uint32_t) * (size_t)nsess *
                                                   (size_t)nsamples);
    r->m.type = NX_MSG_RATES;
    r->nsess = nsess;
    r->nsamples = nsamples;
    return r;
}

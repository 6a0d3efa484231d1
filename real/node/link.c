/* link.c — the node side of the Attach stream (see link.h). */
#include "link.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static void attach(nx_link *l);

static void link_msg(nx_rpc_call *c, ProtobufCMessage *pm)
{
    nx_link *l = nx_rpc_user(c);
    Nexus__SchedMsg *m = (Nexus__SchedMsg *)pm;
    if (m->msg_case == NEXUS__SCHED_MSG__MSG_REGISTERED) {
        l->registered = true;
        l->slot = m->registered->slot;
        l->cfg.want_slot = l->slot; /* after a reconnection: the same slot */
        l->cfg.on_registered(l->cfg.ctx, m->registered);
        return;
    }
    if (l->registered)
        l->cfg.on_msg(l->cfg.ctx, m);
}

static void retry_fire(nx_event *ev) { attach(ev->ctx); }

static void link_close(nx_rpc_call *c, int code, const char *why)
{
    nx_link *l = nx_rpc_user(c);
    l->c = NULL;
    l->registered = false;
    if (l->leaving)
        return;
    if (code == NX_RPC_FAILED_PRECONDITION || code == NX_RPC_INVALID_ARGUMENT ||
        code == NX_RPC_RESOURCE_EXHAUSTED || code == NX_RPC_UNAUTHENTICATED ||
        code == NX_RPC_PERMISSION_DENIED) { /* a wrong token is not fixed by retrying */
        nx_log(l->cfg.who, "the scheduler refused this node: %s", why);
        l->cfg.on_refused(l->cfg.ctx, why);
        return;
    }
    nx_log(l->cfg.who, "lost the scheduler (%s%s%s): attaching again", nx_rpc_code_name(code),
           why[0] ? ": " : "", why);
    l->retry.time = nx_loop_now(l->loop) + NX_MS(500);
    nx_loop_at(l->loop, &l->retry);
}

static const nx_rpc_stream_ops link_ops = {
    .in = &nexus__sched_msg__descriptor,
    .on_msg = link_msg,
    .on_close = link_close,
};

static void attach(nx_link *l)
{
    if (l->leaving || nx_rpc_open(l->ch, "/nexus.Scheduler/Attach", &link_ops, l, true, &l->c) < 0)
        return;
    char policy[NX_NAME_MAX], executor[64];
    snprintf(policy, sizeof policy, "%s", l->cfg.cat->combo->name);
    snprintf(executor, sizeof executor, "%s", l->cfg.executor ? l->cfg.executor : "");
    Nexus__Register r = NEXUS__REGISTER__INIT;
    r.kind = (Nexus__NodeKind)l->cfg.kind;
    r.experiment = (char *)l->cfg.cat->x->name; /* only read by pack */
    r.catalog = l->cfg.cat->hash;
    r.policy = policy;
    r.data_addr = (char *)(l->cfg.data_addr ? l->cfg.data_addr : "");
    r.want_slot = l->cfg.want_slot;
    r.incarnation = l->cfg.incarnation;
    r.executor = executor;
    r.pid = (int32_t)getpid();
    Nexus__NodeMsg m = NEXUS__NODE_MSG__INIT;
    m.msg_case = NEXUS__NODE_MSG__MSG_REGISTER;
    m.register_ = &r;
    nx_rpc_send(l->c, &m.base);
}

void nx_link_init(nx_link *l, nx_rpc *rpc, const nx_link_cfg *cfg)
{
    memset(l, 0, sizeof *l);
    l->cfg = *cfg;
    l->rpc = rpc;
    l->loop = nx_rpc_loop(rpc);
    l->slot = -1;
    l->retry.fn = retry_fire;
    l->retry.ctx = l;
    l->ch = nx_rpc_connect(rpc, cfg->sched_addr);
    attach(l);
}

bool nx_link_send(nx_link *l, Nexus__NodeMsg *m)
{
    return l->c && l->registered && nx_rpc_send(l->c, &m->base) == 0;
}

void nx_link_leave(nx_link *l)
{
    if (l->leaving)
        return;
    Nexus__Leave lv = NEXUS__LEAVE__INIT;
    Nexus__NodeMsg m = NEXUS__NODE_MSG__INIT;
    m.msg_case = NEXUS__NODE_MSG__MSG_LEAVE;
    m.leave = &lv;
    nx_link_send(l, &m);
    l->leaving = true; /* the stream ends with the daemon's nx_rpc_shutdown() */
    nx_loop_cancel(l->loop, &l->retry);
}

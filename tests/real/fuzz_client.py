#!/usr/bin/python3
"""fuzz_client.py — bad input against a live cluster: random bytes and
malformed or out-of-range messages on every service (the scheduler's Attach
and Status, a backend's Serve, the frontend's KServe calls, every daemon's
grpc.health.v1.Health Check and Watch). Errors are
expected; afterwards the cluster must still be ready and answer correctly
(nexus-cluster fails the run if any daemon died). argv: STUBS_DIR (stubs of
inference.proto and nexus.proto)."""
import os, random, struct, sys

sys.path.insert(0, sys.argv[1])
import grpc
import inference_pb2 as pb
import inference_pb2_grpc as pbg
import nexus_pb2 as nx

rng = random.Random(7)
raw = lambda b: b
fe = grpc.insecure_channel(os.environ["NEXUS_FRONTENDS"].split(",")[0])
sch = grpc.insecure_channel(os.environ["NEXUS_SCHEDULER"])
status = sch.unary_unary("/nexus.Scheduler/Status", request_serializer=nx.StatusRequest.SerializeToString,
                         response_deserializer=nx.StatusReply.FromString)
backend = [n.addr for n in status(nx.StatusRequest(), timeout=10).nodes if n.kind == nx.NODE_BACKEND][0]
be = grpc.insecure_channel(backend)

def junk():
    return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))

def mutate(b):
    b = bytearray(b)
    for _ in range(rng.randrange(1, 6)):
        if b and rng.random() < 0.5:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif b and rng.random() < 0.5:
            del b[rng.randrange(len(b)):]
        else:
            b[rng.randrange(len(b) + 1):0] = bytes([rng.randrange(256)])
    return bytes(b)

def stream(ch, path, msgs):
    call = ch.stream_stream(path, request_serializer=raw, response_deserializer=raw)
    try:
        for _ in call(iter(msgs), timeout=1.0):
            pass
    except grpc.RpcError:
        pass

def unary(ch, path, msg):
    try:
        ch.unary_unary(path, request_serializer=raw, response_deserializer=raw)(msg, timeout=2)
    except grpc.RpcError:
        pass

good_reg = nx.NodeMsg(register=nx.Register(kind=nx.NODE_FRONTEND, experiment="x", catalog=1,
                                           policy="nexus", want_slot=3)).SerializeToString()
rates = nx.NodeMsg(rates=nx.Rates(nsess=7, nsamples=2, counts=[1, 2, 3])).SerializeToString()
q = nx.QueryBatch(queries=[nx.Query(id=1, session=0, slack_ns=10**9, input=b"\0" * 64)])
odd = [nx.Query(id=2, session=-1), nx.Query(id=3, session=10**9), nx.Query(id=4, session=0, slack_ns=-10**12),
       nx.Query(id=5, session=1, slack_ns=2**62), nx.Query(id=6, session=0, input=b"\1" * 100000)]
n = 0
for i in range(60):
    stream(sch, "/nexus.Scheduler/Attach", [junk() for _ in range(rng.randrange(1, 4))])
    stream(sch, "/nexus.Scheduler/Attach", [mutate(good_reg), mutate(rates), junk()])
    stream(sch, "/nexus.Scheduler/Attach", [rates, good_reg])
    unary(sch, "/nexus.Scheduler/Status", mutate(nx.StatusRequest().SerializeToString()) + junk()[:3])
    stream(be, "/nexus.Backend/Serve", [junk(), mutate(q.SerializeToString())])
    stream(be, "/nexus.Backend/Serve", [nx.QueryBatch(queries=[odd[i % len(odd)]], whole=i % 2 == 0)
                                        .SerializeToString()])
    req = pb.ModelInferRequest(model_name="classify")
    t = req.inputs.add()
    t.name, t.datatype = "INPUT0", rng.choice(["FP32", "INT8", ""])
    t.shape.extend([rng.randrange(-3, 5) for _ in range(rng.randrange(0, 4))])
    req.raw_input_contents.append(junk())
    unary(fe, "/inference.GRPCInferenceService/ModelInfer", req.SerializeToString())
    unary(fe, "/inference.GRPCInferenceService/ModelInfer", mutate(req.SerializeToString()))
    unary(fe, "/inference.GRPCInferenceService/" + rng.choice(["ModelReady", "ModelMetadata", "Nope"]), junk())
    n += 10
# the health service of every daemon: junk, mutated requests, Watch streams
# with no request, two requests, junk, or a client that goes away at once
def health_req(svc):   # HealthCheckRequest{service = svc}, field 1, by hand
    b, n, v = svc.encode(), len(svc.encode()), b""
    while n >= 0x80:
        v, n = v + bytes([n & 0x7f | 0x80]), n >> 7
    return b"\x0a" + v + bytes([n]) + b
for i in range(40):
    for ch in (sch, be, fe):
        unary(ch, "/grpc.health.v1.Health/Check", rng.choice([junk(), mutate(health_req("")),
                                                              health_req("x" * rng.randrange(300))]))
        stream(ch, "/grpc.health.v1.Health/Watch",
               rng.choice([[], [junk()], [health_req(""), health_req("")],
                           [mutate(health_req("nexus.Backend"))], [health_req("y" * 200)]]))
        w = ch.unary_stream("/grpc.health.v1.Health/Watch", request_serializer=raw,
                            response_deserializer=raw)(health_req(""), timeout=1.0)
        w.cancel()
        n += 3
stub = pbg.GRPCInferenceServiceStub(fe)
ok = stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
req = pb.ModelInferRequest(model_name="classify")
t = req.inputs.add()
t.name, t.datatype = "INPUT0", "FP32"
t.shape.extend([1, 2])
req.raw_input_contents.append(struct.pack("<2f", 1.5, 2.0))
out = struct.unpack("<2f", stub.ModelInfer(req, timeout=10).raw_output_contents[0])
st = status(nx.StatusRequest(), timeout=10)
alive = sum(1 for x in st.nodes if x.alive and x.kind == nx.NODE_BACKEND)
print("fuzz_client: %d bad calls and streams sent; afterwards ready=%s, answer %s, %d backends alive"
      % (n, ok, out, alive))
sys.exit(0 if ok and out == (3.5, 2.0) and alive == 2 else 1)

#!/usr/bin/python3
"""kserve_client.py — a KServe v2 client nobody here wrote: Debian's
python3-grpcio with stubs that grpc_tools.protoc generated from
real/proto/inference.proto (in the directory given as argv[1]). Calls every
method of inference.GRPCInferenceService on the frontend in $NEXUS_FRONTENDS
and checks the answers (the emulated executor returns [sum, count] of the
input). Exit status 0 when all is as expected."""
import os, struct, sys

sys.path.insert(0, sys.argv[1])
import grpc
import inference_pb2 as pb
import inference_pb2_grpc as pbg

addr = os.environ["NEXUS_FRONTENDS"].split(",")[0]
ch = grpc.insecure_channel(addr)
stub = pbg.GRPCInferenceServiceStub(ch)

def expect(cond, what):
    if not cond:
        print("kserve_client: FAILED:", what)
        sys.exit(1)
    print("kserve_client: ok:", what)

expect(stub.ServerLive(pb.ServerLiveRequest(), timeout=10).live, "ServerLive: live")
expect(stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready, "ServerReady: ready")
md = stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=10)
expect(md.name == "nexus", "ServerMetadata: name %r" % md.name)
mm = stub.ModelMetadata(pb.ModelMetadataRequest(name="classify"), timeout=10)
expect(mm.name == "classify" and mm.inputs[0].datatype == "FP32"
       and list(mm.inputs[0].shape) == [-1, 3, 224, 224],
       "ModelMetadata: classify takes FP32 %s" % list(mm.inputs[0].shape))
expect(stub.ModelReady(pb.ModelReadyRequest(name="classify"), timeout=10).ready,
       "ModelReady: classify")

# raw_input_contents
vals = [1.0, 2.0, 3.0, 4.5]
req = pb.ModelInferRequest(model_name="classify", id="req-1")
t = req.inputs.add()
t.name, t.datatype = "INPUT0", "FP32"
t.shape.extend([1, len(vals)])
req.raw_input_contents.append(struct.pack("<%df" % len(vals), *vals))
r = stub.ModelInfer(req, timeout=10)
out = struct.unpack("<2f", r.raw_output_contents[0])
expect(r.model_name == "classify" and r.id == "req-1", "ModelInfer: echoes model and id")
expect(r.outputs[0].datatype == "FP32" and list(r.outputs[0].shape) == [1, 2],
       "ModelInfer: output FP32 [1, 2]")
expect(out == (sum(vals), float(len(vals))), "ModelInfer: output %s = [sum, count]" % (out,))
expect(r.parameters["nexus_status"].string_param in ("ok", "late"),
       "ModelInfer: nexus_status %s, batch %d, gpu %d" % (r.parameters["nexus_status"].string_param,
       r.parameters["nexus_batch"].int64_param, r.parameters["nexus_gpu"].int64_param))

# typed contents instead of raw bytes, on the other app
req = pb.ModelInferRequest(model_name="scenes")
t = req.inputs.add()
t.name, t.datatype = "INPUT0", "FP32"
t.shape.extend([2, 2])
t.contents.fp32_contents.extend([0.5, 0.5, 1.0, 2.0])
r = stub.ModelInfer(req, timeout=10)
expect(struct.unpack("<2f", r.raw_output_contents[0]) == (4.0, 4.0),
       "ModelInfer: fp32_contents input")

def code_of(call):
    try:
        call()
    except grpc.RpcError as e:
        return e.code()
    return grpc.StatusCode.OK

expect(code_of(lambda: stub.ModelInfer(pb.ModelInferRequest(model_name="nope"), timeout=10))
       == grpc.StatusCode.NOT_FOUND, "ModelInfer: unknown model -> NOT_FOUND")
bad = pb.ModelInferRequest(model_name="classify")
t = bad.inputs.add()
t.name, t.datatype = "INPUT0", "FP32"
t.shape.extend([1, 3])
bad.raw_input_contents.append(b"\0" * 5)
expect(code_of(lambda: stub.ModelInfer(bad, timeout=10)) == grpc.StatusCode.INVALID_ARGUMENT,
       "ModelInfer: 5 bytes for 3 floats -> INVALID_ARGUMENT")
expect(code_of(lambda: stub.ModelReady(pb.ModelReadyRequest(name="classify", version="7"),
                                       timeout=10)) == grpc.StatusCode.NOT_FOUND,
       "ModelReady: unknown version -> NOT_FOUND")
print("kserve_client: all checks passed")

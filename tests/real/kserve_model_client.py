#!/usr/bin/python3
"""kserve_model_client.py — ModelInfer against a frontend whose backend runs a
real model on the DNN engine's CPU executor: sends every input of the largest
case of MODELS/lenet.ref (PyTorch's inputs and outputs, written by
tools/export_models.py) one request at a time and compares each answer with
PyTorch's output (normalised error below TOLERANCE, default 1e-3: fp32).
argv: STUBS_DIR REF_FILE [TOLERANCE]."""
import os, struct, sys

sys.path.insert(0, sys.argv[1])
import grpc
import inference_pb2 as pb
import inference_pb2_grpc as pbg

def read_ref(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"NXREF001", "not a reference file"
    off = 8
    (ncases,) = struct.unpack_from("<I", data, off); off += 4
    cases = []
    for _ in range(ncases):
        b, nin, nout = struct.unpack_from("<III", data, off); off += 12
        tensors = []
        for _ in range(nin + nout):
            (nd,) = struct.unpack_from("<I", data, off); off += 4
            dims = struct.unpack_from("<%dq" % nd, data, off); off += 8 * nd
            n = 1
            for d in dims:
                n *= d
            tensors.append((dims, struct.unpack_from("<%df" % n, data, off))); off += 4 * n
        cases.append((b, tensors[:nin], tensors[nin:]))
    return cases

b, ins, outs = max(read_ref(sys.argv[2]), key=lambda c: c[0])  # the largest batch
(idims, x), (odims, y) = ins[0], outs[0]
isz, osz = len(x) // b, len(y) // b
stub = pbg.GRPCInferenceServiceStub(grpc.insecure_channel(os.environ["NEXUS_FRONTENDS"].split(",")[0]))
worst = 0.0
for i in range(b):
    req = pb.ModelInferRequest(model_name="digits")
    t = req.inputs.add()
    t.name, t.datatype = "INPUT0", "FP32"
    t.shape.extend([1] + list(idims[1:]))
    req.raw_input_contents.append(struct.pack("<%df" % isz, *x[i * isz:(i + 1) * isz]))
    r = stub.ModelInfer(req, timeout=30)
    got = struct.unpack("<%df" % (len(r.raw_output_contents[0]) // 4), r.raw_output_contents[0])
    want = y[i * osz:(i + 1) * osz]
    if len(got) != osz:
        print("kserve_model_client: FAILED: %d outputs, expected %d" % (len(got), osz))
        sys.exit(1)
    scale = max(abs(v) for v in want) or 1.0
    worst = max(worst, max(abs(g - w) for g, w in zip(got, want)) / scale)
tol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-3
print("kserve_model_client: %d LeNet answers, worst normalised error %.2e against PyTorch "
      "(tolerance %.0e)" % (b, worst, tol))
if worst > tol:
    print("kserve_model_client: FAILED")
    sys.exit(1)

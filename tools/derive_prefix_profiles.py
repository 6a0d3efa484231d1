#!/usr/bin/python3
"""Writes profiles/h100-pytorch/resnet50_prefix-<prec>.yml, resnet50_fc-<prec>.yml and
profiles/h100-pytorch/modeldb.yml: the shared trunk and the last layer of ResNet-50
variants that differ only in their final fully connected layer (the paper's
prefix-batching experiment, Fig. 15).

The measured data (../shared/data/h100-pytorch-cudagraph.json) times whole
ResNet-50 forwards only, so the split is derived, not measured: the suffix is
the 2048x1000 FC layer, whose cost on an H100 is estimated as one kernel's
fixed cost plus its FLOPs at an effective tensor-core rate; the prefix is the
measured whole model minus that. Replace both with nexus-profile measurements
of the exported trunk and head when they exist (issue 4)."""
import json

SRC = "../shared/data/h100-pytorch-cudagraph.json"
FIXED_US = 3.0                      # one GEMM kernel node in a CUDA graph
EFF_TFLOPS = {"fp16": 200.0, "fp32": 100.0}   # effective rate for a skinny GEMM
BYTES = {"fp16": 2, "fp32": 4}

d = json.load(open(SRC))
for prec in ("fp16", "fp32"):
    rows = d["models"]["resnet50"][prec]
    w_mb = 2048 * 1000 * BYTES[prec] / 2**20
    fc, pre = [], []
    for r in rows:
        b = r["batch"]
        fc_us = FIXED_US + 2 * 2048 * 1000 * b / (EFF_TFLOPS[prec] * 1e12) * 1e6
        fc_mb = w_mb + b * 1000 * 4 / 2**20
        fc.append((b, fc_us, 0.0, fc_mb))
        pre.append((b, r["mean_us"] - fc_us, r["std_us"], max(r["peak_mem_mb"] - fc_mb, 1.0)))
    prov_fc = (f"derived, not measured: the 2048x1000 FC head of ResNet-50 on an H100, "
               f"{FIXED_US} us kernel cost + 2*2048*1000*b FLOP at {EFF_TFLOPS[prec]} TFLOP/s "
               f"({prec}); memory = weights + output; by tools/derive_prefix_profiles.py")
    prov_pre = (f"derived: {SRC} resnet50 {prec} (CUDA-graph replay on NVIDIA H100 80GB HBM3) "
                f"minus the estimated FC head (resnet50_fc-{prec}.yml); by tools/derive_prefix_profiles.py")
    for name, pts, prov in (("resnet50_fc", fc, prov_fc), ("resnet50_prefix", pre, prov_pre)):
        with open(f"profiles/h100-pytorch/{name}-{prec}.yml", "w") as f:
            f.write(f"# {name} {prec} on NVIDIA H100 80GB HBM3 ({prov.split(':')[0]})\n")
            f.write(f"model: {name}\ngpu: H100\nprecision: {prec}\n")
            f.write(f"input_shape: {[2048] if name == 'resnet50_fc' else [3, 224, 224]}\n")
            f.write("preprocess_us: 0\npostprocess_us: 0\n")
            f.write(f'provenance: "{prov}"\nbatches:\n')
            for b, m, s, mem in pts:
                f.write(f"  - {{batch: {b}, mean_us: {m:.1f}, std_us: {s:.1f}, mem_mb: {mem:.1f}}}\n")
with open("profiles/h100-pytorch/modeldb.yml", "w") as f:
    f.write("# The model DB: models that share a prefix (nexus-sim plans them together and\n"
            "# runs the prefix once on the merged batch). Written by tools/derive_prefix_profiles.py.\n")
    f.write("share_prefix:\n  - name: resnet50_trunk\n    prefix: resnet50_prefix\n    models:\n")
    for i in range(10):
        f.write(f"      - {{model: resnet50_v{i}, full: resnet50, suffix: resnet50_fc}}\n")

#!/usr/bin/python3
"""export_models.py — the model zoo: torchvision architectures exported to ONNX with fixed seeds.

Run with Debian's interpreter (/usr/bin/python3: python3-torch, python3-torchvision, python3-onnx);
`make models` does. For every model it writes into OUT (default models/):

  NAME.onnx       opset 13, dynamic batch axis (dim 0 of the input and of every output), random
                  weights from a fixed seed (no pretrained weights: nothing can be downloaded)
  NAME.ref        PyTorch's own output for a seeded input at batch 1 and at batch 4 (see
                  write_ref below), the reference the C executor is tested against

The models and their input shapes are those of ../shared/data/h100-pytorch-cudagraph.py (the H100
anchor), so profiles measured from these files compare with it: lenet (LeNet-5 as there), resnet18,
resnet50, vgg16, inception_v3, googlenet, squeezenet1_0, mobilenet_v2, densenet121 and
ssd300_vgg16_core (torchvision's SSD300-VGG16 backbone + head: box regression and class logits for
the 8732 anchors, before anchor decoding and NMS). resnet50_v0 .. resnet50_v9 are a variant family
for prefix batching: identical to resnet50 except the final fc layer (each from its own seed).

BatchNorm layers get random running statistics and affine parameters (torchvision initialises
them to the identity), so the engine's BN folding is exercised by the model tests.

Usage: export_models.py [--out DIR] [--only a,b,...] [--variants N]
"""
import argparse
import os
import struct
import sys
import time

import torch
import torchvision.models as tvm

REF_MAGIC = b"NXREF001"
REF_BATCHES = (1, 4)


class LeNet(torch.nn.Module):
    """LeNet-5 as in the H100 anchor script (MNIST 1x28x28, 10 classes)."""

    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 20, 5)
        self.c2 = torch.nn.Conv2d(20, 50, 5)
        self.f1 = torch.nn.Linear(800, 500)
        self.f2 = torch.nn.Linear(500, 10)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(self.c1(x), 2)
        x = torch.nn.functional.max_pool2d(self.c2(x), 2)
        return self.f2(torch.relu(self.f1(x.flatten(1))))


class SSDCore(torch.nn.Module):
    """SSD300-VGG16 without its post-processing: (bbox_regression [N,8732,4], cls_logits [N,8732,91])."""

    def __init__(self):
        super().__init__()
        m = tvm.detection.ssd300_vgg16(weights=None, weights_backbone=None)
        self.b = m.backbone
        self.h = m.head

    def forward(self, x):
        f = list(self.b(x).values())
        o = self.h(f)
        return o["bbox_regression"], o["cls_logits"]


MODELS = [
    ("lenet", LeNet, (1, 28, 28)),
    ("resnet18", tvm.resnet18, (3, 224, 224)),
    ("resnet50", tvm.resnet50, (3, 224, 224)),
    ("vgg16", tvm.vgg16, (3, 224, 224)),
    ("inception_v3", lambda: tvm.inception_v3(weights=None, aux_logits=False, init_weights=False),
     (3, 299, 299)),
    ("googlenet", lambda: tvm.googlenet(weights=None, aux_logits=False, init_weights=False),
     (3, 224, 224)),
    ("squeezenet1_0", tvm.squeezenet1_0, (3, 224, 224)),
    ("mobilenet_v2", tvm.mobilenet_v2, (3, 224, 224)),
    ("densenet121", tvm.densenet121, (3, 224, 224)),
    ("ssd300_vgg16_core", SSDCore, (3, 300, 300)),
]


def randomize_bn(model, gen):
    """Give every BatchNorm non-trivial statistics so that folding it is tested."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.1)


def write_ref(path, model, shape, seed):
    """NAME.ref: magic 'NXREF001', u32 count of cases; per case: u32 batch, u32 ninputs,
    u32 noutputs, then each tensor as u32 ndim, ndim x i64 dims, float32 data (little endian)."""
    gen = torch.Generator().manual_seed(seed)
    cases = []
    with torch.no_grad():
        for b in REF_BATCHES:
            x = torch.randn((b,) + tuple(shape), generator=gen)
            y = model(x)
            if isinstance(y, torch.Tensor):
                y = (y,)
            cases.append((b, [x], list(y)))
    with open(path + ".tmp", "wb") as f:
        f.write(REF_MAGIC)
        f.write(struct.pack("<I", len(cases)))
        for b, ins, outs in cases:
            f.write(struct.pack("<III", b, len(ins), len(outs)))
            for t in ins + outs:
                t = t.contiguous().float()
                f.write(struct.pack("<I", t.dim()))
                f.write(struct.pack("<%dq" % t.dim(), *t.shape))
                f.write(t.numpy().astype("<f4").tobytes())
    os.replace(path + ".tmp", path)


def export(model, shape, path):
    model.eval()
    x = torch.zeros((1,) + tuple(shape))
    with torch.no_grad():
        y = model(x)
    nout = 1 if isinstance(y, torch.Tensor) else len(y)
    outs = ["output"] if nout == 1 else ["output%d" % i for i in range(nout)]
    axes = {n: {0: "batch"} for n in ["input"] + outs}
    torch.onnx.export(model, x, path + ".tmp", input_names=["input"], output_names=outs,
                      dynamic_axes=axes, opset_version=13, do_constant_folding=True)
    os.replace(path + ".tmp", path)


def build(ctor, seed):
    torch.manual_seed(seed)
    model = ctor().eval()
    randomize_bn(model, torch.Generator().manual_seed(seed + 1))
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="models")
    ap.add_argument("--only", default="", help="comma-separated model names (default: all)")
    ap.add_argument("--variants", type=int, default=10, help="resnet50_v* variants (default 10)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    only = set(filter(None, a.only.split(",")))
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    names = [m[0] for m in MODELS] + ["resnet50_v%d" % i for i in range(a.variants)]
    unknown = only - set(names)
    if unknown:
        sys.exit("export_models.py: unknown model(s): %s; known: %s" %
                 (", ".join(sorted(unknown)), ", ".join(names)))
    for i, (name, ctor, shape) in enumerate(MODELS):
        if only and name not in only:
            continue
        t0 = time.time()
        model = build(ctor, 1000 + i)
        path = os.path.join(a.out, name + ".onnx")
        export(model, shape, path)
        write_ref(os.path.join(a.out, name + ".ref"), model, shape, 7)
        print("export_models: %-18s %7.1f MB  %5.1f s" %
              (name, os.path.getsize(path) / 1e6, time.time() - t0), flush=True)
    # The variant family: resnet50's weights, then a fresh fc per variant.
    base = None
    for v in range(a.variants):
        name = "resnet50_v%d" % v
        if only and name not in only:
            continue
        t0 = time.time()
        if base is None:
            base = build(tvm.resnet50, 1000 + [m[0] for m in MODELS].index("resnet50"))
        torch.manual_seed(5000 + v)
        fc = torch.nn.Linear(base.fc.in_features, base.fc.out_features)
        base.fc.load_state_dict(fc.state_dict())
        path = os.path.join(a.out, name + ".onnx")
        export(base, (3, 224, 224), path)
        write_ref(os.path.join(a.out, name + ".ref"), base, (3, 224, 224), 7)
        print("export_models: %-18s %7.1f MB  %5.1f s" %
              (name, os.path.getsize(path) / 1e6, time.time() - t0), flush=True)


if __name__ == "__main__":
    main()

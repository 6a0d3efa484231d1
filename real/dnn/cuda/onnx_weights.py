#!/usr/bin/env python3
"""onnx_weights.py — ship the model zoo to a GPU machine without its weights.

The zoo's ONNX files are hundreds of MB (vgg16 alone ~530 MB) and the lent GPU machine takes
64 MiB per call, has no Debian torch to run `make models`, and cannot download. Weights do
not change a network's speed, and the GPU-vs-CPU check only needs both executors to read
the same file. So:

  onnx_weights.py strip IN.onnx OUT.onnx   (here, Debian python3-onnx) every fp32 initializer
      of more than 256 values loses its data and keeps, in its doc_string, its mean, standard
      deviation, min and max ("nxfill ..."); the graph, attributes and small tensors (biases,
      BN parameters of small layers, shapes) are kept exactly. A stripped zoo is ~1 MB.
  (strip-all / fill-all IN.onnx... OUTDIR do many files in one process)
  onnx_weights.py fill IN.onnx OUT.onnx    (there, with its own onnx + numpy) every stripped
      initializer is refilled with N(mean, std) clipped to [min, max], from a seed derived from
      its name (crc32), so every fill of a file gives the same bytes.

The refilled models have the same architecture and weight statistics as `make models`'
(BN variances stay positive: clipping keeps them in their original range), not the same
values; results that depend on the values (GPU vs CPU errors) are measured on the refilled
files on both sides.
"""
import os
import sys
import zlib

import numpy as np
import onnx
from onnx import numpy_helper

TAG = "nxfill"
MIN_ELEMS = 256


def strip(src, dst):
    m = onnx.load(src)
    n_stripped = 0
    for t in m.graph.initializer:
        if t.data_type != onnx.TensorProto.FLOAT:
            continue
        a = numpy_helper.to_array(t).astype(np.float64)
        if a.size <= MIN_ELEMS:
            continue
        t.doc_string = "%s %.9g %.9g %.9g %.9g" % (TAG, a.mean(), a.std(), a.min(), a.max())
        t.ClearField("raw_data")
        t.ClearField("float_data")
        n_stripped += 1
    onnx.save(m, dst)
    print("onnx_weights: %s -> %s: %d initializers stripped" % (src, dst, n_stripped))


def fill(src, dst):
    m = onnx.load(src)
    n = 0
    for t in m.graph.initializer:
        if not t.doc_string.startswith(TAG):
            continue
        _, mean, std, lo, hi = t.doc_string.split()
        mean, std, lo, hi = float(mean), float(std), float(lo), float(hi)
        count = int(np.prod(t.dims)) if len(t.dims) else 1
        rng = np.random.default_rng(zlib.crc32(t.name.encode()))
        a = rng.standard_normal(count, dtype=np.float32) * np.float32(std) + np.float32(mean)
        np.clip(a, lo, hi, out=a)
        t.raw_data = a.astype("<f4").tobytes()
        t.doc_string = ""
        n += 1
    onnx.save(m, dst)
    print("onnx_weights: %s -> %s: %d initializers filled" % (src, dst, n))


def main():
    a = sys.argv[1:]
    if len(a) == 3 and a[0] in ("strip", "fill"):
        (strip if a[0] == "strip" else fill)(a[1], a[2])
    elif len(a) >= 3 and a[0] in ("strip-all", "fill-all"):
        # strip-all|fill-all IN.onnx... OUTDIR
        for src in a[1:-1]:
            dst = os.path.join(a[-1], os.path.basename(src))
            (strip if a[0] == "strip-all" else fill)(src, dst)
    else:
        sys.exit("usage: onnx_weights.py strip|fill IN.onnx OUT.onnx\n"
                 "       onnx_weights.py strip-all|fill-all IN.onnx... OUTDIR")


if __name__ == "__main__":
    main()

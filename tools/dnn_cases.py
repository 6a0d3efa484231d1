#!/usr/bin/python3
"""dnn_cases.py — per-operator test cases for the C inference engine, with PyTorch's answers.

Run with Debian's interpreter (/usr/bin/python3: python3-torch, python3-onnx); the CUnit suite
tests/dnn/test_dnn_ops.c runs it into a fresh directory. For every case it writes

  OUT/NAME.onnx   a small torch module exported to ONNX (opset 13, dynamic batch), so the
                  operators appear exactly as the exporter emits them
  OUT/NAME.ref    PyTorch's own output of that module for seeded inputs at batch 1 and 3
                  (format: export_models.py, write_ref)

plus a few models built with onnx.helper for what the exporter never emits (handmade()), and
OUT/cases.txt, one case name per line. It also writes models the engine must reject:
  OUT/bad_op.onnx     a node 'mystery' of an operator the engine does not know (Hardmax)
  OUT/bad_attr.onnx   a Conv node 'conv_x' with an attribute it does not know ('frobnicate')
  OUT/bad_value.onnx  a Pad node 'pad_r' with mode 'reflect' (a value it does not support)
and OUT/ssd_post.ref, torchvision's SSD300 post-processing of a synthetic output (ssd_post()),
OUT/photo.jpg with OUT/jpeg_pre.ref, its pre-processed tensors (jpeg_pre()).

Usage: dnn_cases.py OUT
"""
import os
import struct
import sys

import onnx
import onnx.helper as oh
import torch
import torch.nn as nn
import torch.nn.functional as F

REF_BATCHES = (1, 3)


def write_ref(path, model, shape, seed):
    gen = torch.Generator().manual_seed(seed)
    with open(path, "wb") as f:
        f.write(b"NXREF001")
        f.write(struct.pack("<I", len(REF_BATCHES)))
        with torch.no_grad():
            for b in REF_BATCHES:
                x = torch.randn((b,) + tuple(shape), generator=gen)
                y = model(x)
                ys = [y] if isinstance(y, torch.Tensor) else list(y)
                f.write(struct.pack("<III", b, 1, len(ys)))
                for t in [x] + ys:
                    t = t.contiguous().float()
                    f.write(struct.pack("<I", t.dim()))
                    f.write(struct.pack("<%dq" % t.dim(), *t.shape))
                    f.write(t.numpy().astype("<f4").tobytes())


class Lambda(nn.Module):
    def __init__(self, fn, **mods):
        super().__init__()
        self.fn = fn
        for k, v in mods.items():
            setattr(self, k, v)

    def forward(self, x):
        return self.fn(self, x)


def bn(c):
    m = nn.BatchNorm2d(c)
    with torch.no_grad():
        m.running_mean.uniform_(-0.5, 0.5)
        m.running_var.uniform_(0.5, 2.0)
        m.weight.uniform_(0.5, 1.5)
        m.bias.uniform_(-0.5, 0.5)
    return m


def cases():
    c = []
    a = c.append
    # convolutions: every attribute, and sizes past the GEMM's blocking (K > 256, M > 144,
    # N > 2048)
    a(("conv_basic", nn.Conv2d(3, 8, 3), (3, 10, 12)))
    a(("conv_stride_pad", nn.Conv2d(4, 8, 3, stride=2, padding=1), (4, 11, 9)))
    a(("conv_stride_asym", nn.Conv2d(4, 6, (3, 5), stride=(2, 1), padding=(1, 2)), (4, 9, 10)))
    a(("conv_dilation", nn.Conv2d(4, 6, 3, dilation=2, padding=2), (4, 12, 12)))
    a(("conv_group", nn.Conv2d(8, 12, 3, groups=4, padding=1), (8, 7, 9)))
    a(("conv_depthwise", nn.Conv2d(8, 8, 3, groups=8, stride=2, padding=1), (8, 9, 9)))
    a(("conv_depthwise_mult", nn.Conv2d(4, 8, 3, groups=4, padding=1), (4, 6, 6)))
    a(("conv_1x1", nn.Conv2d(16, 8, 1), (16, 5, 7)))
    a(("conv_1x1_stride", nn.Conv2d(16, 8, 1, stride=2), (16, 7, 7)))
    a(("conv_1x7", nn.Conv2d(3, 5, (1, 7), padding=(0, 3)), (3, 8, 10)))
    a(("conv_nobias", nn.Conv2d(3, 7, 3, bias=False), (3, 6, 6)))
    a(("conv_big", nn.Conv2d(64, 150, 3, padding=1), (64, 48, 48)))
    a(("conv_bn_relu", nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), bn(16), nn.ReLU()),
       (3, 8, 8)))
    a(("conv_nobias_bn", nn.Sequential(nn.Conv2d(3, 16, 3, bias=False), bn(16)), (3, 8, 8)))
    a(("conv_relu6", nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU6()), (3, 7, 7)))
    a(("bn_relu", nn.Sequential(bn(5), nn.ReLU()), (5, 4, 6)))
    # pooling
    a(("maxpool", nn.MaxPool2d(3, 2, 1), (3, 9, 9)))
    a(("maxpool_ceil", nn.MaxPool2d(3, 2, ceil_mode=True), (3, 10, 10)))
    a(("maxpool_2x2", nn.MaxPool2d(2), (3, 8, 6)))
    a(("avgpool", nn.AvgPool2d(2), (3, 8, 6)))
    a(("avgpool_pad", nn.AvgPool2d(3, 1, 1), (3, 7, 7)))
    a(("avgpool_pad_exclude", nn.AvgPool2d(3, 2, 1, count_include_pad=False), (3, 7, 7)))
    a(("avgpool_ceil", nn.AvgPool2d(3, 2, ceil_mode=True), (3, 8, 8)))
    a(("globalavgpool", nn.AdaptiveAvgPool2d(1), (6, 5, 7)))
    # element-wise and broadcasting
    a(("add_residual", Lambda(lambda s, x: s.c(x) + x, c=nn.Conv2d(4, 4, 3, padding=1)), (4, 6, 6)))
    a(("add_relu", Lambda(lambda s, x: F.relu(s.c(x) + x), c=nn.Conv2d(4, 4, 1)), (4, 5, 5)))
    a(("mul_channel", Lambda(lambda s, x: x * s.w, w=nn.Parameter(torch.randn(1, 4, 1, 1))),
       (4, 3, 5)))
    a(("sub_div", Lambda(lambda s, x: (x - s.m) / s.d, m=nn.Parameter(torch.randn(3, 1, 1)),
                         d=nn.Parameter(torch.rand(3, 1, 1) + 0.5)), (3, 4, 4)))
    a(("mul_tensors", Lambda(lambda s, x: s.a(x) * s.b(x), a=nn.Conv2d(3, 4, 1),
                             b=nn.Conv2d(3, 4, 1)), (3, 5, 5)))
    a(("relu", nn.ReLU(), (3, 4, 5)))
    a(("clip", Lambda(lambda s, x: torch.clamp(x, -0.5, 0.7)), (3, 4, 5)))
    a(("clip_min", Lambda(lambda s, x: torch.clamp(x, min=0.1)), (3, 4, 5)))
    a(("sigmoid", nn.Sigmoid(), (3, 4, 5)))
    # structure
    a(("concat", Lambda(lambda s, x: torch.cat([s.a(x), s.b(x), x], 1), a=nn.Conv2d(3, 4, 1),
                        b=nn.Conv2d(3, 2, 3, padding=1)), (3, 5, 6)))
    a(("concat_many", Lambda(lambda s, x: torch.cat([x * (i + 1) for i in range(12)], 1)),
       (2, 3, 3)))
    a(("linear", nn.Sequential(nn.Flatten(), nn.Linear(48, 10)), (3, 4, 4)))
    a(("linear_nobias_relu", nn.Sequential(nn.Flatten(), nn.Linear(300, 70, bias=False),
                                          nn.ReLU()), (300,)))
    a(("matmul", Lambda(lambda s, x: torch.matmul(x, s.w), w=nn.Parameter(torch.randn(6, 5))),
       (4, 6)))
    a(("flatten", nn.Flatten(), (3, 4, 5)))
    a(("reshape", Lambda(lambda s, x: x.reshape(x.shape[0], 2, -1)), (4, 3, 5)))
    a(("transpose", Lambda(lambda s, x: x.permute(0, 2, 3, 1)), (3, 4, 5)))
    a(("ssd_head", Lambda(lambda s, x: s.c(x).view(x.shape[0], -1, 4, 5, 5).permute(0, 3, 4, 1, 2)
                          .reshape(x.shape[0], -1, 4), c=nn.Conv2d(3, 12, 3, padding=1)),
       (3, 5, 5)))
    a(("softmax", nn.Softmax(dim=1), (10,)))
    a(("softmax_channels", nn.Softmax(dim=1), (5, 3, 4)))
    a(("softmax_last", nn.Softmax(dim=-1), (3, 4, 6)))
    a(("pad", Lambda(lambda s, x: F.pad(x, (1, 2, 0, 1))), (3, 4, 5)))
    a(("pad_value", Lambda(lambda s, x: F.pad(x, (2, 0, 1, 1), value=0.5)), (3, 4, 5)))
    a(("l2norm", Lambda(lambda s, x: s.w * F.normalize(x), w=nn.Parameter(torch.rand(1, 6, 1, 1))),
       (6, 5, 5)))
    a(("reducemean", Lambda(lambda s, x: x.mean((2, 3), keepdim=True)), (4, 5, 6)))
    a(("reducemean_flat", Lambda(lambda s, x: x.mean(2)), (4, 5, 6)))
    return c


def handmade(out):
    """Models torch's exporter does not emit (Identity/Dropout on activations, auto_pad,
    Gemm's alpha/beta/transB = 0, older opsets, Squeeze/Unsqueeze of activations), built with
    onnx.helper; PyTorch functional code gives the reference. Returns their names."""
    F32 = onnx.TensorProto.FLOAT
    gen = torch.Generator().manual_seed(5)
    names = []

    def save(name, shape, nodes, ref, inits=(), opset=13, out_dims=None):
        x = oh.make_tensor_value_info("x", F32, ["N"] + list(shape))
        y = oh.make_tensor_value_info("y", F32, None)
        g = oh.make_graph(nodes, name, [x], [y], list(inits))
        m = oh.make_model(g, opset_imports=[oh.make_opsetid("", opset)])
        onnx.save(m, os.path.join(out, name + ".onnx"))
        write_ref(os.path.join(out, name + ".ref"), ref, shape, 7)
        names.append(name)

    def tensor(name, t):
        return oh.make_tensor(name, F32, list(t.shape), t.flatten().tolist())

    save("identity_dropout", (3, 4, 5),
         [oh.make_node("Identity", ["x"], ["a"]), oh.make_node("Relu", ["a"], ["b"]),
          oh.make_node("Dropout", ["b"], ["y"])], lambda x: F.relu(x))
    w = torch.randn(4, 3, 3, 3, generator=gen)
    save("conv_same_upper", (3, 8, 8),
         [oh.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2])],
         lambda x: F.conv2d(F.pad(x, (0, 1, 0, 1)), w, stride=2), [tensor("w", w)])
    save("conv_same_lower", (3, 8, 8),
         [oh.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_LOWER", strides=[2, 2])],
         lambda x: F.conv2d(F.pad(x, (1, 0, 1, 0)), w, stride=2), [tensor("w", w)])
    bm, cv = torch.randn(6, 5, generator=gen), torch.randn(5, generator=gen)
    save("gemm_alpha_beta", (6,),
         [oh.make_node("Gemm", ["x", "b", "c"], ["y"], alpha=0.5, beta=2.0, transB=0)],
         lambda x: 0.5 * x @ bm + 2 * cv, [tensor("b", bm), tensor("c", cv)])
    save("softmax_opset11", (10,), [oh.make_node("Softmax", ["x"], ["y"], axis=1)],
         lambda x: F.softmax(x, 1), opset=11)
    save("clip_opset9", (3, 4), [oh.make_node("Clip", ["x"], ["y"], min=-0.2, max=0.3)],
         lambda x: torch.clamp(x, -0.2, 0.3), opset=9)
    axes = oh.make_tensor("axes", onnx.TensorProto.INT64, [1], [2])
    save("unsqueeze_squeeze", (3, 4),
         [oh.make_node("Unsqueeze", ["x", "axes"], ["u"]), oh.make_node("Relu", ["u"], ["r"]),
          oh.make_node("Squeeze", ["r", "axes"], ["y"])], lambda x: F.relu(x), [axes])
    return names


def ssd_post(out):
    """OUT/ssd_post.ref: torchvision's SSD300 post-processing (anchors, box decoding, per-class
    top-400 above 0.01, batched NMS at 0.45, best 200) of a synthetic head output, for
    real/dnn/prepost.c. Inputs: box regressions [8732, 4], class logits [8732, 91], torchvision's
    anchors [8732, 4] (x0, y0, x1, y1 in pixels of the 300x300 image); outputs: boxes [n, 4]
    (pixels), scores [n], labels [n]."""
    from torchvision.models.detection import ssd300_vgg16
    from torchvision.models.detection.image_list import ImageList
    m = ssd300_vgg16(weights=None, weights_backbone=None).eval()
    gen = torch.Generator().manual_seed(11)
    a, k = 8732, 91
    reg = torch.randn(1, a, 4, generator=gen) * 0.5
    logits = torch.randn(1, a, k, generator=gen)
    logits[..., 0] += 4.0
    for j in range(60):   # confident anchors, neighbours overlapping so that NMS has work
        i = (j * 131) % (a - 2)
        c = 1 + (j * 7) % (k - 1)
        logits[0, i:i + 3, c] = 9.0 + torch.rand(3, generator=gen)
    images = ImageList(torch.zeros(1, 3, 300, 300), [(300, 300)])
    feats = [torch.zeros(1, 1, f, f) for f in (38, 19, 10, 5, 3, 1)]
    anchors = m.anchor_generator(images, feats)
    with torch.no_grad():
        det = m.postprocess_detections({"bbox_regression": reg, "cls_logits": logits}, anchors,
                                       [(300, 300)])[0]
    tensors_in = [reg[0], logits[0], anchors[0]]
    tensors_out = [det["boxes"], det["scores"], det["labels"].float()]
    with open(os.path.join(out, "ssd_post.ref"), "wb") as f:
        f.write(b"NXREF001")
        f.write(struct.pack("<I", 1))
        f.write(struct.pack("<III", 1, len(tensors_in), len(tensors_out)))
        for t in tensors_in + tensors_out:
            t = t.contiguous().float()
            f.write(struct.pack("<I", t.dim()))
            f.write(struct.pack("<%dq" % t.dim(), *t.shape))
            f.write(t.numpy().astype("<f4").tobytes())


def jpeg_pre(out):
    """OUT/photo.jpg (a 203x150 synthetic photo, JPEG quality 90, written with PIL) and
    OUT/jpeg_pre.ref: its decoded pixels bilinearly resized (torch interpolate,
    align_corners=False) to 3x64x80 with the ImageNet mean/std, and to 1x28x28 grey (PIL's
    decoder to grey, the same resize, scaled to [0, 1]) — the reference of prepost.c's
    nx_pre_image."""
    import numpy as np
    from PIL import Image
    h, w = 150, 203
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([xx * 255 // w, yy * 255 // h, ((xx ^ yy) & 0x7F) + 64 * (((xx - 100) ** 2 +
                   (yy - 70) ** 2) < 1600)], -1).clip(0, 255).astype(np.uint8)
    path = os.path.join(out, "photo.jpg")
    Image.fromarray(rgb).save(path, quality=90)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    img = Image.open(path)
    x = torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32)).permute(2, 0, 1)
    rgb_t = F.interpolate(x[None], size=(64, 80), mode="bilinear", align_corners=False)[0]
    rgb_t = (rgb_t / 255.0 - mean) / std
    g = torch.from_numpy(np.asarray(Image.open(path).convert("L"), dtype=np.float32))
    grey_t = F.interpolate(g[None, None], size=(28, 28), mode="bilinear", align_corners=False)[0]
    grey_t = grey_t / 255.0
    with open(os.path.join(out, "jpeg_pre.ref"), "wb") as f:
        f.write(b"NXREF001")
        f.write(struct.pack("<I", 1))
        f.write(struct.pack("<III", 1, 0, 2))
        for t in (rgb_t, grey_t):
            t = t.contiguous().float()
            f.write(struct.pack("<I", t.dim()))
            f.write(struct.pack("<%dq" % t.dim(), *t.shape))
            f.write(t.numpy().astype("<f4").tobytes())


def bad_models(out):
    x = oh.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3, 4, 4])
    y = oh.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 3, 4, 4])
    w = oh.make_tensor("w", onnx.TensorProto.FLOAT, [3, 3, 1, 1], [0.5] * 9)
    relu = oh.make_node("Relu", ["x"], ["r"], name="first")

    def save(name, nodes, inits=()):
        g = oh.make_graph(nodes, name, [x], [y], list(inits))
        m = oh.make_model(g, opset_imports=[oh.make_opsetid("", 13)])
        onnx.save(m, os.path.join(out, name + ".onnx"))

    save("bad_op", [relu, oh.make_node("Hardmax", ["r"], ["y"], name="mystery", axis=1)])
    save("bad_attr", [relu, oh.make_node("Conv", ["r", "w"], ["y"], name="conv_x", frobnicate=3)],
         [w])
    pads = oh.make_tensor("pads", onnx.TensorProto.INT64, [8], [0] * 8)
    save("bad_value", [relu, oh.make_node("Pad", ["r", "pads"], ["y"], name="pad_r",
                                          mode="reflect")], [pads])


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: dnn_cases.py OUT")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    names = []
    torch.manual_seed(0)   # the modules' parameters
    for i, (name, model, shape) in enumerate(cases()):
        model.eval()
        x = torch.zeros((1,) + tuple(shape))
        path = os.path.join(out, name + ".onnx")
        torch.onnx.export(model, x, path, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          opset_version=13, do_constant_folding=True)
        write_ref(os.path.join(out, name + ".ref"), model, shape, 1 + i)
        names.append(name)
    names += handmade(out)
    bad_models(out)
    ssd_post(out)
    jpeg_pre(out)
    with open(os.path.join(out, "cases.txt"), "w") as f:
        f.write("\n".join(names) + "\n")


if __name__ == "__main__":
    main()

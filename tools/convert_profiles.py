#!/usr/bin/python3
"""convert_profiles.py — turn the measured H100 anchor data into project profiles.

Reads the per-batch CUDA-graph latencies measured by shared/data/h100-pytorch-cudagraph.py
(a JSON file) and writes one profile YAML per model and precision, in the format that
engine/config_profile.c (nx_profile_parse) reads:

    profiles/h100-pytorch/<model>-<precision>.yml

Measured batch sizes are kept as they are (sparse: 1,2,3,4,6,8,...,256); the engine
interpolates between them. The data has no CPU pre/post-processing cost, so both are 0.

Usage (from anywhere; stdlib only):
    /usr/bin/python3 tools/convert_profiles.py [SOURCE.json [OUT_DIR]]
"""
import datetime
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SRC = os.path.join(REPO, "..", "shared", "data", "h100-pytorch-cudagraph.json")
DEFAULT_OUT = os.path.join(REPO, "profiles", "h100")

# Input shapes (C, H, W) as used by the measuring script (h100-pytorch-cudagraph.py).
INPUT_SHAPES = {
    "lenet": (1, 28, 28),
    "resnet18": (3, 224, 224),
    "resnet50": (3, 224, 224),
    "vgg16": (3, 224, 224),
    "inception_v3": (3, 299, 299),
    "googlenet": (3, 224, 224),
    "squeezenet1_0": (3, 224, 224),
    "mobilenet_v2": (3, 224, 224),
    "densenet121": (3, 224, 224),
    "ssd300_vgg16_core": (3, 300, 300),
}

GPU = "H100"


def num(x):
    """A number as YAML text: integers without a trailing .0, floats as repr gives them."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def profile_text(data, model, prec, rows, src_name, today):
    provenance = (
        f"{src_name}: {data['gpu']}, torch {data['torch']}, cuDNN {data['cudnn']}; "
        f"{data['method']}; mem_mb = torch.cuda.max_memory_allocated per batch; "
        f"no CPU pre/post-processing was measured (preprocess_us/postprocess_us = 0); "
        f"converted by tools/convert_profiles.py on {today}"
    )
    shape = INPUT_SHAPES[model]
    out = [
        f"# {model} {prec} on {data['gpu']}",
        f"# source: {src_name} (torch {data['torch']}, cuDNN {data['cudnn']})",
        f"# method: {data['method']}",
        "# CPU pre/post-processing was not measured: preprocess_us and postprocess_us are 0.",
        f"# converted by tools/convert_profiles.py on {today}; do not edit by hand.",
        f"model: {model}",
        f"gpu: {GPU}",
        f"precision: {prec}",
        f"input_shape: [{', '.join(str(d) for d in shape)}]",
        "preprocess_us: 0",
        "postprocess_us: 0",
        # a JSON string is a valid YAML double-quoted scalar
        f"provenance: {json.dumps(provenance)}",
        "batches:",
    ]
    for r in rows:
        out.append(
            f"  - {{batch: {r['batch']}, mean_us: {num(r['mean_us'])}, "
            f"std_us: {num(r['std_us'])}, mem_mb: {num(r['peak_mem_mb'])}}}"
        )
    return "\n".join(out) + "\n"


def main(argv):
    src = argv[1] if len(argv) > 1 else DEFAULT_SRC
    out_dir = argv[2] if len(argv) > 2 else DEFAULT_OUT
    with open(src) as f:
        data = json.load(f)
    src_name = os.path.relpath(os.path.abspath(src), REPO)
    today = datetime.date.today().isoformat()
    os.makedirs(out_dir, exist_ok=True)
    written = 0
    for model, precs in data["models"].items():
        if model not in INPUT_SHAPES:
            sys.exit(f"convert_profiles: no input shape known for model '{model}'")
        for prec, rows in precs.items():
            # a row with "error" marks the batch where measuring stopped (e.g. out of memory)
            good = [r for r in rows if "error" not in r]
            if not good:
                print(f"convert_profiles: {model} {prec}: no measured batch, skipped",
                      file=sys.stderr)
                continue
            path = os.path.join(out_dir, f"{model}-{prec}.yml")
            with open(path, "w") as f:
                f.write(profile_text(data, model, prec, good, src_name, today))
            written += 1
    print(f"convert_profiles: wrote {written} profiles to {out_dir}")


if __name__ == "__main__":
    main(sys.argv)

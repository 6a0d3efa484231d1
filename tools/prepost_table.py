#!/usr/bin/python3
"""prepost_table.py DIR OUT HOST — a CPU cost table (cluster.cpu_profile; the
format nexus-profile --prepost-only writes) from the preprocess_us and
postprocess_us that nexus-profile stored in the profiles of DIR (measured on
the CPU of the machine that profiled the GPU). A model profiled at several
precisions did the same CPU work each time: its rows are averaged, and the
spread is written next to it."""
import glob
import os
import re
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: prepost_table.py PROFILE_DIR OUT.yml HOST")
    src, out, host = sys.argv[1:]
    rows = {}
    for path in sorted(glob.glob(os.path.join(src, "*.yml"))):
        text = open(path).read()
        m = re.search(r"^model: (\S+)$", text, re.M)
        pre = re.search(r"^preprocess_us: ([0-9.]+)$", text, re.M)
        post = re.search(r"^postprocess_us: ([0-9.]+)$", text, re.M)
        if not (m and pre and post):
            continue
        rows.setdefault(m.group(1), []).append((float(pre.group(1)), float(post.group(1)),
                                                os.path.basename(path)))
    if not rows:
        sys.exit(f"{src}: no profiles with preprocess_us and postprocess_us")
    with open(out + ".tmp", "w") as f:
        f.write(f"# written by tools/prepost_table.py from {src}/*.yml (nexus-profile's own\n"
                "# measurement on that machine's CPU: wall time per request, one thread);\n"
                "# a model's rows of several precisions are averaged. Do not edit by hand.\n")
        f.write(f'host: "{host}"\nmodels:\n')
        for model, r in sorted(rows.items()):
            pre = sum(x[0] for x in r) / len(r)
            post = sum(x[1] for x in r) / len(r)
            spread = ", ".join(f"{x[2]}: {x[0]:.1f}/{x[1]:.1f}" for x in r)
            f.write(f"  - {{model: {model}, preprocess_us: {pre:.1f}, postprocess_us: {post:.1f}}}"
                    f"   # {spread}\n")
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main()

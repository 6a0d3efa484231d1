#!/usr/bin/python3
"""Writes experiments/demo.yml: 20 game streams with Zipf(0.9) frame rates
(per frame 6 LeNet digit crops + 1 ResNet-50 icon, 50 ms) plus four
single-model apps, on 8 simulated H100s. Run from the repository root."""
games = 20
w = [1 / (i + 1) ** 0.9 for i in range(games)]
total = 2400.0  # frames/s over all games at rate scale 1
src = open("experiments/demo.yml").read()
head = src[: src.index("apps:\n") + len("apps:\n")]
tail = src[src.index("  - {name: objects"):]
lines = []
for i in range(games):
    r = total * w[i] / sum(w)
    lines.append(f"""  - name: game{i:02d}
    slo_ms: 50
    workload: {{type: poisson, rate: {r:.1f}}}
    stages:
      - {{name: digits, model: lenet, precision: fp16, fanout: {{type: constant, value: 6}}}}
      - {{name: icon, model: resnet50, precision: fp16}}""")
open("experiments/demo.yml", "w").write(head + "\n".join(lines) + "\n" + tail)

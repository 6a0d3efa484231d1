#!/bin/bash
# devcarry.sh BIN_DIR CARRY_DIR — pack what real/dnn/cuda/device_fidelity.sh needs on a lent
# GPU machine (64 MiB per call) into CARRY_DIR: fid.tar.xz with bin/ (BIN_DIR's nexus-*
# binaries of a USE_CUDA=1 build, stripped), lib/ (every library they need that is neither a
# base system's nor CUDA's: the GPU machine has its own CUDA 13 / cuDNN 9 / cuBLAS),
# models-stripped/ (onnx_weights.py strip of the zoo models the fidelity experiments use) and
# repo/ (the scripts, experiments and profiles they read), plus device_fidelity.sh itself.
set -euo pipefail
cd "$(dirname "$0")/../../.."
bin=$1 carry=$2
s=$(mktemp -d)
trap 'rm -rf "$s"' EXIT
mkdir -p "$s/bin" "$s/lib" "$s/models-stripped" "$s/repo" "$carry"
for b in profile dnn-check sim cluster scheduler backend frontend loadgen; do
    strip -o "$s/bin/nexus-$b" "$bin/nexus-$b"
done
skip='ld-linux|libc\.so|libm\.so|libdl\.so|libpthread|librt\.so|libutil|libresolv|libstdc\+\+|libgcc_s|libz\.so|libcuda|libcudnn|libcublas|libcudart|libnvrtc|linux-vdso'
for f in "$s"/bin/*; do
    ldd "$f" | awk '/=> \//{print $3}' | grep -Ev "$skip" || true
done | sort -u | while read -r lib; do
    cp -L "$lib" "$s/lib/$(basename "$lib")"
done
/usr/bin/python3 real/dnn/cuda/onnx_weights.py strip-all models/resnet50.onnx models/inception_v3.onnx \
    models/googlenet.onnx models/lenet.onnx "$s/models-stripped" >/dev/null
for f in real/fidelity_sweep.sh real/fidelity_report.py real/dnn/cuda/onnx_weights.py \
         experiments/fidelity_h100/*.yml profiles/h100-serving/*.yml profiles/h100/interference.yml; do
    mkdir -p "$s/repo/$(dirname "$f")"
    cp "$f" "$s/repo/$f"
done
tar -C "$s" -cJf "$carry/fid.tar.xz" bin lib models-stripped repo
cp real/dnn/cuda/device_fidelity.sh "$carry/"
echo "devcarry: $carry: $(du -sh "$carry/fid.tar.xz" | cut -f1) ($(ls "$s/lib" | wc -l) libraries)"

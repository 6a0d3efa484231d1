#!/bin/bash
# device_run.sh CARRY OUT MODE [MODELS...] — what runs on the lent GPU machine (see
# real/dnn/README.md, "Running on a GPU machine"). CARRY holds bin/ (nexus-dnn-check,
# nexus-profile), lib/ (the bundle's small libraries), models/ (stripped zoo, see
# onnx_weights.py) and this folder's scripts; the GPU machine's own CUDA 13 / cuDNN 9 /
# cuBLAS libraries are used (the full bundle is over a GB and cannot travel).
#
# MODE smoke: GPU vs CPU at batch 1 and 4 for every model and both precisions, and a few
#             batch sizes of latency.
# MODE bench: latency at every batch size of ../shared/data/h100-pytorch-cudagraph.json.
# MODE final: nexus-profile for every model and precision (the batch sizes above, 5 warm-up and
#             40 timed CUDA-graph replays each, as the PyTorch anchor), then the GPU-vs-CPU
#             check of every model at batch 1 and 4; OUT/final.tar holds profiles/ and
#             check.jsonl (rewritten after each model: a run cut short still returns them).
# Everything goes to OUT (log.txt, results.jsonl, final.tar).
set -u
C=$(cd "$1" && pwd); OUT=$2; MODE=$3; shift 3
MODELS=${*:-lenet resnet18 resnet50 vgg16 inception_v3 googlenet squeezenet1_0 mobilenet_v2 densenet121 ssd300_vgg16_core}
BATCHES=1,2,3,4,6,8,12,16,24,32,48,64,96,128,192,256
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
echo "== $(date -u +%FT%TZ) device_run $MODE on $(hostname)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.sm,temperature.gpu,power.draw --format=csv
# the machine's CUDA libraries: system first, else the Python wheels
libdirs=""
for l in libcudart.so.13 libcublasLt.so.13 libcudnn.so.9; do
    p=$(ldconfig -p | awk -v l="$l" '$1 == l {print $NF; exit}')
    [ -z "$p" ] && p=$(find /usr/local /usr/lib /opt -name "$l" 2>/dev/null | head -1)
    [ -z "$p" ] && { echo "device_run: $l not found"; exit 3; }
    echo "device_run: $l -> $p"
    libdirs="$libdirs:$(dirname "$p")"
done
# only the machine's CUDA libraries: our own (libprotobuf-c, libjpeg, ...) come from
# $C/lib through the binaries' rpath $ORIGIN/../lib, as in the bundle
export LD_LIBRARY_PATH="${libdirs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
ldd "$C/bin/nexus-dnn-check" "$C/bin/nexus-profile" 2>/dev/null | grep -E 'protobuf|jpeg|cud|cublas|not found'
M=/tmp/nx-models
mkdir -p $M
need=""
for m in $MODELS; do [ -f $M/$m.onnx ] || need="$need $C/models/$m.onnx"; done
[ -n "$need" ] && python3 "$C/onnx_weights.py" fill-all $need $M
case $MODE in
smoke)
    for m in $MODELS; do
        if [ "$m" = resnet50 ]; then export NX_CUDA_DUMP=1; else unset NX_CUDA_DUMP; fi
        timeout 200 "$C/bin/nexus-dnn-check" $M/$m.onnx --batches 1,4 --bench 1,8,64,256 \
            --json "$OUT/results.jsonl" 2>>"$OUT/stderr.txt"
        echo "device_run: $m exit $?"
    done
    ;;
bench)
    for m in $MODELS; do
        timeout 300 "$C/bin/nexus-dnn-check" $M/$m.onnx --no-check --bench $BATCHES \
            --json "$OUT/results.jsonl" 2>>"$OUT/stderr.txt"
        echo "device_run: $m exit $?"
    done ;;
final)
    W=/tmp/nx-final
    [ "${RESUME:-0}" = 1 ] || rm -rf $W   # RESUME=1: keep the profiles a cut-short run made
    mkdir -p $W/profiles
    for m in $MODELS; do
        for p in fp32 fp16; do
            [ -f $W/profiles/$m-$p.yml ] && continue
            t0=$SECONDS
            timeout 240 "$C/bin/nexus-profile" $M/$m.onnx --gpu 0 --precision $p \
                --batches $BATCHES --warmup 5 --reps 40 --out $W/profiles/$m-$p.yml \
                2>>"$OUT/stderr.txt"
            echo "device_run: profile $m $p exit $? ($((SECONDS - t0)) s)"
        done
        tar -C $W -cf "$OUT/final.tar" .
    done
    for m in $MODELS; do
        timeout 120 "$C/bin/nexus-dnn-check" $M/$m.onnx --batches 1,4 --json $W/check.jsonl \
            2>>"$OUT/stderr.txt"
        echo "device_run: check $m exit $?"
        tar -C $W -cf "$OUT/final.tar" .
    done ;;
esac
echo "== $(date -u +%FT%TZ) done"

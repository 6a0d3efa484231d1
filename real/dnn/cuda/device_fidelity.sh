#!/bin/bash
# device_fidelity.sh CARRY OUT STAGE... — what runs on the lent GPU machine for
# results/fidelity-h100/ (real/README.md, "Fidelity on a GPU"). CARRY (made here by
# real/dnn/cuda/devcarry.sh) holds fid.tar.xz: bin/ (the CUDA build's nexus-* binaries,
# stripped, rpath $ORIGIN/../lib), lib/ (their non-system, non-CUDA libraries), models/
# (the stripped zoo, refilled there by onnx_weights.py) and repo/ (the scripts, experiments
# and profiles the runs read). The machine's own CUDA 13 / cuDNN 9 / cuBLAS are used.
#
# STAGE smoke         a 3 s cluster with the CUDA executor (LeNet): stop here if it fails
# STAGE profiles      nexus-profile --host-io --padded --rounds 4 (robust statistics, the
#                     default) of the models the experiments use, into repo/profiles/h100-serving/
#                     (the sweeps' profiles), and --part prefix|suffix of ResNet-50 (with
#                     NX_FID_PARTS_DEVICE=1 also with the device-side bench into profiles-h100/)
# STAGE profiles-check  the same host-I/O profiles into OUT's profiles-check/ only (the sweeps keep
#                     the carried ones: e.g. profiles from an earlier call's batch logs)
# STAGE interference  nexus-dnn-check --streams 5: Inception-v3 and ResNet-50, fp32, batches
#                     1, 8, 32 (profiles/h100/interference.yml's entries)
# STAGE mix|game|fig14  real/fidelity_sweep.sh of experiments/fidelity_h100/STAGE.yml, nexus
# STAGE diag          fig14 at 30 % of its simulated max rate (scale 0.854464) while nvidia-smi
#                     samples clocks, power, P-state and throttle reasons every 50 ms and
#                     vmstat every second (CPU steal): where do the slow batch episodes come from?
# STAGE fig14-tfs     the same for fig14 with the tf-serving policy
# STAGE fig14-tfc     fig14 with tf-serving-concurrent: the model servers on concurrent streams
# NX_FID_EXECUTOR=emulated runs the sweeps with emulated executors (a rehearsal without a GPU);
# NX_FID_POINTS and NX_FID_BISECT set the sweeps' load points and bisection steps.
# A stage that would not end before DEADLINE_S (default 540) seconds is skipped. OUT/fid.tar.gz
# holds everything (rewritten after each stage: a call cut short still returns it).
set -u
C=$(cd "$1" && pwd); OUT=$2; shift 2
DEADLINE_S=${DEADLINE_S:-540}
W=/tmp/fid
mkdir -p "$OUT" $W/out
exec > >(tee -a "$W/out/log.txt") 2>&1
echo "== $(date -u +%FT%TZ) device_fidelity $* on $(hostname), $(nproc) cores"
nvidia-smi --query-gpu=index,name,driver_version,memory.total,clocks.max.sm,clocks.sm,temperature.gpu,power.draw --format=csv
if [ ! -d $W/bin ]; then
    tar -C $W -xJf "$C/fid.tar.xz" || { echo "device_fidelity: cannot unpack"; exit 3; }
fi
# the machine's CUDA libraries (system first, else the Python wheels)
libdirs=""
for l in libcudart.so.13 libcublasLt.so.13 libcudnn.so.9; do
    p=$(ldconfig -p | awk -v l="$l" '$1 == l {print $NF; exit}')
    [ -z "$p" ] && p=$(find /usr/local /usr/lib /opt -name "$l" 2>/dev/null | head -1)
    [ -z "$p" ] && { echo "device_fidelity: $l not found"; exit 3; }
    libdirs="$libdirs:$(dirname "$p")"
done
# our libraries too: the binaries' RUNPATH does not reach their libraries' own needs
export LD_LIBRARY_PATH="$W/lib:${libdirs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
missing=$(ldd $W/bin/nexus-* | grep 'not found' | sort -u)
[ -n "$missing" ] && { echo "device_fidelity: unresolved: $missing"; exit 3; }
export NX_BUILD=$W
R=$W/repo
M=$W/models
if [ ! -f $M/.filled ]; then
    mkdir -p $M
    python3 $R/real/dnn/cuda/onnx_weights.py fill-all $W/models-stripped/*.onnx $M && touch $M/.filled
fi
pack() { tar -C $W -czf "$OUT/fid.tar.gz" out; }
fits() { # STAGE SECONDS: enough time left?
    if [ $((SECONDS + $2)) -gt "$DEADLINE_S" ]; then
        echo "device_fidelity: skipping $1 ($SECONDS s gone, needs ~$2 s, deadline $DEADLINE_S s)"
        return 1
    fi
}
for st in "$@"; do
    t0=$SECONDS
    echo "== $(date -u +%T) stage $st"
    case $st in
    smoke)
        $W/bin/nexus-cluster $R/experiments/fidelity_h100/smoke.yml --out $W/out/smoke \
            --executor cuda --models $M --payload 16 --backend-arg=--synthetic-input \
            --batch-logs --ready-timeout 120 --no-requests 2>&1 | tail -8
        ok=${PIPESTATUS[0]}
        echo "device_fidelity: smoke exit $ok ($((SECONDS - t0)) s)"
        head -5 $W/out/smoke/logs/*/backend0.batches.csv
        if [ "$ok" != 0 ]; then
            tail -20 $W/out/smoke/logs/*/*.log
            pack
            exit 4
        fi
        ;;
    profiles|profiles-check)
        fits $st 120 || continue
        P=$R/profiles/h100-serving
        [ $st = profiles-check ] && P=$W/out/profiles-check
        mkdir -p $P $W/out/profiles-serving $W/out/profiles-h100
        for m in resnet50 inception_v3 googlenet lenet; do
            b=1,2,4,8,16,32,64
            [ $m = lenet ] && b=1,2,4,8,16,32,64,128,256
            timeout 120 $W/bin/nexus-profile $M/$m.onnx --gpu 0 --precision fp32 --host-io \
                --padded --batches $b --warmup 5 --reps 40 --rounds 4 --quiet --out $P/$m-fp32.yml
            echo "device_fidelity: profile $m exit $? ($((SECONDS - t0)) s)"
        done
        for part in prefix suffix; do
            n=resnet50_prefix
            [ $part = suffix ] && n=resnet50_fc
            timeout 120 $W/bin/nexus-profile $M/resnet50.onnx --gpu 0 --precision fp32 --host-io \
                --padded --part $part --name $n --batches 1,2,4,8,16,32,64 --warmup 5 --reps 40 \
                --rounds 4 --quiet --out $P/$n-fp32.yml
            echo "device_fidelity: profile $n (host-io) exit $? ($((SECONDS - t0)) s)"
            [ "${NX_FID_PARTS_DEVICE:-0}" = 1 ] || continue   # (0: host-io profiles only)
            timeout 120 $W/bin/nexus-profile $M/resnet50.onnx --gpu 0 --precision fp32 \
                --part $part --name $n --batches 1,2,3,4,6,8,12,16,24,32,48,64,96,128,192,256 \
                --warmup 5 --reps 40 --quiet --out $W/out/profiles-h100/$n-fp32.yml
            echo "device_fidelity: profile $n (device) exit $? ($((SECONDS - t0)) s)"
        done
        [ $st = profiles ] && cp $P/*.yml $W/out/profiles-serving/
        ;;
    interference)
        fits $st 150 || continue
        for m in inception_v3 resnet50; do
            timeout 150 $W/bin/nexus-dnn-check $M/$m.onnx --precision fp32 --bench 1,8,32 \
                --streams 5 --warmup 5 --reps 40 --json $W/out/interference.jsonl
            echo "device_fidelity: interference $m exit $? ($((SECONDS - t0)) s)"
        done
        ;;
    diag)
        fits $st 60 || continue
        mkdir -p $W/out/diag
        nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,pstate,utilization.gpu,clocks_throttle_reasons.active \
            --format=csv -lms 50 >$W/out/diag/smi.csv 2>&1 &
        smi=$!
        vmstat -t 1 >$W/out/diag/vmstat.txt 2>&1 &
        vms=$!
        date -u +%FT%T.%N >$W/out/diag/start.txt
        $W/bin/nexus-cluster $R/experiments/fidelity_h100/fig14.yml --out $W/out/diag/run \
            --policy nexus --scale 0.854464 --executor cuda --models $M --payload 16 \
            --backend-arg=--synthetic-input --batch-logs --ready-timeout 120 --no-requests \
            --quiet 2>&1 | tail -3
        kill $smi $vms
        grep -h "ready\|t = 0" $W/out/diag/run/logs/*/*.log | head -5
        echo "device_fidelity: diag ($((SECONDS - t0)) s)"
        ;;
    mix|game|fig14|fig14-tfs|fig14-tfc)
        need=110
        [ $st = mix ] && need=180
        fits $st $need || continue
        e=${st%-tf?}
        pol=nexus
        [ $st = fig14-tfs ] && pol=tf-serving
        [ $st = fig14-tfc ] && pol=tf-serving-concurrent
        $R/real/fidelity_sweep.sh $R/experiments/fidelity_h100/$e.yml $W/out/$st --policy $pol \
            --executor "${NX_FID_EXECUTOR:-cuda}" --models $M \
            --points "${NX_FID_POINTS:-30,60,90,100,110,120}" --bisect "${NX_FID_BISECT:-2}"
        echo "device_fidelity: sweep $st exit $? ($((SECONDS - t0)) s)"
        ;;
    *) echo "device_fidelity: unknown stage $st" ;;
    esac
    pack
done
echo "== $(date -u +%FT%TZ) done ($SECONDS s)"
pack

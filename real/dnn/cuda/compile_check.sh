#!/bin/bash
# compile_check.sh — part of `make test`: where nvcc exists, build the whole tree with the
# CUDA executor (USE_CUDA=1) in its own build directory, so that CI without a GPU still
# compiles and links real/dnn/cuda/. Nothing GPU-side runs here (the GPU checks are
# nexus-dnn-check runs on a GPU machine, see real/dnn/README.md). Skips with a message when
# there is no nvcc or no cuDNN header.
set -e
cd "$(dirname "$0")/../../.."
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
if [ ! -x "$CUDA_HOME/bin/nvcc" ]; then
    echo "compile_check: SKIPPED: no nvcc at $CUDA_HOME/bin/nvcc (set CUDA_HOME to check the CUDA path)"
    exit 0
fi
if [ ! -f "$CUDA_HOME/include/cudnn.h" ] && [ ! -f /usr/include/cudnn.h ]; then
    echo "compile_check: SKIPPED: nvcc found but no cudnn.h"
    exit 0
fi
out=build/cuda-check
# a clean environment for the sub-make: no sanitizer, its own build directory; the binaries
# that link the DNN engine (the CUDA path) and the CUDA stub suite built against it
targets="$out/bin/nexus-dnn-check $out/bin/nexus-profile $out/tests/dnn/test_cuda_stub"
env -u MAKEFLAGS -u MFLAGS make --no-print-directory -j"$(nproc)" USE_CUDA=1 SAN= BUILD=$out \
    CUDA_HOME="$CUDA_HOME" $targets >"$out.log" 2>&1 ||
    { tail -40 "$out.log"; echo "compile_check: FAILED (log: $out.log)"; exit 1; }
for b in $out/bin/nexus-dnn-check $out/bin/nexus-profile; do
    [ -x "$b" ] || { echo "compile_check: FAILED: $b was not built"; exit 1; }
    # the real executor (cuDNN calls), not the "not supported" stub
    nm "$b" | grep -q ' U cudnnConvolutionForward' ||
        { echo "compile_check: FAILED: $b does not link the CUDA executor"; exit 1; }
    if grep -q 'not supported by this build' "$b"; then
        echo "compile_check: FAILED: $b links the stub"; exit 1
    fi
done
# the real executor without a usable GPU: init must say NX_ERR_NOTSUP and name the GPU (on a
# machine with a GPU the suite runs a one-node graph on it instead)
"$out/tests/dnn/test_cuda_stub" >"$out.stub.log" 2>&1 ||
    { cat "$out.stub.log"; echo "compile_check: FAILED: test_cuda_stub of the CUDA build"; exit 1; }
echo "compile_check: ok: USE_CUDA=1 build in $out ($("$CUDA_HOME/bin/nvcc" --version | tail -1)); $(grep -m1 'init (fp32)' "$out.stub.log" | sed 's/^ *//')"

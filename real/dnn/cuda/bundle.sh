#!/bin/bash
# bundle.sh BIN_DIR DIST — `make bundle USE_CUDA=1`: copy the nexus-* binaries of BIN_DIR
# into DIST/bin and every shared library they need that a stock Ubuntu 24.04 / Debian base
# does not have into DIST/lib (the binaries carry rpath $ORIGIN/../lib). cuDNN 9 loads its
# engine libraries with dlopen, so all of libcudnn*.so.9 go in, and cuBLASLt/NVRTC with them.
# The driver (libcuda.so) is the GPU node's, never bundled.
set -euo pipefail
bin=$1
dist=$2
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
rm -rf "$dist"
mkdir -p "$dist/bin" "$dist/lib"
cp -p "$bin"/nexus-* "$dist/bin/"

# libraries of a stock base system (glibc, libstdc++, libgcc, libz) stay out
system_lib() {
    case "$(basename "$1")" in
        ld-linux*|libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|libutil.so*|\
        libresolv.so*|libstdc++.so*|libgcc_s.so*|libz.so*|libcuda.so*|libnvidia*|\
        linux-vdso*) return 0 ;;
    esac
    return 1
}

copy_lib() {
    local src=$1 name
    name=$(basename "$src")
    [ -e "$dist/lib/$name" ] && return 0
    cp -L "$src" "$dist/lib/$name"
    chmod 0755 "$dist/lib/$name"
}

# what the binaries (and then the copied libraries) need, transitively
for f in "$dist"/bin/*; do
    ldd "$f" | awk '/=> \//{print $3}' | while read -r lib; do
        system_lib "$lib" || copy_lib "$lib"
    done
done
# cuDNN's dlopen'd engines and what they dlopen in turn (NVRTC for runtime-compiled kernels)
for lib in "$CUDA_HOME"/lib64/libcudnn*.so.9 "$CUDA_HOME"/lib64/libcublasLt.so.* \
           "$CUDA_HOME"/lib64/libcublas.so.* "$CUDA_HOME"/lib64/libnvrtc.so.* \
           "$CUDA_HOME"/lib64/libnvrtc-builtins.so.*; do
    [ -e "$lib" ] && copy_lib "$lib"
done
for f in "$dist"/lib/*; do
    ldd "$f" 2>/dev/null | awk '/=> \//{print $3}' | while read -r lib; do
        system_lib "$lib" || copy_lib "$lib"
    done
done
# the versioned names the dynamic linker looks for (SONAME) must exist
for f in "$dist"/lib/*; do
    so=$(objdump -p "$f" 2>/dev/null | awk '/SONAME/{print $2}')
    [ -n "$so" ] && [ ! -e "$dist/lib/$so" ] && ln -s "$(basename "$f")" "$dist/lib/$so"
done
missing=$(for f in "$dist"/bin/*; do LD_LIBRARY_PATH= ldd "$f" | grep 'not found' || true; done)
if [ -n "$missing" ]; then
    echo "bundle: unresolved libraries:"; echo "$missing"; exit 1
fi
echo "bundle: $dist/bin: $(ls "$dist/bin" | tr '\n' ' ')"
echo "bundle: $dist/lib: $(ls "$dist/lib" | wc -l) libraries, $(du -sh "$dist/lib" | cut -f1)"

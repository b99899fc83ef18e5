#!/usr/bin/env bash
# Installs llama-cpp-python compiled for any x86-64 CPU with AVX2 (the x86-64 baseline where
# this CPU has no AVX2), never for this host only.
#
# pip would compile it with -march=native (llama.cpp's default) and cache that wheel: on a
# CPU with fewer instruction sets it then dies with SIGILL, and on Intel Xeons the AMX code
# it enables segfaults. This builds once per version and flag set into a cache of its own
# (pip's wheel cache cannot tell builds with different flags apart), then installs from it.
#
# Usage: scripts/install-llama.sh PIP
# Override the flags with LLAMA_CMAKE_ARGS (docs/OPERATIONS.md: older CPUs, CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."
pip=${1:?usage: scripts/install-llama.sh PATH/TO/pip}
version=$(grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml | cut -d= -f3)
# x86-64-v3 (AVX2, FMA, F16C, BMI2): every Intel since Haswell and AMD since Excavator. A CPU
# without AVX2 (old, or some Atoms and Pentiums) gets the plain x86-64 baseline: slower, and
# it runs everywhere.
level=ON
if [ "$(uname -m)" = x86_64 ] && [ -r /proc/cpuinfo ] && ! grep -qw avx2 /proc/cpuinfo; then
  level=OFF
fi
portable="-DGGML_NATIVE=OFF -DGGML_SSE42=$level -DGGML_AVX=$level -DGGML_AVX2=$level \
-DGGML_FMA=$level -DGGML_F16C=$level -DGGML_BMI2=$level -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF \
-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF"
flags=${LLAMA_CMAKE_ARGS:-$portable}
key=$(printf '%s %s' "$version" "$flags" | sha256sum | cut -c1-16)
wheels=${TRADECAST_WHEEL_CACHE:-$HOME/.cache/tradecast/wheels}/llama-cpp-python-$version-$key
if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $version with: $flags (about 5 minutes, once)"
  rm -rf "$wheels.partial"
  CMAKE_ARGS="$flags" "$pip" wheel --quiet --no-cache-dir --no-deps \
    --no-binary llama-cpp-python -w "$wheels.partial" "llama-cpp-python==$version"
  mv "$wheels.partial" "$wheels"
fi
# --force-reinstall: a same-version build from elsewhere (pip's own, native) may be installed
"$pip" install --quiet --force-reinstall --no-deps "$wheels"/llama_cpp_python-*.whl

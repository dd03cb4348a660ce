#!/bin/sh
# cuda.sh: the CUDA engine's proofs (tests/cuda/test_cuda_engine.c) where
# nvcc and a GPU exist; elsewhere one line saying they were skipped.
# Prints "N passed, N failed" last (tests/run.sh reads it).
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
if ! command -v "${NVCC:-nvcc}" >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "cuda: GPU tests skipped (no nvcc/GPU)"
    echo "cuda: 0 passed, 0 failed"
    exit 0
fi
if ! make --no-print-directory BUILD="$BUILD" cuda >"$BUILD/cuda-build.log" 2>&1; then
    cat "$BUILD/cuda-build.log"
    echo "cuda: build failed"
    echo "cuda: 0 passed, 1 failed"
    exit 1
fi
"$BUILD/cuda/test_cuda_engine"

#!/bin/sh
# cuda.sh: the CUDA engine's proofs (tests/cuda/: test_cuda_kernels, each
# kernel against its CPU layer; test_cuda_engine, the whole model against
# the CPU engine) where nvcc and a GPU exist; elsewhere one line saying they
# were skipped. Prints the total "N passed, N failed" last (tests/run.sh
# reads it).
cd "$(dirname "$0")/.." || exit 1
. tests/harness.sh # cuda_skip_without_gpu, cuda_build (run from the repository root)
cuda_skip_without_gpu cuda "GPU tests"
cuda_build cuda cuda
passed=0
failed=0
# test_cuda_kernels twice: with the wgmma attention kernels (head size
# 64, the default) and with the mma.sync ones they replace there
for t in test_cuda_kernels test_cuda_kernels:mma.sync test_cuda_engine; do
    if [ "$t" = test_cuda_kernels:mma.sync ]; then
        echo "test_cuda_kernels with SPIRAL_ATTN_WGMMA=0 (mma.sync attention at head size 64)"
        log=$(SPIRAL_ATTN_WGMMA=0 "$BUILD/cuda/test_cuda_kernels" 2>&1)
    else
        log=$("$BUILD/cuda/$t" 2>&1)
    fi
    status=$?
    echo "$log"
    line=$(echo "$log" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    p=$(echo "$line" | sed -E 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\2/')
    [ -n "$line" ] || { p=0; f=1; }
    [ "$status" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    passed=$((passed + p))
    failed=$((failed + f))
done
echo "cuda: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

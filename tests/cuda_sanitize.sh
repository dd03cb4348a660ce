#!/bin/sh
# cuda_sanitize.sh: the CUDA engine under NVIDIA's compute-sanitizer, where
# nvcc, a GPU and compute-sanitizer exist (elsewhere one skip line):
#   memcheck (out-of-bounds and misaligned accesses, leaks) on the kernel
#     proofs (test_cuda_kernels) and on `spiral train --device cuda` of a
#     small spiral model in fp32, in bf16 and with the mesh topology, on
#     `spiral record`, `spiral generate` and `spiral lens` (bf16, with
#     test-time depths beyond the trained schedule and every iteration
#     ablated in turn through the update hook);
#   racecheck (shared-memory hazards) and synccheck (barrier misuse) on the
#     kernel proofs.
# A check passes when the tool reports 0 errors and the program under it
# succeeds. Takes about a minute on an H200. Prints "N passed, N failed"
# last.
cd "$(dirname "$0")/.." || exit 1
. tests/harness.sh # dir, ok, fail, cuda_skip_without_gpu, cuda_build (run from the repository root)
SANITIZER=${SANITIZER:-compute-sanitizer}
cuda_skip_without_gpu cuda_sanitize "GPU sanitizer checks"
if ! command -v "$SANITIZER" >/dev/null 2>&1; then
    echo "cuda_sanitize: GPU sanitizer checks skipped (no compute-sanitizer on PATH)"
    echo "cuda_sanitize: 0 passed, 0 failed"
    exit 0
fi
cuda_build cuda_sanitize cuda
SPIRAL="$BUILD/cuda/spiral"

# sanitize NAME TOOL command...: runs the command under the tool; passes
# when both exit 0 and the tool's summary says 0 errors (memcheck and
# synccheck: "ERROR SUMMARY: 0 errors"; racecheck: "RACECHECK SUMMARY: 0
# hazards displayed (0 errors, 0 warnings)")
sanitize() {
    name=$1; tool=$2; shift 2
    "$SANITIZER" --tool "$tool" --error-exitcode 9 "$@" >"$dir/$name.log" 2>&1
    status=$?
    summary=$(grep -E "(ERROR|RACECHECK) SUMMARY" "$dir/$name.log" | tail -n 1)
    if [ "$status" -eq 0 ] &&
        echo "$summary" | grep -qE "ERROR SUMMARY: 0 errors|RACECHECK SUMMARY: 0 hazards"; then
        echo "$tool $name: ${summary#========= }"
        ok
    else
        fail "$tool $name: exit $status, ${summary:-no summary}"
        grep -E "^========= (Invalid|Race|Barrier|Error|Leaked)" "$dir/$name.log" | head -n 10
        tail -n 5 "$dir/$name.log"
    fi
}

sanitize kernels memcheck --leak-check full "$BUILD/cuda/test_cuda_kernels"

"$SPIRAL" data make --store "$dir/s.db" --name pcfg --family pcfg --seed 1 >/dev/null 2>&1 ||
    fail "data make"
cat > "$dir/run.json" <<JSON
{"model": {"vocab_size": 4, "d_model": 64, "n_heads": 2, "d_ff": 96, "n_pre": 1, "n_loop": 2,
           "n_post": 1, "down": "selfagg", "up": "alloc",
           "schedule": [{"g": 8, "offset": 3}, {"g": 4, "shift": 4}, {"g": 2}, {"g": 1}]},
 "train": {"dataset": "pcfg", "seq_len": 128, "batch_size": 4, "steps": 4, "eval_every": 2,
           "eval_batches": 1, "checkpoint_every": 2}}
JSON
sed 's/"down": "selfagg"/"topology": "mesh", "mesh_slots": 3, "down": "selfagg"/' \
    "$dir/run.json" > "$dir/mesh.json"
for precision in fp32 bf16; do
    sanitize "train-$precision" memcheck "$SPIRAL" train --config "$dir/run.json" \
        --store "$dir/s.db" --name "r$precision" --device cuda --precision "$precision" --quiet
done
sanitize train-mesh-bf16 memcheck "$SPIRAL" train --config "$dir/mesh.json" --store "$dir/s.db" \
    --name rmesh --device cuda --precision bf16 --quiet
sanitize record memcheck "$SPIRAL" record --run rfp32 --data pcfg --store "$dir/s.db" \
    --sequences 4 --device cuda --quiet
printf '\001\000\002\000' > "$dir/prompt.u16"
sanitize generate memcheck "$SPIRAL" generate --run rfp32 --store "$dir/s.db" \
    --prompt-tokens "$dir/prompt.u16" --max-tokens 6 --device cuda --quiet
sanitize lens memcheck "$SPIRAL" lens --run rbf16 --data pcfg --store "$dir/s.db" \
    --sequences 2 --batch 2 --depths 5 --ablate-each --device cuda --precision bf16 --quiet
sanitize kernels racecheck "$BUILD/cuda/test_cuda_kernels"
sanitize kernels synccheck "$BUILD/cuda/test_cuda_kernels"

echo "cuda_sanitize: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/sh
# bench/cuda_summary.py (the last tables of `make bench-cuda`): from the
# lines a run wrote, the goals' verdicts. A goal against compiled PyTorch
# is met only when spiral clears both of its compiled modes; a missing
# figure is "not measured", never met. Needs python3, no GPU.
. "$(dirname "$0")/harness.sh"
PYTHON=${PYTHON:-python3}

# results CASE256_BF16 D768_BF16 D768_TFLOPS LOOPED_TFLOPS RECORD_WHOLE: a results file
results() {
    cat <<R
# result d256 spiral-bf16 $1 100.0
# result d256 torch-eager 500000 1.7 loss 0.5
# result d256 torch-compile 1000000 1.3 loss 0.5
# result d256 torch-graphs 2000000 nan loss 0.5
# result d768 spiral-bf16 $2 $3
# result d768 torch-eager 300000 15.4 loss 3.5
# result d768 torch-compile 600000 6.1 loss 3.5
# result d768 torch-graphs 610000 nan loss 3.5
# result d768-looped spiral-bf16 400000 $4
cuBLAS 8192^3 ceilings (same run): fp32 50.0 TFLOP/s, tf32 400.0 TFLOP/s, bf16 800.0 TFLOP/s
# record d256 f32 $5 6.0 2.0
# record d768 f32 60.0 9.0 70.0
R
}

# verdict GOAL: the verdict at the end of the goals table's line that
# starts with GOAL (met, NOT MET or not measured)
verdict() { grep -- "^$1" "$dir/out" | sed -E 's/.*  (met|NOT MET|not measured)$/\1/'; }

# all met: 6.1M is 3.05x the graphs' 2M; 800k is 1.31x the graphs' 610k;
# 400 TFLOP/s is 50% of 800; 400 over looped's 440 is 0.91; recording 51x
results 6100000 800000 400.0 440.0 51.0 >"$dir/met"
expect 0 "" "$PYTHON" bench/cuda_summary.py "$dir/met"
[ "$(verdict 'd768: spiral bf16')" = met ] && ok || fail "d768 goal: $(verdict 'd768: spiral bf16')"
[ "$(verdict 'd256: spiral bf16')" = met ] && ok || fail "d256 goal: $(verdict 'd256: spiral bf16')"
[ "$(verdict 'd768: MFU')" = met ] && ok || fail "MFU goal: $(verdict 'd768: MFU')"
[ "$(verdict 'd768: per FLOP')" = met ] && ok || fail "looped goal: $(verdict 'd768: per FLOP')"
[ "$(verdict 'recording >=')" = met ] && ok || fail "recording goal: $(verdict 'recording >=')"
grep -q "3.05x CUDA graphs" "$dir/out" && ok || fail "d256 ratio to the graphs: $(grep 'd256: spiral' "$dir/out")"

# none met: 5M is 5x default-mode compiled PyTorch but 2.5x its graphs;
# 790k is 1.32x default but 1.295x the graphs; 44%; 0.89 of looped; the
# weakest recording 49.9x (the other is 70x)
results 5000000 790000 352.0 395.5 49.9 >"$dir/short"
expect 0 "" "$PYTHON" bench/cuda_summary.py "$dir/short"
for goal in 'd768: spiral bf16' 'd256: spiral bf16' 'd768: MFU' 'd768: per FLOP' 'recording >='; do
    [ "$(verdict "$goal")" = "NOT MET" ] && ok || fail "$goal: '$(verdict "$goal")', expected NOT MET"
done

# a run that lost its looped row and its recordings: not measured, not met
grep -v -e looped -e "# record" "$dir/met" >"$dir/partial"
expect 0 "" "$PYTHON" bench/cuda_summary.py "$dir/partial"
[ "$(grep -c 'not measured' "$dir/out")" -eq 2 ] && ok || fail "missing figures: $(cat "$dir/out")"

expect 1 "usage" "$PYTHON" bench/cuda_summary.py
echo "bench_summary: $passed passed, $failed failed"

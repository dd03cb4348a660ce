#!/bin/sh
# cuda_vs_torch.sh: the CUDA engine against PyTorch on the same model and
# the same GPU, in one run (`make bench-cuda`; needs nvcc, a GPU and python3
# with torch; elsewhere it says so and exits 0).
#  1. Same model: bench/torch_spiral.py computes the loss of spiral's model
#     from the same safetensors weights (random, with non-zero selfagg and
#     alloc weights, made by tests/reference/spiral_ref.py) on the same
#     tokens as `spiral eval`; both in fp32, they must agree to 1e-4 (the
#     CPU engine's own float rounding on such random weights is about 1e-5,
#     tests/cuda/test_cuda_engine's cpu32 column; another model is off by
#     far more).
#  2. Throughput: tests/cuda/bench_cuda_engine (spiral: fp32, tf32, bf16)
#     and torch_spiral.py (bf16 autocast; eager, torch.compile, and
#     torch.compile with CUDA graphs, its "reduce-overhead" mode) train the
#     same two shapes; the last table gives tokens/s and the ratio of
#     spiral's bf16 to each PyTorch mode. PyTorch's rate is its fastest of
#     five timed windows (its compiled d = 256 step, bound by the host's
#     launches, moves between runs); the spread is printed under the table.
#  3. Recording: spiral record on the CPU engine and on the GPU, the same
#     model and store, float32 and f16: sequences/s, and how far the store
#     (the same for both engines) lets the GPU's lead go.
#  4. The goals of the GPU engine, each with this run's figure and whether
#     it is met (bench/cuda_summary.py).
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-python3}
if ! command -v "${NVCC:-nvcc}" >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "bench-cuda: skipped (no nvcc/GPU)"; exit 0
fi
if ! "$PYTHON" -c 'import torch' 2>/dev/null; then
    echo "bench-cuda: skipped (no PyTorch for $PYTHON)"; exit 0
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
SPIRAL="$BUILD/cuda/spiral"
status=0

echo "== same model: spiral eval vs torch_spiral.py, fp32"
# the spiral of examples/paper/claims/ (tied head), and one with offsets, a no-overlap shift,
# the anchor topology and an untied head
second='{"vocab_size": 97, "d_model": 64, "n_heads": 2, "d_ff": 96, "n_pre": 1, "n_loop": 2, "n_post": 1, "tie_embeddings": false, "down": "selfagg", "up": "alloc", "topology": "anchor", "schedule": [{"g": 8, "offset": 3}, {"g": 4, "offset": 1, "shift": 4}, {"g": 1}]}'
first=$("$PYTHON" -c 'import json; print(json.dumps(json.load(open("examples/paper/claims/spiral.json"))["model"]))')
for json in "$first" "$second"; do
    vocab=$("$PYTHON" -c 'import json,sys; print(json.loads(sys.argv[1])["vocab_size"])' "$json")
    "$PYTHON" tests/reference/spiral_ref.py make-weights --config-json "$json" --seed 5 \
        --out "$dir/w.safetensors" >/dev/null &&
    "$PYTHON" tests/reference/spiral_ref.py make-tokens --vocab "$vocab" --n 300 --seed 6 \
        --out "$dir/t.u16" >/dev/null || { echo "FAIL: reference files"; status=1; continue; }
    a=$("$SPIRAL" eval --weights "$dir/w.safetensors" --tokens "$dir/t.u16" | sed -n 's/^loss \([0-9.eE+-]*\) .*/\1/p')
    b=$("$PYTHON" bench/torch_spiral.py check --weights "$dir/w.safetensors" --tokens "$dir/t.u16" | sed -n 's/^loss //p')
    rel=$("$PYTHON" -c 'import sys; a,b=map(float,sys.argv[1:]); print("%.2e" % (abs(a-b)/abs(a)))' "$a" "$b" 2>/dev/null)
    echo "model $json"
    echo "  spiral eval loss $a, PyTorch loss $b, relative difference $rel"
    "$PYTHON" -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= 1e-4 else 1)' "${rel:-1}" ||
        { echo "FAIL: the PyTorch model is not spiral's model"; status=1; }
done

echo; echo "== throughput"
"$BUILD/cuda/bench_cuda_engine" | tee "$dir/results" || status=1
# d = 256's steps take 4 to 15 ms: 50 timed steps on both sides
# (bench_cuda_engine too), so that one slow step moves the mean little
for case in d256 d768; do
    steps=10; [ "$case" = d256 ] && steps=50
    for mode in eager compile graphs; do
        flag=""; [ "$mode" != eager ] && flag=--$mode
        "$PYTHON" bench/torch_spiral.py bench --case $case $flag --steps $steps 2>"$dir/torch.err" \
            | tee -a "$dir/results" || { tail -5 "$dir/torch.err"; status=1; }
    done
done

echo; echo "== recording: the same model recorded by the CPU engine and by the GPU (spiral record)"
# Two models, 2 training steps each on the GPU, recorded with every state and the
# attention statistics, in float32 and in f16, on the PCFG (vocabulary 4):
#   d256: d = 256, H = 4, F = 688, L = 256; the CPU records 64 sequences, the GPU 256
#   d768: d = 768, H = 12, F = 2048, L = 1024; the CPU records 8, the GPU 64
# (the GPU's fixed start, about 0.2 s, is spread over more sequences). Rates are
# per sequence. Both engines write the same bytes through the same store, so the
# GPU's whole rate is bounded by its store time: "bound" is the CPU's time per
# sequence over the GPU's store time per sequence, the ratio a GPU with an
# infinitely fast forward pass would reach.
"$SPIRAL" data make --store "$dir/rec.db" --name pcfg --family pcfg --seed 1 >/dev/null
record_case() { # case d H F L cpu_sequences gpu_sequences batch
    cat > "$dir/$1.json" <<JSON
{"model": {"vocab_size": 4, "d_model": $2, "n_heads": $3, "d_ff": $4, "n_pre": 1, "n_loop": 2,
           "n_post": 1, "schedule": [{"g": 8}, {"g": 4}, {"g": 2}, {"g": 1}]},
 "train": {"dataset": "pcfg", "seq_len": $5, "batch_size": 8, "steps": 2, "eval_every": 2,
           "eval_batches": 1, "checkpoint_every": 2}}
JSON
    "$SPIRAL" train --config "$dir/$1.json" --store "$dir/rec.db" --name "$1" --device cuda \
        --quiet >/dev/null || { echo "FAIL: training the recording model $1"; status=1; return; }
    for dtype in f32 f16; do
        for dev in cpu cuda; do
            n=$6; [ $dev = cuda ] && n=$7
            cp "$dir/rec.db" "$dir/rec_$dev.db"
            "$SPIRAL" record --run "$1" --data pcfg --store "$dir/rec_$dev.db" --sequences $n \
                --batch $8 --dtype $dtype --device $dev --quiet >"$dir/rec.out" 2>&1 ||
                { echo "FAIL: record $1 $dtype on $dev: $(tail -2 "$dir/rec.out")"; status=1; }
            echo "  $1 $dtype $dev: $(tail -1 "$dir/rec.out")"
            echo "# recorded $1 $dtype $dev $n $(tail -1 "$dir/rec.out")" >>"$dir/recorded"
        done
    done
    rm -rf "$dir/rec_cpu.db" "$dir/rec_cuda.db" "$dir"/rec_*.db-*
}
record_case d256 256 4 688 256 64 256 16
record_case d768 768 12 2048 1024 8 64 8
"$PYTHON" - "$dir/recorded" <<'PY' | tee -a "$dir/results"
import re, sys
runs = {}
for line in open(sys.argv[1]):
    f = line.split()
    n = int(f[5])
    total = float(re.search(r"in ([0-9.]+) s", line).group(1))
    compute = sum(float(re.search(p + r" ([0-9.]+) s", line).group(1))
                  for p in ("forward passes", "attention statistics"))
    store = float(re.search(r"store ([0-9.]+) s", line).group(1))
    runs[(f[2], f[3], f[4])] = (max(total, 1e-3) / n, max(compute, 1e-3) / n, max(store, 1e-3) / n)
print("%-6s%-5s%14s%14s%9s%17s%8s%12s" % ("case", "type", "CPU seq/s", "GPU seq/s", "whole",
      "fwd+stats ratio", "bound", "GPU store"))
for (case, dtype, dev), cpu in sorted(runs.items()):
    if dev != "cpu" or (case, dtype, "cuda") not in runs: continue
    gpu = runs[(case, dtype, "cuda")]
    print("%-6s%-5s%14.1f%14.1f%8.1fx%16.1fx%7.1fx%11.0f%%" % (case, dtype, 1 / cpu[0], 1 / gpu[0],
          cpu[0] / gpu[0], cpu[1] / max(gpu[1], 1e-9), cpu[0] / max(gpu[2], 1e-9), 100 * gpu[2] / gpu[0]))
    print("# record %s %s %.2f %.2f %.2f" % (case, dtype, cpu[0] / gpu[0], cpu[1] / max(gpu[1], 1e-9),
          cpu[0] / max(gpu[2], 1e-9)))
print("(whole: GPU sequences/s over the CPU's, store included; bound: the whole ratio if the GPU's "
      "forward took no time; GPU store: the store's time over the GPU's whole time, the store running alongside the passes)")
PY

echo; echo "== tokens/s on the same GPU (training step: forward, backward, clip, AdamW), and the goals"
"$PYTHON" bench/cuda_summary.py "$dir/results" || status=1
exit $status

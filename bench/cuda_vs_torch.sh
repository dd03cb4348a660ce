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
#     and torch_spiral.py (bf16 autocast, eager and torch.compile) train the
#     same two shapes; the last table gives tokens/s and the ratio of
#     spiral's bf16 to each PyTorch mode. PyTorch's rate is its fastest of
#     five timed windows (its compiled d = 256 step, bound by the host's
#     launches, moves between runs); the spread is printed under the table.
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
    for mode in eager compile; do
        flag=""; [ "$mode" = compile ] && flag=--compile
        "$PYTHON" bench/torch_spiral.py bench --case $case $flag --steps $steps 2>"$dir/torch.err" \
            | tee -a "$dir/results" || { tail -5 "$dir/torch.err"; status=1; }
    done
done

echo; echo "== recording: one model recorded by the CPU engine and by the GPU (spiral record)"
# d = 256, H = 4, F = 688, L = 256 on the PCFG, 2 training steps on the GPU, then 64
# sequences recorded with every state and the attention statistics, on each engine
"$SPIRAL" data make --store "$dir/rec.db" --name pcfg --family pcfg --seed 1 >/dev/null
cat > "$dir/rec.json" <<JSON
{"model": {"vocab_size": 4, "d_model": 256, "n_heads": 4, "d_ff": 688, "n_pre": 1, "n_loop": 2,
           "n_post": 1, "schedule": [{"g": 8}, {"g": 4}, {"g": 2}, {"g": 1}]},
 "train": {"dataset": "pcfg", "seq_len": 256, "batch_size": 8, "steps": 2, "eval_every": 2,
           "eval_batches": 1, "checkpoint_every": 2}}
JSON
for dev in cpu cuda; do
    "$SPIRAL" train --config "$dir/rec.json" --store "$dir/rec.db" --name rec_$dev --device cuda \
        --quiet >/dev/null || { echo "FAIL: training the recording model"; status=1; }
    "$SPIRAL" record --run rec_$dev --data pcfg --store "$dir/rec.db" --sequences 64 --batch 16 \
        --device $dev --quiet >"$dir/rec_$dev.out" 2>&1 ||
        { echo "FAIL: record on $dev: $(tail -2 "$dir/rec_$dev.out")"; status=1; }
    echo "  $dev: $(tail -1 "$dir/rec_$dev.out")"
done
"$PYTHON" - "$dir/rec_cpu.out" "$dir/rec_cuda.out" <<'PY' | tee -a "$dir/results"
import re, sys
def parse(path):
    line = open(path).read().strip().splitlines()[-1]
    total = float(re.search(r"in ([0-9.]+) s", line).group(1))
    forward = float(re.search(r"forward passes ([0-9.]+) s", line).group(1))
    attention = float(re.search(r"attention statistics ([0-9.]+) s", line).group(1))
    return total, forward + attention
cpu, gpu = parse(sys.argv[1]), parse(sys.argv[2])
print("  sequences/s, whole recording: CPU %.1f, GPU %.1f (%.1fx); forward passes and attention "
      "statistics only: CPU %.1f, GPU %.1f (%.1fx)" % (64 / cpu[0], 64 / gpu[0], cpu[0] / gpu[0],
      64 / cpu[1], 64 / max(gpu[1], 1e-9), cpu[1] / max(gpu[1], 1e-9)))
print("# record %.1f %.1f" % (cpu[0] / gpu[0], cpu[1] / max(gpu[1], 1e-9)))
PY

echo; echo "== tokens/s on the same GPU (training step: forward, backward, clip, AdamW)"
"$PYTHON" - "$dir/results" <<'PY'
import re, sys
rows, record, ceiling, windows = {}, None, float("nan"), []
for line in open(sys.argv[1]):
    if line.startswith("# windows "):
        windows.append(line.split()[2:7])
    if line.startswith("# record "):
        record = [float(x) for x in line.split()[2:4]]
    if line.startswith("# result "):
        f = line.split()
        rows[(f[2], f[3])] = (float(f[4]), float(f[5]) if len(f) > 5 else float("nan"))
    m = re.search(r"bf16 ([0-9.]+) TFLOP/s", line)
    if line.startswith("cuBLAS") and m:
        ceiling = float(m.group(1))
modes = ["spiral-fp32", "spiral-tf32", "spiral-bf16", "torch-eager", "torch-compile"]
print("%-6s" % "case" + "".join("%15s" % m for m in modes) + "%12s%14s%10s" % ("bf16/eager", "bf16/compile", "bf16 MFU"))
for case in ("d256", "d768"):
    v = [rows.get((case, m), (float("nan"), float("nan"))) for m in modes]
    print("%-6s" % case + "".join("%15.0f" % x[0] for x in v) +
          "%12.2f%14.2f%9.0f%%" % (v[2][0] / v[3][0], v[2][0] / v[4][0], 100 * v[2][1] / ceiling))
print("(tokens/s; MFU: spiral bf16's model TFLOP/s over the cuBLAS bf16 ceiling %.0f TFLOP/s of this run)" % ceiling)
for case, mode, slow, median, fast in windows:
    bf16 = rows.get((case, "spiral-bf16"), (float("nan"),))[0]
    print("%s %s: five windows %s / %s / %s tokens/s (slowest / median / fastest); spiral bf16 at "
          "%.2fx its median, %.2fx its fastest" % (case, mode, slow, median, fast,
                                                   bf16 / float(median), bf16 / float(fast)))
spiral, looped = rows.get(("d768", "spiral-bf16")), rows.get(("d768-looped", "spiral-bf16"))
if spiral and looped:
    print("efficiency per FLOP at d768, bf16: spiral %.1f TFLOP/s, looped (g=1,1,1,1) %.1f TFLOP/s: "
          "spiral at %.2f of looped's" % (spiral[1], looped[1], spiral[1] / looped[1]))
if record:
    print("recording, GPU over CPU engine: %.1fx whole (store included), %.1fx forward passes and attention statistics" % tuple(record))
PY
exit $status

#!/bin/sh
# cuda_train.sh: `spiral train --device cuda` against the CPU engine, where
# nvcc and a GPU exist (elsewhere one skip line). Builds build/cuda/spiral
# (make cuda) and, on a synthetic PCFG language with a small spiral:
#   1. trains the same run on the CPU and on the GPU (fp32): the validation
#      loss at every evaluation agrees within 1% (the max relative
#      difference is printed, with the table of both curves);
#   2. a GPU run killed with SIGKILL and resumed on the GPU reproduces the
#      uninterrupted GPU run's loss at every step exactly;
#   3. a GPU run killed and resumed on the CPU (same checkpoint files)
#      finishes, its losses after the checkpoint within 1% of the GPU run;
#   4. then, on the trained weights, `record`, `eval` (with and without
#      interventions), `generate` and `lens` (every mode, ablations and a
#      patch) with --device cuda against the same commands on the CPU.
# Reads the store with python3's sqlite3; STEPS (default 300) and LR (default
# 0.002) set the run. fp32 rounding differences between the engines grow
# along the trajectory: at lr 0.006 the curves part (by about 1.5% later in the run). Prints "N passed, N failed" last.
cd "$(dirname "$0")/.." || exit 1
. tests/harness.sh # dir, ok, fail, cuda_skip_without_gpu, cuda_build (run from the repository root)
cuda_skip_without_gpu cuda_train "GPU training tests"
cuda_build cuda_train "${BUILD:-build}/cuda/spiral"
SPIRAL="$BUILD/cuda/spiral"
STEPS=${STEPS:-300}
LR=${LR:-0.002}

# query SQL: one row per line, fields separated by spaces
query() {
    python3 -c 'import sqlite3, sys
for row in sqlite3.connect(sys.argv[1]).execute(sys.argv[2]): print(*row)' "$dir/s.db" "$1"
}

# train NAME DEVICE: a new run, in the foreground
train() {
    "$SPIRAL" train --config "$dir/run.json" --store "$dir/s.db" --name "$1" --device "$2" \
        --precision "${PRECISION:-fp32}" --quiet >"$dir/$1.out" 2>&1 || fail "run $1 on $2: $(tail -3 "$dir/$1.out")"
}

# kill_after NAME DEVICE: a new run killed (SIGKILL) after two checkpoints
kill_after() {
    "$SPIRAL" train --config "$dir/run.json" --store "$dir/s.db" --name "$1" --device "$2" \
        --precision fp32 --quiet >/dev/null 2>&1 &
    pid=$!
    i=0
    while [ $i -lt 3000 ]; do
        n=$(ls "$dir/checkpoints/$1" 2>/dev/null | grep -c '^step_.*\.safetensors$')
        [ "${n:-0}" -ge 2 ] && break
        sleep 0.01; i=$((i + 1))
    done
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    last=$(query "SELECT max(m.step) FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.name='$1'")
    if [ "${last:-0}" -lt "$STEPS" ]; then ok; else fail "run $1 finished before the kill"; fi
    echo "$1: killed at step $last of $STEPS"
}

# resume NAME DEVICE
resume() {
    "$SPIRAL" train --resume "$1" --store "$dir/s.db" --device "$2" --precision fp32 --quiet \
        >"$dir/$1.resume" 2>&1 || fail "resume $1 on $2: $(tail -3 "$dir/$1.resume")"
    status=$(query "SELECT status FROM runs WHERE name='$1'")
    [ "$status" = done ] && ok || fail "run $1 after resume on $2: status $status"
}

# max_rel A B COLUMN: max |a - b| / |a| of COLUMN over the steps both runs have
max_rel() {
    query "SELECT max(abs(a.$3 - b.$3) / abs(a.$3)) FROM metrics a JOIN metrics b ON a.step = b.step
      WHERE a.run_id = (SELECT id FROM runs WHERE name='$1')
        AND b.run_id = (SELECT id FROM runs WHERE name='$2') AND a.$3 IS NOT NULL"
}

# below X LIMIT: 0 if X < LIMIT
below() { python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)' "$1" "$2"; }

"$SPIRAL" data make --store "$dir/s.db" --name pcfg --family pcfg --seed 1 >/dev/null || fail "data make"
cat > "$dir/run.json" <<JSON
{"model": {"vocab_size": 4, "d_model": 64, "n_heads": 4, "d_ff": 172, "n_pre": 1, "n_loop": 2,
           "n_post": 1, "schedule": [{"g": 8}, {"g": 4}, {"g": 2}, {"g": 1}]},
 "train": {"dataset": "pcfg", "seq_len": 128, "batch_size": 16, "steps": $STEPS, "lr": $LR,
           "warmup": 15, "eval_every": 25, "eval_batches": 8, "checkpoint_every": 25, "seed": 1}}
JSON

"$SPIRAL" train --config "$dir/run.json" --store "$dir/s.db" --name bad --device gpu --quiet \
    >/dev/null 2>"$dir/bad.err" && fail "--device gpu accepted" || ok

"$SPIRAL" train --config "$dir/run.json" --store "$dir/s.db" --name bad --precision bf16 \
    --quiet >/dev/null 2>"$dir/bad.err" && fail "--precision bf16 accepted on the CPU" || ok
grep -q "fp32 only" "$dir/bad.err" && ok || fail "CPU bf16 message: $(cat "$dir/bad.err")"

start=$(date +%s.%N)
train cpu cpu
mid=$(date +%s.%N)
train gpu cuda
end=$(date +%s.%N)
echo "seconds: cpu $(python3 -c "print(round($mid - $start, 1))"), gpu $(python3 -c "print(round($end - $mid, 1))")"

echo "step  cpu_val   gpu_val   rel_diff"
query "SELECT a.step, printf('%.6f', a.val_loss), printf('%.6f', b.val_loss),
         printf('%.2e', abs(a.val_loss - b.val_loss) / a.val_loss)
       FROM metrics a JOIN metrics b ON a.step = b.step
       WHERE a.run_id = (SELECT id FROM runs WHERE name='cpu')
         AND b.run_id = (SELECT id FROM runs WHERE name='gpu') AND a.val_loss IS NOT NULL
       ORDER BY a.step"
val=$(max_rel cpu gpu val_loss)
train_rel=$(max_rel cpu gpu loss)
echo "cpu vs gpu: max relative difference val_loss $val, train loss $train_rel"
below "$val" 0.01 && ok || fail "GPU validation loss differs from the CPU's by $val (limit 1%)"
evals=$(query "SELECT count(*) FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.name='gpu' AND m.val_loss IS NOT NULL")
[ "$evals" -ge $((STEPS / 25)) ] && ok || fail "GPU run has $evals evaluations"

kill_after gpu_killed cuda
resume gpu_killed cuda
same=$(query "SELECT count(*) FROM metrics a JOIN metrics b ON a.step = b.step
  WHERE a.run_id = (SELECT id FROM runs WHERE name='gpu') AND b.run_id = (SELECT id FROM runs WHERE name='gpu_killed')
  AND a.loss = b.loss AND coalesce(a.val_loss, -1) = coalesce(b.val_loss, -1)")
echo "gpu killed+resumed on gpu: $same of $STEPS steps identical to the uninterrupted gpu run (max rel $(max_rel gpu gpu_killed loss))"
[ "$same" = "$STEPS" ] && ok || fail "GPU resume reproduces $same of $STEPS steps"

kill_after gpu_to_cpu cuda
resume gpu_to_cpu cpu
cross=$(max_rel gpu gpu_to_cpu val_loss)
echo "gpu killed, resumed on cpu: max relative difference of val_loss to the gpu run $cross"
below "$cross" 0.01 && ok || fail "GPU->CPU resume differs by $cross (limit 1%)"

# the default precision on cuda (bf16 products, fp32 accumulation and
# weights) follows the fp32 curve: final validation loss within 3%
"$SPIRAL" train --config "$dir/run.json" --store "$dir/s.db" --name gpu_bf16 --device cuda \
    --quiet >"$dir/gpu_bf16.out" 2>&1 || fail "bf16 run: $(tail -3 "$dir/gpu_bf16.out")"
final_rel=$(query "SELECT abs(a.val_loss - b.val_loss) / a.val_loss FROM metrics a JOIN metrics b
  ON a.step = b.step WHERE a.run_id = (SELECT id FROM runs WHERE name='cpu')
  AND b.run_id = (SELECT id FROM runs WHERE name='gpu_bf16') AND a.val_loss IS NOT NULL
  ORDER BY a.step DESC LIMIT 1")
echo "gpu bf16 (default) vs cpu fp32: final validation loss relative difference $final_rel"
below "${final_rel:-1}" 0.03 && ok || fail "bf16 final val loss differs by $final_rel (limit 3%)"

# recording on the GPU (fp32, attention statistics included) against the
# CPU's recording of the same weights (gpu_killed resumed to the same
# checkpoint as gpu, bit for bit): every state and statistic within 1e-5
"$SPIRAL" record --run gpu --data pcfg --store "$dir/s.db" --sequences 16 --quiet \
    >"$dir/rec_cpu.out" 2>&1 || fail "record on the CPU: $(tail -3 "$dir/rec_cpu.out")"
"$SPIRAL" record --run gpu_killed --data pcfg --store "$dir/s.db" --sequences 16 --quiet \
    --device cuda >"$dir/rec_gpu.out" 2>&1 || fail "record on the GPU: $(tail -3 "$dir/rec_gpu.out")"
rec=$(python3 - "$dir/s.db" <<'PY'
import sqlite3, sys
import numpy as np
db = sqlite3.connect(sys.argv[1])
def rid(run):
    return db.execute("SELECT r.id FROM recordings r JOIN runs u ON u.id = r.run_id WHERE u.name = ?", (run,)).fetchone()[0]
a, b = rid("gpu"), rid("gpu_killed")
worst, n = 0.0, 0
for table, key in (("states", "seq, iteration, site, scale"), ("attention_stats", "seq, iteration, block, layer")):
    col = "data" if table == "states" else "stats"
    rows = db.execute(f"SELECT {key}, {col} FROM {table} WHERE recording_id = ? ORDER BY {key}", (a,)).fetchall()
    other = {r[:-1]: r[-1] for r in db.execute(f"SELECT {key}, {col} FROM {table} WHERE recording_id = ?", (b,))}
    for r in rows:
        x = np.frombuffer(r[-1], dtype="<f4").astype(np.float64)
        y = np.frombuffer(other[r[:-1]], dtype="<f4").astype(np.float64)
        worst = max(worst, np.linalg.norm(x - y) / max(np.linalg.norm(x), 1e-30))
        n += 1
print(n, "%.2e" % worst)
PY
)
echo "recorded on gpu vs cpu: $rec (blobs compared, largest relative error)"
set -- $rec
[ "${1:-0}" -gt 0 ] && below "${2:-1}" 1e-5 && ok || fail "GPU recording differs from the CPU's: $rec"

# eval --device cuda (fp32): loss, logits and gradient against the CPU's
python3 -c 'import random, struct; random.seed(3); open("'"$dir"'/t.u16", "wb").write(struct.pack("<200H", *[random.randrange(4) for _ in range(200)]))'
for dev in cpu cuda; do
    "$SPIRAL" eval --run gpu --store "$dir/s.db" --tokens "$dir/t.u16" --device $dev \
        --logits "$dir/l_$dev.npy" --grads "$dir/g_$dev.safetensors" >"$dir/eval_$dev.out" 2>&1 ||
        fail "eval on $dev: $(tail -3 "$dir/eval_$dev.out")"
done
ev=$(python3 - "$dir" <<'PY'
import json, struct, sys
import numpy as np
d = sys.argv[1]
def tensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    head = json.loads(raw[8:8 + n]); head.pop("__metadata__", None)
    return {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], dtype="<f4").astype(np.float64) for k, v in head.items()}
la, lb = np.load(d + "/l_cpu.npy").astype(np.float64), np.load(d + "/l_cuda.npy").astype(np.float64)
ga, gb = tensors(d + "/g_cpu.safetensors"), tensors(d + "/g_cuda.safetensors")
g = max(np.linalg.norm(ga[k] - gb[k]) / max(np.linalg.norm(ga[k]), 1e-30) for k in ga)
print("%.2e %.2e" % (np.linalg.norm(la - lb) / np.linalg.norm(la), g))
PY
)
echo "eval on gpu vs cpu: logits, largest gradient tensor relative error: $ev"
set -- $ev
below "${1:-1}" 1e-5 && below "${2:-1}" 1e-4 && ok || fail "GPU eval differs from the CPU's: $ev"

# eval --incremental is the CPU's decoder: on the GPU a usage error (exit
# 2) naming it, and no loss printed
"$SPIRAL" eval --run gpu --store "$dir/s.db" --tokens "$dir/t.u16" --device cuda --incremental \
    >"$dir/inc.out" 2>&1
code=$?
if [ $code -eq 2 ] && grep -q "incremental runs on the CPU engine only" "$dir/inc.out" &&
    ! grep -q "^loss" "$dir/inc.out"; then ok
else fail "eval --device cuda --incremental (exit $code): $(tail -2 "$dir/inc.out")"; fi

# generate --device cuda (fp32, the whole pass per token) against the CPU's
# incremental decoder: greedy and seeded sampling give the same tokens, the
# log-probabilities agree within 1e-4
printf '\001\000\002\000\003\000\000\000\001\000' > "$dir/prompt.u16"
for mode in greedy sampled; do
    flags="--temperature 0"; [ $mode = sampled ] && flags="--temperature 0.9 --seed 5"
    for dev in cpu cuda; do
        "$SPIRAL" generate --run gpu --store "$dir/s.db" --prompt-tokens "$dir/prompt.u16" \
            --max-tokens 60 $flags --device $dev --out "$dir/gen_${mode}_$dev.tsv" --quiet \
            >/dev/null 2>"$dir/gen_$dev.err" || fail "generate $mode on $dev: $(tail -2 "$dir/gen_$dev.err")"
    done
    gen=$(python3 - "$dir/gen_${mode}_cpu.tsv" "$dir/gen_${mode}_cuda.tsv" <<'PY'
import sys
rows = [[l.split("\t") for l in open(p).read().split("\n")[1:] if l] for p in sys.argv[1:3]]
same = [a[1] for a in rows[0]] == [b[1] for b in rows[1]] and len(rows[0]) == 60
gap = max(abs(float(a[2]) - float(b[2])) for a, b in zip(*rows))
print("%s %.2e" % ("same" if same else "differ", gap))
PY
)
    echo "generate $mode on gpu vs cpu: tokens, largest log-probability gap: $gen"
    set -- $gen
    [ "$1" = same ] && below "${2:-1}" 1e-4 && ok || fail "GPU generation ($mode) differs from the CPU's: $gen"
done

# eval --device cuda with interventions (fp32): the logits under zero
# ablation of an iteration, mean ablation of a level and a patch from
# another sequence against the CPU's (the hook runs on the host, on each
# chosen update copied from the GPU and back)
python3 -c 'import random, struct; random.seed(4); open("'"$dir"'/t2.u16", "wb").write(struct.pack("<200H", *[random.randrange(4) for _ in range(200)]))'
worst=0
for iv in "--ablate 2" "--ablate-level 4 --ablate-mode mean" "--patch 1 --source $dir/t2.u16 --positions 20:90"; do
    for dev in cpu cuda; do
        "$SPIRAL" eval --run gpu --store "$dir/s.db" --tokens "$dir/t.u16" --device $dev $iv \
            --logits "$dir/li_$dev.npy" >"$dir/evi_$dev.out" 2>&1 ||
            fail "eval $iv on $dev: $(tail -3 "$dir/evi_$dev.out")"
    done
    e=$(python3 -c 'import sys, numpy as np
a, b, p = (np.load(sys.argv[i]).astype(np.float64) for i in (1, 2, 3))
print("%.2e %.2e" % (np.linalg.norm(a - b) / np.linalg.norm(a), np.linalg.norm(a - p) / np.linalg.norm(p)))' \
        "$dir/li_cpu.npy" "$dir/li_cuda.npy" "$dir/l_cpu.npy")
    echo "eval $iv on gpu vs cpu: logits relative error, and how far the intervention moved them: $e"
    set -- $e
    below "${1:-1}" 1e-5 && ! below "${2:-0}" 1e-4 && ok || fail "GPU eval $iv differs from the CPU's: $e"
done

# lens --device cuda (fp32): every exit, slot, depth and ablation row, and
# the rows under a patch and a mean ablation, against the CPU's lens of
# the same weights (losses within 1e-5 relative; top-1 accuracies may
# differ only by a near-tie: within 0.5%)
for dev in cpu cuda; do
    for iv in "--depths 5 --ablate-each" "--patch 1 --source $dir/t.u16 --positions 30:70" \
              "--ablate-level 2 --ablate-mode mean"; do
        "$SPIRAL" lens --run gpu --data pcfg --store "$dir/s.db" --sequences 8 $iv \
            --device $dev --quiet >"$dir/lens_$dev.out" 2>&1 ||
            fail "lens $iv on $dev: $(tail -3 "$dir/lens_$dev.out")"
    done
    query "SELECT replace(intervention, ' ', '_'), mode, iteration, slot, loss, accuracy, delta
           FROM lens_results l JOIN runs r ON r.id = l.run_id WHERE r.name = 'gpu'
           ORDER BY intervention, mode, iteration, slot" > "$dir/lens_$dev.rows"
done
lens=$(python3 - "$dir/lens_cpu.rows" "$dir/lens_cuda.rows" <<'PY'
import math, sys
def rows(path):
    out = {}
    for line in open(path):
        f = line.split()
        out[tuple(f[:4])] = [float("nan") if x == "None" else float(x) for x in f[4:]]
    return out
a, b = rows(sys.argv[1]), rows(sys.argv[2])
same = a.keys() == b.keys()
loss = max(abs(a[k][0] - b[k][0]) / abs(a[k][0]) for k in a) if same else 1
acc = max((abs(a[k][1] - b[k][1]) for k in a if not math.isnan(a[k][1])), default=0) if same else 1
kinds = len({k[0] for k in a}) if same else 0
print("%d %d %.2e %.2e" % (len(a) if same else 0, kinds, loss, acc))
PY
)
echo "lens on gpu vs cpu: rows, interventions, largest loss relative error, largest accuracy gap: $lens"
set -- $lens
[ "${1:-0}" -ge 60 ] && [ "${2:-0}" -eq 3 ] && below "${3:-1}" 1e-5 && below "${4:-1}" 5e-3 && ok ||
    fail "GPU lens differs from the CPU's: $lens"

# CUDA_TRAIN_KEEP=FILE: keep a copy of the store (every run's metrics)
[ -n "$CUDA_TRAIN_KEEP" ] && cp "$dir/s.db" "$CUDA_TRAIN_KEEP"
echo "cuda_train: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

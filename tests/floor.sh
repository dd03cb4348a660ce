#!/bin/sh
# Floors on the evaluated targets: on a small aligned RHM (documents of 32
# symbols + EOS, windows of 32 at document starts) `spiral eval --run`
# scores the run's last checkpoint on exactly the windows training
# validated on (its loss equals the stored validation loss), prints the
# floor over those targets (which differs from the floor over every val
# token, printed by `spiral data make`), `spiral data floor --run` and
# `spiral runs --floor` agree; --per-position gives slots of each level whose target counts add
# up and whose floors average to the whole floor; bad input fails with a
# message and a non-zero status.
. "$(dirname "$0")/harness.sh"

"$SPIRAL" data make --store "$dir/s.db" --name rhm --family rhm --seed 1 \
    --params '{"n_levels": 5, "v": 8, "m": 2, "n_train": 300, "n_val": 40, "n_test": 10}' \
    --seq-len 32 --window document --windows 16 >"$dir/make" 2>&1 || fail "data make: $(cat "$dir/make")"
every=$(awk '$1 == "val" {for (i = 1; i <= NF; i++) if ($i == "entropy") print $(i + 1)}' "$dir/make")
targets=$(awk '/entropy floor [0-9]/ {print $3}' "$dir/make")
[ -n "$every" ] && [ -n "$targets" ] && ok || fail "make printed no floors: $(cat "$dir/make")"
awk -v a="$every" -v b="$targets" 'BEGIN {exit !(a - b > 0.01 || b - a > 0.01)}' && ok ||
    fail "floor over the windows' targets $targets equals the floor over every val token $every"

cat >"$dir/run.json" <<JSON
{"model": {"vocab_size": 9, "d_model": 16, "n_heads": 2, "d_ff": 32, "n_pre": 1, "n_loop": 1,
           "n_post": 1, "schedule": [4, 2, 1]},
 "train": {"dataset": "rhm", "seq_len": 32, "window": "document", "batch_size": 4, "steps": 20,
           "eval_every": 10, "eval_batches": 4, "checkpoint_every": 10}}
JSON
"$SPIRAL" train --config "$dir/run.json" --store "$dir/s.db" --name r --quiet >/dev/null 2>&1 || fail "train"
"$SPIRAL" eval --store "$dir/s.db" --run r --per-position >"$dir/eval" 2>&1 || fail "eval --run: $(cat "$dir/eval")"
loss=$(awk '/^run r,/ {print $9}' "$dir/eval")
stored=$(awk '/stored val loss/ {print $4}' "$dir/eval")
floor=$(awk '/entropy floor on these targets/ {print $6}' "$dir/eval")
gap=$(awk '/gap to the floor/ {print $11}' "$dir/eval")
[ -n "$loss" ] && [ "$loss" = "$stored" ] && ok || fail "eval loss '$loss' is not the stored val loss '$stored'"
grep -q "over 512 targets (16 windows of 32, window \"document\")" "$dir/eval" && ok ||
    fail "eval does not score the 4 x 4 validation windows: $(head -1 "$dir/eval")"
awk -v l="$loss" -v f="$floor" -v g="$gap" 'BEGIN {d = l - f - g; exit !(d < 2e-6 && d > -2e-6 && f > 0)}' && ok ||
    fail "gap $gap is not loss $loss - floor $floor"
"$SPIRAL" data floor --store "$dir/s.db" --run r >"$dir/floor" 2>&1 || fail "data floor --run: $(cat "$dir/floor")"
same=$(awk '/entropy floor [0-9]/ {print $3}' "$dir/floor")
awk -v a="$same" -v b="$floor" 'BEGIN {d = a - b; exit !(d < 6e-5 && d > -6e-5)}' && ok ||
    fail "data floor --run $same differs from eval's $floor"
"$SPIRAL" data floor --store "$dir/s.db" --name rhm --seq-len 32 --window document --windows 16 >"$dir/floor2" 2>&1
same2=$(awk '/entropy floor [0-9]/ {print $3}' "$dir/floor2")
[ "$same2" = "$same" ] && ok || fail "data floor with the run's targets by hand: $same2, by --run: $same"

# spiral runs --floor: the same floor, and gap = val loss - floor
"$SPIRAL" runs --store "$dir/s.db" --floor >"$dir/runs" 2>&1 || fail "runs --floor: $(cat "$dir/runs")"
awk -v f="$floor" '$1 == "r" {d = $7 - f; g = $6 - $7 - $8;
    exit !(d < 6e-5 && d > -6e-5 && g < 2e-4 && g > -2e-4)}' "$dir/runs" && ok ||
    fail "runs --floor: $(cat "$dir/runs"), eval's floor $floor"

# per position: a table for g = 4 (4 slots) and g = 2 (2 slots); each
# table's targets sum to 512 and its target-weighted floor is the floor
for g in 4 2; do
    awk -v g="$g" -v f="$floor" '
        /^by slot/ {on = ($0 ~ ("mod " g " of")); next}
        /^by / {on = 0}
        on && $1 ~ /^[0-9]+$/ {n++; t += $2; s += $2 * $4}
        END {d = s / t - f; exit !(n == g && t == 512 && d < 2e-4 && d > -2e-4)}' "$dir/eval" && ok ||
        fail "slot table of g = $g: $(cat "$dir/eval")"
done
rows=$(awk '/^by target position/ {on = 1; next} on && $1 ~ /^[0-9]+$/ && $2 == 16 {n++} END {print n}' "$dir/eval")
[ "$rows" = 32 ] && ok || fail "position table has $rows rows of 16 targets, expected 32"

# bad input
"$SPIRAL" eval --store "$dir/s.db" --run nosuch >/dev/null 2>"$dir/err"
[ $? -ne 0 ] && grep -q "nosuch" "$dir/err" && ok || fail "unknown run: $(cat "$dir/err")"
"$SPIRAL" eval --run r >/dev/null 2>"$dir/err"
[ $? -eq 2 ] && grep -q -- "--run and --store go together" "$dir/err" && ok || fail "--run without --store: $(cat "$dir/err")"
"$SPIRAL" eval --weights x --per-position --text y >/dev/null 2>"$dir/err"
[ $? -eq 2 ] && grep -q -- "--per-position goes with --run" "$dir/err" && ok || fail "--per-position alone: $(cat "$dir/err")"
"$SPIRAL" eval --store "$dir/s.db" --run r --logits x.npy >/dev/null 2>"$dir/err"
[ $? -eq 2 ] && grep -q -- "--logits, --grads, --schedule and interventions go with a sequence" "$dir/err" && ok ||
    fail "--run --logits without a sequence: $(cat "$dir/err")"
"$SPIRAL" data floor --store "$dir/s.db" --name rhm >/dev/null 2>"$dir/err"
[ $? -eq 2 ] && grep -q -- "needs --seq-len" "$dir/err" && ok || fail "floor without --seq-len: $(cat "$dir/err")"
"$SPIRAL" data floor --store "$dir/s.db" --name rhm --seq-len 32 --window middle >/dev/null 2>"$dir/err"
[ $? -eq 2 ] && grep -q -- "--window: expected document or random, got 'middle'" "$dir/err" && ok ||
    fail "bad --window: $(cat "$dir/err")"
"$SPIRAL" data floor --store "$dir/s.db" --name rhm --seq-len 5000 >/dev/null 2>"$dir/err"
[ $? -ne 0 ] && grep -q "the val split has" "$dir/err" && ok || fail "window longer than the split: $(cat "$dir/err")"

echo "floor.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

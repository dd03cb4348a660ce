#!/bin/sh
# analyze, compare and match end to end with the spiral binary:
#  - `spiral analyze` on a recorded spiral and looped run: exit 0, a report
#    with the selected heads, the per-iteration table, the side-by-side and
#    cross-run CKA; rows of every kind in analysis_results, CKA diagonal 1,
#    update sizes positive; running it again replaces the rows;
#  - `spiral compare` with two seeds of one config: a group of 2 with a
#    t-interval, and a CSV with one line per run and per group;
#  - `spiral match` writes three run files that `spiral info` accepts, whose
#    parameter and FLOP counts equal the printed ones, and that train;
#  - bad input: clear messages and exit codes 1 (failure) or 2 (usage).
. "$(dirname "$0")/harness.sh"
q() { sqlite3 "$dir/s.db" "$1"; }

"$SPIRAL" data make --store "$dir/s.db" --name dyck --family dyck --seed 2 >/dev/null || fail "data make"
# write_run NAME SCHEDULE SEED
write_run() {
    cat > "$dir/$1.json" <<JSON
{"model": {"vocab_size": 7, "d_model": 32, "n_heads": 2, "d_ff": 48, "schedule": $2},
 "train": {"dataset": "dyck", "seq_len": 48, "batch_size": 4, "steps": 20, "eval_every": 5,
           "eval_batches": 2, "checkpoint_every": 20, "seed": $3}}
JSON
}
write_run spiral '[{"g": 4, "offset": 1}, 2, 1]' 0
write_run spiral-s2 '[{"g": 4, "offset": 1}, 2, 1]' 2
write_run looped '[1, 1, 1]' 0
for run in spiral spiral-s2 looped; do
    "$SPIRAL" train --config "$dir/$run.json" --store "$dir/s.db" --quiet >/dev/null 2>&1 || fail "train $run"
done
for run in spiral looped; do
    "$SPIRAL" record --run $run --data dyck --store "$dir/s.db" --sequences 20 --quiet >/dev/null 2>&1 || fail "record $run"
done

# analyze
"$SPIRAL" analyze --help | grep -q "usage: spiral analyze" && ok || fail "analyze --help"
"$SPIRAL" analyze --run spiral,looped --data dyck --store "$dir/s.db" >"$dir/report" 2>"$dir/progress" && ok ||
    fail "analyze: $(cat "$dir/progress")"
for pattern in "2 of 4 core heads selected" "selected heads per iteration" "mass beyond 16" \
               "distance (chunks of g)" "uniform tok (g)" "distance / uniform" \
               "ranked by the range of the mean distance relative to the uniform-attention reference" \
               "the change of unit between" "attention distance / uniform-attention distance" \
               "update ||h(t+1)-h(t)||" "linear CKA between h(t) and h(u)" "side by side" \
               "linear CKA between spiral's h(t) (rows) and looped's h(u)"; do
    grep -qF "$pattern" "$dir/report" && ok || fail "report lacks '$pattern'"
done
grep -q "analyze spiral 20/20 sequences" "$dir/progress" && ok || fail "no progress on stderr: $(cat "$dir/progress")"
# the result line counts the rows of the spiral recording (all kinds but cka_cross)
n=$(q "SELECT count(*) FROM analysis_results a JOIN recordings r ON r.id = a.recording_id JOIN runs u ON u.id = r.run_id
       WHERE u.name = 'spiral' AND a.kind != 'cka_cross'")
grep -q "analyze spiral: wrote $n rows" "$dir/progress" && ok || fail "no 'wrote $n rows' on stderr: $(cat "$dir/progress")"
for kind in attn_distance attn_entropy attn_beyond_D4 attn_beyond_D16 attn_beyond_D64 head_change \
            head_selected selected_attn_distance selected_attn_entropy update_size cka effective_rank spectrum cka_cross \
            selected_attn_distance_g selected_attn_relative_distance attn_uniform_distance; do
    n=$(q "SELECT count(*) FROM analysis_results WHERE kind='$kind'")
    [ "$n" -gt 0 ] && ok || fail "no $kind rows"
done
n=$(q "SELECT count(*) FROM analysis_results WHERE kind='cka' AND iteration=iteration2 AND abs(value - 1) < 1e-12")
[ "$n" = 8 ] && ok || fail "CKA diagonal: $n of 8 entries equal 1"
n=$(q "SELECT count(*) FROM analysis_results WHERE kind='update_size' AND value > 0 AND ci_lo > 0")
[ "$n" = 6 ] && ok || fail "update sizes: $n of 6 positive"
n=$(q "SELECT count(*) FROM analysis_results WHERE kind='head_selected' AND value = 1")
[ "$n" = 2 ] && ok || fail "one top-ranked head per run: $n"
before=$(q "SELECT count(*) FROM analysis_results")
"$SPIRAL" analyze --run spiral,looped --data dyck --store "$dir/s.db" --quiet >/dev/null 2>&1 || fail "analyze again"
after=$(q "SELECT count(*) FROM analysis_results")
[ "$before" = "$after" ] && ok || fail "analyzing again changed the row count: $before -> $after"
"$SPIRAL" analyze --run spiral --data dyck --store "$dir/s.db" --fraction 1 --max-sequences 5 --quiet >"$dir/one" 2>&1 &&
    grep -q "4 of 4 core heads selected" "$dir/one" && grep -q "5 of 20 recorded sequences" "$dir/one" && ok ||
    fail "analyze --fraction 1 --max-sequences 5: $(cat "$dir/one")"

expect 1 "no run named 'nope'" "$SPIRAL" analyze --run nope --data dyck --store "$dir/s.db"
expect 1 "spiral record" "$SPIRAL" analyze --run spiral-s2 --data dyck --store "$dir/s.db"
expect 2 "store is required" "$SPIRAL" analyze --run spiral --data dyck
expect 2 "fraction" "$SPIRAL" analyze --run spiral --data dyck --store "$dir/s.db" --fraction 2
expect 2 "select-by" "$SPIRAL" analyze --run spiral --data dyck --store "$dir/s.db" --select-by size
expect 1 "cannot open store" "$SPIRAL" analyze --run spiral --data dyck --store "$dir/none.db"
[ ! -e "$dir/none.db" ] && ok || fail "analyze created a store"

# compare
"$SPIRAL" compare --help | grep -q "usage: spiral compare" && ok || fail "compare --help"
"$SPIRAL" compare --store "$dir/s.db" --runs spiral,spiral-s2,looped --csv "$dir/c.csv" >"$dir/cmp" 2>&1 && ok ||
    fail "compare: $(cat "$dir/cmp")"
grep -Eq '^spiral +spiral +2 +[0-9]+ +[0-9.]+ \[[0-9.]+, [0-9.]+\]' "$dir/cmp" && ok ||
    fail "no 2-seed group with an interval: $(cat "$dir/cmp")"
grep -q "runs: spiral (seed 0), spiral-s2 (seed 2)" "$dir/cmp" && ok || fail "group members not listed"
grep -q "1 seed" "$dir/cmp" && ok || fail "looped not marked as one seed"
grep -q "equal FLOPs" "$dir/cmp" && grep -q "equal parameters" "$dir/cmp" && ok || fail "budgets missing"
[ "$(wc -l < "$dir/c.csv")" = 6 ] && head -1 "$dir/c.csv" | grep -q "^level,name,kind" && ok ||
    fail "csv: $(cat "$dir/c.csv")"
expect 1 "no run named 'nope'" "$SPIRAL" compare --store "$dir/s.db" --runs spiral,nope
expect 2 "group-by" "$SPIRAL" compare --store "$dir/s.db" --runs spiral --group-by color

# match
"$SPIRAL" match --help | grep -q "usage: spiral match" && ok || fail "match --help"
mkdir "$dir/matched"
"$SPIRAL" match --config "$dir/spiral.json" --out-dir "$dir/matched" >"$dir/match" 2>&1 && ok || fail "match: $(cat "$dir/match")"
grep -q "baselines of a spiral model at L = 48" "$dir/match" && ok || fail "match did not use train.seq_len 48"
for base in looped dense-params dense-flops; do
    f="$dir/matched/spiral-$base.json"
    line=$(grep "wrote $f:" "$dir/match")
    [ -n "$line" ] || { fail "match did not write $f"; continue; }
    printed_total=$(echo "$line" | sed -E 's/.*: [^,]+, ([0-9]+) parameters.*/\1/')
    printed_nonemb=$(echo "$line" | sed -E 's/.*\(([0-9]+) non-embedding\).*/\1/')
    printed_flops=$(echo "$line" | sed -E 's/.*, ([0-9]+) forward FLOPs.*/\1/')
    "$SPIRAL" info --config "$f" --seq-len 48 >"$dir/info" 2>&1 || { fail "info rejects $f: $(cat "$dir/info")"; continue; }
    grep -q "parameters: $printed_total total, $printed_nonemb non-embedding" "$dir/info" && ok ||
        fail "$base: info counts differ from match's $printed_total / $printed_nonemb: $(grep parameters: "$dir/info")"
    grep -Eq "^total +$printed_total +$printed_flops " "$dir/info" && ok ||
        fail "$base: info FLOPs differ from match's $printed_flops: $(grep ^total "$dir/info")"
done
grep -q '"n_loop": 2' "$dir/matched/spiral-looped.json" && grep -q '"dataset": "dyck"' "$dir/matched/spiral-looped.json" && ok ||
    fail "looped run file: $(cat "$dir/matched/spiral-looped.json")"
"$SPIRAL" train --config "$dir/matched/spiral-dense-flops.json" --store "$dir/s.db" --quiet >/dev/null 2>&1 && ok ||
    fail "the derived dense run file does not train"
n=$(q "SELECT kind FROM runs WHERE name='spiral-dense-flops'")
[ "$n" = dense ] && ok || fail "derived run kind: $n"
expect 1 "model.n_heads" sh -c "echo '{\"d_model\": 64, \"n_heads\": 5}' > '$dir/bad.json'; '$SPIRAL' match --config '$dir/bad.json'"
expect 2 "required" "$SPIRAL" match --seq-len 64

echo "analyze: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

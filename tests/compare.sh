#!/bin/sh
# compare and match on the cases that mislead a comparison, end to end:
#  - `spiral match` writes the looped baseline trained to the spiral's
#    training FLOPs (fewer steps, its own schedule); trained, it ends within
#    the printed mismatch of the spiral's FLOPs and `compare` puts the two
#    in one equal-FLOPs set, each read at its end;
#  - adding a short run to `compare` leaves every other group's line as it
#    was (each run is read at its own end, not at the smallest budget);
#  - `--at-flops` at the spiral's FLOPs refuses the full-length looped run,
#    whose curve passes that budget mid-schedule, and `--interpolate` reads
#    it there with the label "mid-schedule"; a budget past a run's end is
#    "not reached"; an unfinished run is refused at its end;
#  - an ablation sweep (a base, two variants, two seeds): "match_flops"
#    trains a variant to the base's FLOPs; the report's ablation table names
#    what changed from the configs, the paper's direction and a verdict; its
#    figure's difference is the mean of the variants' final losses minus the
#    base's; a report without a base has no such section; a bad
#    match_flops is refused naming the field;
#  - examples/paper/ablations*.json plan with --dry-run (36 runs each) and
#    every config they name is a valid model;
#  - bad budgets: a message naming the flag, exit 2.
. "$(dirname "$0")/harness.sh"
q() { sqlite3 "$dir/s.db" "$1"; }

"$SPIRAL" data make --store "$dir/s.db" --name dyck --family dyck --seed 2 >/dev/null || fail "data make"
# write_run NAME SCHEDULE SEED STEPS
write_run() {
    cat > "$dir/$1.json" <<JSON
{"model": {"vocab_size": 7, "d_model": 16, "n_heads": 2, "d_ff": 24, "schedule": $2},
 "train": {"dataset": "dyck", "seq_len": 32, "batch_size": 4, "steps": $4, "warmup": 4, "eval_every": 4,
           "eval_batches": 2, "checkpoint_every": 100, "seed": $3}}
JSON
}
write_run spiral '[4, 2, 1]' 1 24
write_run spiral-s2 '[4, 2, 1]' 2 24
write_run short '[2, 1]' 1 8
mkdir "$dir/m"
"$SPIRAL" match --config "$dir/spiral.json" --out-dir "$dir/m" >"$dir/match" 2>&1 || fail "match: $(cat "$dir/match")"
for f in looped dense-params dense-flops looped-flops dense-params-flops; do
    [ -s "$dir/m/spiral-$f.json" ] && ok || fail "match did not write spiral-$f.json"
done
# the looped baseline at equal FLOPs: fewer steps, its warmup scaled, the rest of train kept
looped_steps=$(sed -n 's/^looped (FLOPs) *\([0-9]*\) .*/\1/p' "$dir/match")
mismatch=$(sed -n 's/^looped (FLOPs) *[0-9]* *[0-9.e+]* *\([-+0-9.]*\)%.*/\1/p' "$dir/match")
[ -n "$looped_steps" ] && [ "$looped_steps" -lt 24 ] && grep -q "\"steps\": $looped_steps" "$dir/m/spiral-looped-flops.json" &&
    grep -q '"eval_every": 4' "$dir/m/spiral-looped-flops.json" && ok ||
    fail "looped (FLOPs) steps '$looped_steps': $(cat "$dir/match")"
grep -q '"steps": 24' "$dir/m/spiral-looped.json" && ok || fail "the equal-token looped baseline keeps 24 steps"

for run in spiral spiral-s2 short; do
    "$SPIRAL" train --config "$dir/$run.json" --store "$dir/s.db" --quiet >/dev/null 2>&1 || fail "train $run"
done
for run in looped looped-flops; do
    "$SPIRAL" train --config "$dir/m/spiral-$run.json" --store "$dir/s.db" --name "$run" --quiet >/dev/null 2>&1 ||
        fail "train $run"
done
# trained, the baseline's FLOPs are the spiral's within the printed mismatch
spiral_flops=$(q "SELECT max(flops) FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.name = 'spiral'")
looped_flops=$(q "SELECT max(flops) FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.name = 'looped-flops'")
awk -v a="$spiral_flops" -v b="$looped_flops" -v m="$mismatch" \
    'BEGIN { d = 100 * (b - a) / a; exit !(d - m < 0.001 && m - d < 0.001 && (d < 0 ? -d : d) < 5) }' && ok ||
    fail "looped-flops trained to $looped_flops FLOPs against the spiral's $spiral_flops (printed mismatch $mismatch%)"

# default: every run at its own end; spiral and looped-flops share an equal-FLOPs set
"$SPIRAL" compare --store "$dir/s.db" --runs spiral,spiral-s2,looped,looped-flops --csv "$dir/a.csv" >"$dir/a" 2>&1 ||
    fail "compare: $(cat "$dir/a")"
grep -q "each run at the end of its own schedule" "$dir/a" && ok || fail "compare does not say how it read: $(cat "$dir/a")"
set_line=$(sed -n '/^equal FLOPs/,/^$/p' "$dir/a" | grep "spiral (spiral)")
echo "$set_line" | grep -q "looped-flops (looped" && ! echo "$set_line" | grep -q " looped (looped" &&
    echo "$set_line" | grep -q "(end)" && ok || fail "no equal-FLOPs set of spiral and looped-flops: $(cat "$dir/a")"
sed -n '/^equal parameters/,$p' "$dir/a" | grep -q "at equal FLOPs: spiral (spiral" && ok ||
    fail "the equal-parameter block lacks equal FLOPs: $(cat "$dir/a")"
grep -q "^run,looped-flops,looped,.*,end,end$" "$dir/a.csv" && ok || fail "csv lacks how it read: $(cat "$dir/a.csv")"

# a short run added moves nothing
"$SPIRAL" compare --store "$dir/s.db" --runs spiral,spiral-s2,looped,looped-flops,short >"$dir/b" 2>&1 ||
    fail "compare with short: $(cat "$dir/b")"
for g in spiral looped looped-flops; do
    before=$(grep "^$g " "$dir/a" | tail -1)
    after=$(grep "^$g " "$dir/b" | tail -1)
    [ -n "$before" ] && [ "$before" = "$after" ] && ok || fail "adding a short run moved $g: '$before' -> '$after'"
done

# a fixed budget mid-way through the looped run: refused, or read and labelled
"$SPIRAL" compare --store "$dir/s.db" --runs spiral,looped,looped-flops --at-flops "$spiral_flops" >"$dir/c" 2>&1 ||
    fail "compare --at-flops: $(cat "$dir/c")"
grep -E "^looped +looped .*refused: mid-schedule\)$" "$dir/c" >/dev/null && ok ||
    fail "the looped run's mid-schedule value was not refused: $(cat "$dir/c")"
grep -E "^looped-flops +looped .*[0-9] \(1 seed\) \(end\)$" "$dir/c" >/dev/null && ok ||
    fail "looped-flops not read at its end: $(cat "$dir/c")"
"$SPIRAL" compare --store "$dir/s.db" --runs spiral,looped --at-flops "$spiral_flops" --interpolate >"$dir/d" 2>&1 ||
    fail "compare --interpolate: $(cat "$dir/d")"
grep -E "^looped +looped .*[0-9] \(1 seed\) \(mid-schedule\)$" "$dir/d" >/dev/null && grep -q "interpolated linearly" "$dir/d" &&
    ok || fail "--interpolate does not label the mid-schedule value: $(cat "$dir/d")"
"$SPIRAL" compare --store "$dir/s.db" --runs spiral,short --at-tokens 3072 >"$dir/e" 2>&1 || fail "compare --at-tokens"
grep -E "^short .*- \(not reached\) +[0-9.]+ \(1 seed\) \(end\)$" "$dir/e" >/dev/null && grep -E "^spiral .*\(end\)" "$dir/e" >/dev/null && ok ||
    fail "a budget past the short run's end: $(cat "$dir/e")"
# an unfinished run (its last evaluations removed) is refused at its end
q "DELETE FROM metrics WHERE step > 16 AND run_id = (SELECT id FROM runs WHERE name = 'spiral-s2')"
"$SPIRAL" compare --store "$dir/s.db" --runs spiral-s2 --group-by none >"$dir/f" 2>&1 || fail "compare unfinished"
grep -E "^spiral-s2 .*refused: mid-schedule\) +- \(refused: mid-schedule\)$" "$dir/f" >/dev/null && grep -q "16 / 24" "$dir/f" &&
    ok || fail "an unfinished run was read: $(cat "$dir/f")"

# an ablation study: a base and two variants, two seeds each, through spiral sweep
cp "$dir/spiral.json" "$dir/base.json"
write_run fine-to-coarse '[1, 2, 4]' 1 24
cat > "$dir/recurrence-high.json" <<JSON
{"model": {"vocab_size": 7, "d_model": 16, "n_heads": 2, "d_ff": 24, "n_pre": 0, "n_loop": 4, "n_post": 0,
           "schedule": [4, 2, 1]},
 "train": {"dataset": "dyck", "seq_len": 32, "batch_size": 4, "steps": 24, "warmup": 4, "eval_every": 4,
           "eval_batches": 2, "checkpoint_every": 100, "seed": 1}}
JSON
cat > "$dir/ablation.json" <<JSON
{"datasets": [{"name": "dyck", "family": "dyck", "seed": 2}],
 "runs": [{"name": "base", "config": "$dir/base.json", "seeds": [1, 2]},
          {"name": "fine-to-coarse", "config": "$dir/fine-to-coarse.json", "seeds": [1, 2], "match_flops": "base"},
          {"name": "recurrence-high", "config": "$dir/recurrence-high.json", "seeds": [1, 2], "match_flops": "base"}],
 "report": {"out": "$dir/ablation-report"}}
JSON
"$SPIRAL" sweep "$dir/ablation.json" --store "$dir/abl.db" --quiet >"$dir/sweep" 2>&1 || fail "ablation sweep: $(cat "$dir/sweep")"
qa() { sqlite3 "$dir/abl.db" "$1"; }
# match_flops: the deeper loop trains fewer steps to the base's FLOPs; the reversed schedule keeps 24
steps=$(qa "SELECT max(m.step) FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.name = 'recurrence-high-s1'")
ratio=$(qa "SELECT (SELECT max(flops) FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.name = 'recurrence-high-s1')
               / (SELECT max(flops) FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.name = 'base-s1')")
[ -n "$steps" ] && [ "$steps" -lt 24 ] && awk -v r="$ratio" 'BEGIN { exit !(r > 0.95 && r < 1.05) }' && ok ||
    fail "recurrence-high: $steps steps, FLOPs $ratio of the base's"
[ "$(qa "SELECT max(m.step) FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.name = 'fine-to-coarse-s2'")" = 24 ] &&
    ok || fail "fine-to-coarse does not keep the base's 24 steps"
md="$dir/ablation-report/report.md"
grep -q "^## Ablation study" "$md" && grep -q "| fine-to-coarse | schedule order reversed: g = 1,2,4 (base 4,2,1) | 2 |" "$md" &&
    grep -q "| recurrence-high | depth 0 + 3 x 4 + 0: recurrence ratio 1.00 (base 0.75) | 2 |" "$md" &&
    grep -q "worse: too large a share of looped depth hurts | \(agrees\|opposite\|inconclusive\) |" "$md" && ok ||
    fail "ablation table: $(sed -n '/Ablation study/,/^## Figures/p' "$md")"
# the figure's difference is the mean of the variant's final losses minus the base's
expected=$(qa "SELECT avg(CASE WHEN r.name LIKE 'fine-to-coarse-%' THEN m.val_loss END) - avg(CASE WHEN r.name LIKE 'base-%' THEN m.val_loss END)
               FROM metrics m JOIN runs r ON r.id = m.run_id WHERE m.step = 24 AND m.val_loss IS NOT NULL")
got=$(grep ',fine-to-coarse,' "$dir/ablation-report/ablation.csv" | cut -d, -f7)
awk -v a="$expected" -v b="$got" 'BEGIN { d = a - b; exit !(b != "" && d < 1e-6 && d > -1e-6) }' && ok ||
    fail "ablation.csv difference $got, expected $expected"
[ -s "$dir/ablation-report/ablation.png" ] && ok || fail "no ablation figure"
# a report without a base has no ablation section
"$SPIRAL" report --store "$dir/s.db" --out "$dir/plain-report" >/dev/null 2>&1 || fail "plain report"
! grep -q "Ablation" "$dir/plain-report/report.md" && [ ! -e "$dir/plain-report/ablation.csv" ] &&
    ok || fail "a report without a base run shows an ablation section"
sed 's/"match_flops": "base"}/"match_flops": "nope"}/' "$dir/ablation.json" > "$dir/bad-sweep.json"
expect 1 "runs\[1\].match_flops: expected the name of another run" \
    "$SPIRAL" sweep "$dir/bad-sweep.json" --store "$dir/bad.db" --dry-run

# the paper's ablation studies shipped with spiral
for study in ablations ablations-gpu; do
    "$SPIRAL" sweep "examples/paper/$study.json" --store "$dir/$study.db" --dry-run >"$dir/plan" 2>&1 &&
        [ "$(grep -c '^sweep: run ' "$dir/plan")" = 36 ] && ok || fail "$study.json does not plan 36 runs: $(cat "$dir/plan")"
done
for f in examples/paper/cpu/*.json examples/paper/gpu/*.json; do
    "$SPIRAL" info --config "$f" >"$dir/info" 2>&1 && ok || fail "$f: $(cat "$dir/info")"
done

expect 2 "at-flops: expected a number > 0" "$SPIRAL" compare --store "$dir/s.db" --runs spiral --at-flops -5
expect 2 "at-tokens: expected a number > 0" "$SPIRAL" compare --store "$dir/s.db" --runs spiral --at-tokens 1e3x

echo "compare: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

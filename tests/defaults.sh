#!/bin/sh
# Options the store settles: `spiral probe`, `analyze` and `compare` take
# --data / --run / --runs from the store when it offers exactly one choice,
# and say on stderr which they took; with several choices they fail (exit 1)
# listing them, and with none they say what to make first.
. "$(dirname "$0")/harness.sh"

S="--store $dir/s.db"
"$SPIRAL" data make $S --name dyck --family dyck --seed 2 >/dev/null || fail "data make dyck"
"$SPIRAL" data make $S --name other --family dyck --seed 3 >/dev/null || fail "data make other"
# write_run NAME SCHEDULE DATASET
write_run() {
    cat > "$dir/$1.json" <<JSON
{"model": {"vocab_size": 7, "d_model": 16, "n_heads": 2, "d_ff": 32, "schedule": $2},
 "train": {"dataset": "$3", "seq_len": 32, "batch_size": 4, "steps": 6, "eval_every": 3,
           "eval_batches": 1, "checkpoint_every": 6}}
JSON
    "$SPIRAL" train --config "$dir/$1.json" $S --quiet >/dev/null 2>&1 || fail "train $1"
}

# nothing recorded yet: say what to make
expect 1 "no dataset with recordings on the test split; record one" "$SPIRAL" analyze $S --quiet
write_run spiral '[2, 1]' dyck
write_run looped '[1, 1]' dyck

# compare: every run trains on dyck, so all of them
expect 0 "--runs not given; using all 2 runs of the store, all on dataset dyck: spiral,looped" \
    "$SPIRAL" compare $S
grep -q "^spiral " "$dir/out" && grep -q "^looped " "$dir/out" && ok || fail "compare output: $(cat "$dir/out")"

# one recording: probe and analyze find it, and say so
"$SPIRAL" record --run spiral --data dyck $S --sequences 10 --quiet >/dev/null 2>&1 || fail "record spiral"
expect 0 "--data not given; using dataset dyck" "$SPIRAL" probe $S --label depth --controls none --quiet
grep -q -- "--run not given; using run spiral, the only run recorded on dataset dyck (test split)" "$dir/err" &&
    ok || fail "probe did not name the run it chose: $(cat "$dir/err")"
grep -q "probes of run spiral on dyck" "$dir/out" && ok || fail "probe output: $(head -3 "$dir/out")"
expect 0 "--data not given; using dataset dyck, the only dataset with a recording of spiral" \
    "$SPIRAL" analyze $S --run spiral --quiet

# two recorded runs on dyck: --run is a choice; the error lists both
"$SPIRAL" record --run looped --data dyck $S --sequences 10 --quiet >/dev/null 2>&1 || fail "record looped"
expect 1 "--run not given, and there are 2 runs recorded on dataset dyck (test split): looped, spiral; choose one with --run" \
    "$SPIRAL" probe $S --label depth --controls none --quiet
[ ! -s "$dir/out" ] && ok || fail "probe printed results without a run"
expect 0 "using dataset dyck, the only dataset with a recording of spiral,looped" \
    "$SPIRAL" analyze $S --run spiral,looped --quiet

# spiral recorded on a second dataset: --data is a choice too
"$SPIRAL" record --run spiral --data other $S --sequences 10 --quiet >/dev/null 2>&1 || fail "record on other"
expect 1 "--data not given, and there are 2 datasets with a recording of spiral on the test split: dyck, other" \
    "$SPIRAL" probe $S --run spiral --label depth --controls none --quiet
# looped is recorded on dyck only: still one choice for it
expect 0 "using dataset dyck" "$SPIRAL" probe $S --run looped --label depth --controls none --quiet
# the split narrows the choices: nothing on val
expect 1 "no dataset with a recording of spiral on the val split" \
    "$SPIRAL" analyze $S --run spiral --split val --quiet

# a run on another dataset: compare's choice is no longer one
write_run third '[1, 1]' other
expect 1 "--runs not given, and the store's runs train on 2 datasets (dyck, other)" "$SPIRAL" compare $S
grep -q "third (dataset other)" "$dir/err" && ok || fail "compare did not list the runs: $(cat "$dir/err")"
# given options are kept as given
"$SPIRAL" compare $S --runs spiral,third >"$dir/out" 2>"$dir/err" && ! grep -q "not given" "$dir/err" && ok ||
    fail "compare --runs spiral,third: $(cat "$dir/err")"

echo "defaults: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

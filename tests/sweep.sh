#!/bin/sh
# spiral sweep: a small study (a dataset, one run file x 2 seeds, recording)
# with -j 2; an interrupted sweep resumes and skips what is done; --dry-run
# prints the commands and changes nothing; a bad sweep file is refused.
. "$(dirname "$0")/harness.sh"
q() { sqlite3 -cmd ".timeout 10000" "$dir/s.db" "$1"; }

cat > "$dir/run.json" <<JSON
{"model": {"vocab_size": 7, "d_model": 16, "n_heads": 2, "d_ff": 32, "schedule": [4, 1]},
 "train": {"dataset": "dyck", "seq_len": 32, "batch_size": 4, "steps": 30, "eval_every": 0,
           "checkpoint_every": 10}}
JSON
cat > "$dir/sweep.json" <<JSON
{"datasets": [{"name": "dyck", "family": "dyck", "seed": 4, "params": {"n_train": 300}}],
 "runs": [{"name": "tiny", "config": "$dir/run.json", "seeds": [1, 2]}],
 "record": {"split": "test", "sequences": 20}}
JSON

"$SPIRAL" sweep "$dir/sweep.json" --store "$dir/s.db" --dry-run >"$dir/dry.out" 2>&1 || fail "dry run"
grep -q "train --config" "$dir/dry.out" && ok || fail "dry run lists no train command"
[ ! -e "$dir/s.db" ] && [ ! -e "$dir/s.db.sweep" ] && ok ||
    fail "dry run wrote files: $(ls "$dir")"

# the report object's probe filters reach the report command
sed 's|"record": {"split": "test", "sequences": 20}}|"record": {"split": "test", "sequences": 20}, "report": {"out": "'"$dir"'/r", "probe_sites": "token,coda", "probe_iterations": "0-1"}}|' \
    "$dir/sweep.json" >"$dir/filtered.json"
"$SPIRAL" sweep "$dir/filtered.json" --store "$dir/s.db" --dry-run >"$dir/dry2.out" 2>&1 || fail "dry run with a report"
grep -q "report --store .* --probe-sites token,coda --probe-iterations 0-1" "$dir/dry2.out" && ok ||
    fail "the report command lacks the probe filters: $(grep report "$dir/dry2.out")"

# each run is recorded and analyzed on the dataset it trains on; precision
# reaches every train command
sed 's|"dataset": "dyck"|"dataset": "dyck2"|' "$dir/run.json" >"$dir/run2.json"
cat > "$dir/two.json" <<JSON
{"precision": "fp32",
 "datasets": [{"name": "dyck", "family": "dyck", "seed": 4}, {"name": "dyck2", "family": "dyck", "seed": 5}],
 "runs": [{"name": "a", "config": "$dir/run.json"}, {"name": "b", "config": "$dir/run2.json"}],
 "record": {"split": "test", "sequences": 20}, "analyze": {}}
JSON
"$SPIRAL" sweep "$dir/two.json" --store "$dir/s.db" --dry-run >"$dir/dry3.out" 2>&1 || fail "dry run, two datasets"
grep -q "record --run a --data dyck " "$dir/dry3.out" && grep -q "record --run b --data dyck2 " "$dir/dry3.out" &&
    grep -q "analyze --run a --data dyck " "$dir/dry3.out" && grep -q "analyze --run b --data dyck2 " "$dir/dry3.out" &&
    ok || fail "runs not recorded/analyzed on their own datasets: $(grep -E 'record|analyze' "$dir/dry3.out")"
[ "$(grep -c "train --config.*--precision fp32" "$dir/dry3.out")" = 2 ] && ok ||
    fail "--precision missing from the train commands: $(grep train "$dir/dry3.out")"

# names that would escape the sweep's folders are refused, also in a dry run
sed 's|"name": "tiny"|"name": "../../x"|' "$dir/sweep.json" >"$dir/escape.json"
"$SPIRAL" sweep "$dir/escape.json" --store "$dir/s.db" --dry-run >/dev/null 2>"$dir/err" &&
    fail "a run named ../../x was accepted" ||
    { grep -q "runs\[0\]: run name '../../x-s1': must start with a letter or a digit" "$dir/err" && ok ||
      fail "escaping name: $(cat "$dir/err")"; }
[ ! -e "$dir/s.db" ] && [ ! -e "$dir/../x-s1.json" ] && ok || fail "the refused sweep wrote files"

# interrupt: kill the sweep and its children once a run has a checkpoint
"$SPIRAL" sweep "$dir/sweep.json" --store "$dir/s.db" -j 2 >"$dir/first.out" 2>&1 &
pid=$!
i=0
while [ $i -lt 400 ]; do
    n=$(q "SELECT count(*) FROM checkpoints" 2>/dev/null)
    [ "${n:-0}" -ge 1 ] && break
    sleep 0.05; i=$((i + 1))
done
# stop the sweep first, so that it cannot start a child between the two kills
kill -STOP $pid 2>/dev/null
pkill -9 -P $pid 2>/dev/null
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null

"$SPIRAL" sweep "$dir/sweep.json" --store "$dir/s.db" -j 2 >"$dir/second.out" 2>&1 || fail "resumed sweep: $(tail -5 "$dir/second.out")"
[ "$(q "SELECT count(*) FROM runs WHERE status='done'")" = 2 ] && ok || fail "runs done: $(q "SELECT name, status FROM runs")"
[ "$(q "SELECT group_concat(name) FROM (SELECT name FROM runs ORDER BY name)")" = "tiny-s1,tiny-s2" ] && ok || fail "run names"
[ "$(q "SELECT count(*) FROM metrics")" = 60 ] && ok || fail "metrics rows $(q "SELECT count(*) FROM metrics")"
[ "$(q "SELECT count(*) FROM recordings WHERE status='done'")" = 2 ] && ok || fail "recordings"
seeds=$(q "SELECT count(DISTINCT json_extract(config, '$.train.seed')) FROM runs")
[ "$seeds" = 2 ] && ok || fail "the two runs do not have distinct seeds"
l1=$(q "SELECT loss FROM metrics JOIN runs ON runs.id = run_id WHERE name='tiny-s1' AND metrics.step=30")
l2=$(q "SELECT loss FROM metrics JOIN runs ON runs.id = run_id WHERE name='tiny-s2' AND metrics.step=30")
[ "$l1" != "$l2" ] && ok || fail "different seeds gave the same loss"

# everything done: a third sweep trains nothing
"$SPIRAL" sweep "$dir/sweep.json" --store "$dir/s.db" >"$dir/third.out" 2>&1 || fail "third sweep"
grep -q "train" "$dir/third.out" && fail "a finished sweep trained again: $(cat "$dir/third.out")" || ok

# a step that fails stops the sweep and is named
sed 's/"d_model": 16/"d_model": 15/' "$dir/run.json" > "$dir/broken.json"
cat > "$dir/broken-sweep.json" <<JSON
{"datasets": [{"name": "dyck", "family": "dyck", "seed": 4, "params": {"n_train": 300}}],
 "runs": [{"name": "broken", "config": "$dir/broken.json", "seeds": [1]}],
 "record": {"split": "test", "sequences": 20}}
JSON
"$SPIRAL" sweep "$dir/broken-sweep.json" --store "$dir/s.db" --quiet 2>"$dir/err" >"$dir/out"; code=$?
[ $code = 1 ] && grep -q "step failed (run broken-s1" "$dir/err" && ok || fail "failed step: $code $(cat "$dir/err")"
grep -q "record broken-s1" "$dir/out" && ! grep -q "recording" "$dir/out" && ok || fail "a sweep went on after a failed step: $(cat "$dir/out")"

echo '{"runs": []}' > "$dir/bad.json"
"$SPIRAL" sweep "$dir/bad.json" --store "$dir/s.db" 2>"$dir/err" >/dev/null; code=$?
[ $code = 1 ] && grep -q "datasets" "$dir/err" && ok || fail "bad sweep file: $code $(cat "$dir/err")"
"$SPIRAL" sweep "$dir/missing.json" --store "$dir/s.db" 2>"$dir/err" >/dev/null; code=$?
[ $code = 1 ] && grep -q "missing.json" "$dir/err" && ok || fail "missing sweep file: $(cat "$dir/err")"

echo "sweep: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/sh
# A training run killed with SIGKILL and resumed produces the same loss at
# every step as a run never interrupted (compared in the store with sqlite3).
. "$(dirname "$0")/harness.sh"

"$SPIRAL" data make --store "$dir/s.db" --name dyck --family dyck --seed 1 >/dev/null || fail "data make"
cat > "$dir/run.json" <<JSON
{"model": {"vocab_size": 7, "d_model": 32, "n_heads": 2, "d_ff": 64, "n_pre": 1, "n_loop": 1,
           "n_post": 1, "schedule": [4, 2, 1]},
 "train": {"dataset": "dyck", "seq_len": 64, "batch_size": 8, "steps": 400, "lr": 0.003,
           "eval_every": 100, "checkpoint_every": 25}}
JSON
"$SPIRAL" train --config "$dir/run.json" --store "$dir/s.db" --name whole --quiet >/dev/null 2>&1 || fail "uninterrupted run"

"$SPIRAL" train --config "$dir/run.json" --store "$dir/s.db" --name killed --quiet >/dev/null 2>&1 &
pid=$!
# wait for at least two checkpoints, then kill without warning
i=0
while [ $i -lt 600 ]; do
    n=$(sqlite3 "$dir/s.db" "SELECT count(*) FROM checkpoints JOIN runs ON runs.id = run_id WHERE name='killed'" 2>/dev/null)
    [ "${n:-0}" -ge 2 ] && break
    sleep 0.05; i=$((i + 1))
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
steps=$(sqlite3 "$dir/s.db" "SELECT max(step) FROM metrics JOIN runs ON runs.id = run_id WHERE name='killed'")
if [ "${steps:-0}" -lt 400 ]; then ok; else fail "the run finished before it was killed (step $steps)"; fi
sqlite3 "$dir/s.db" "PRAGMA integrity_check" | grep -q '^ok$' && ok || fail "store integrity after SIGKILL"

"$SPIRAL" train --resume killed --store "$dir/s.db" --quiet >/dev/null 2>"$dir/err" || fail "resume: $(cat "$dir/err")"
diff=$(sqlite3 "$dir/s.db" "SELECT count(*) FROM metrics a JOIN metrics b ON a.step = b.step
  WHERE a.run_id = (SELECT id FROM runs WHERE name='whole') AND b.run_id = (SELECT id FROM runs WHERE name='killed')
  AND (a.loss != b.loss OR coalesce(a.val_loss, -1) != coalesce(b.val_loss, -1))")
rows=$(sqlite3 "$dir/s.db" "SELECT count(*) FROM metrics WHERE run_id = (SELECT id FROM runs WHERE name='killed')")
[ "$rows" = 400 ] && ok || fail "resumed run has $rows metric rows, expected 400"
[ "$diff" = 0 ] && ok || fail "$diff steps differ between the killed+resumed run and the uninterrupted one"
status=$(sqlite3 "$dir/s.db" "SELECT status FROM runs WHERE name='killed'")
[ "$status" = done ] && ok || fail "status after resume: $status"
echo "killed at step $steps of 400, resumed; $rows rows, $diff differing"

# SIGINT: checkpoint and stop cleanly, exit 130, resumable
"$SPIRAL" train --config "$dir/run.json" --store "$dir/s.db" --name interrupted --quiet >/dev/null 2>&1 &
pid=$!
i=0
while [ $i -lt 600 ]; do
    n=$(sqlite3 "$dir/s.db" "SELECT count(*) FROM checkpoints JOIN runs ON runs.id = run_id WHERE name='interrupted'" 2>/dev/null)
    [ "${n:-0}" -ge 1 ] && break
    sleep 0.05; i=$((i + 1))
done
kill -INT $pid
wait $pid
code=$?
[ "$code" = 130 ] && ok || fail "SIGINT exit code $code, expected 130"
status=$(sqlite3 "$dir/s.db" "SELECT status FROM runs WHERE name='interrupted'")
[ "$status" = interrupted ] && ok || fail "status after SIGINT: $status"

echo "train_kill: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

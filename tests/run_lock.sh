#!/bin/sh
# One process at a time trains a run: while `spiral train` runs, a second
# `train --resume` of the same run, and a new run pointed at the same
# checkpoint folder, fail at once naming the owner. After a SIGKILL the lock
# is gone (the kernel drops it), and the resume removes the temporary file
# that a checkpoint write in progress would have left.
. "$(dirname "$0")/harness.sh"
pid=
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$dir"' EXIT

"$SPIRAL" data make --store "$dir/s.db" --name dyck --family dyck --seed 1 >/dev/null || fail "data make"
cat > "$dir/run.json" <<JSON
{"model": {"vocab_size": 7, "d_model": 32, "n_heads": 2, "d_ff": 64, "n_pre": 1, "n_loop": 1,
           "n_post": 1, "schedule": [4, 2, 1]},
 "train": {"dataset": "dyck", "seq_len": 64, "batch_size": 8, "steps": 100000, "lr": 0.003,
           "eval_every": 1000, "checkpoint_every": 10}}
JSON
"$SPIRAL" train --config "$dir/run.json" --store "$dir/s.db" --name k --quiet >/dev/null 2>&1 &
pid=$!
i=0
while [ $i -lt 600 ]; do
    n=$(sqlite3 "$dir/s.db" "SELECT count(*) FROM checkpoints JOIN runs ON runs.id = run_id WHERE name='k'" 2>/dev/null)
    [ "${n:-0}" -ge 1 ] && break
    sleep 0.05; i=$((i + 1))
done

# a second owner of the same run
if timeout 20 "$SPIRAL" train --resume k --store "$dir/s.db" --quiet >/dev/null 2>"$dir/err"; then
    fail "a second 'train --resume k' ran while the first was training"
else
    grep -q "in use by another process (pid $pid, run k)" "$dir/err" && ok ||
        fail "second owner's error: $(cat "$dir/err")"
fi
# another run writing into the same checkpoint folder
sed "s|\"checkpoint_every\": 10|\"checkpoint_every\": 10, \"checkpoint_dir\": \"$dir/checkpoints/k\"|" \
    "$dir/run.json" >"$dir/same_dir.json"
if timeout 20 "$SPIRAL" train --config "$dir/same_dir.json" --store "$dir/s.db" --name other --quiet >/dev/null 2>"$dir/err"; then
    fail "a run sharing k's checkpoint folder trained while k was training"
else
    grep -q "in use by another process" "$dir/err" && ok || fail "shared folder's error: $(cat "$dir/err")"
fi

kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
pid=
# what a kill in the middle of a checkpoint write leaves behind
head -c 4096 /dev/zero >"$dir/checkpoints/k/step_99999999.safetensors.tmp.12345"
"$SPIRAL" train --resume k --store "$dir/s.db" --quiet >/dev/null 2>"$dir/err" &
pid=$!
i=0
while [ $i -lt 600 ] && [ -e "$dir/checkpoints/k/step_99999999.safetensors.tmp.12345" ]; do
    sleep 0.05; i=$((i + 1))
done
[ ! -e "$dir/checkpoints/k/step_99999999.safetensors.tmp.12345" ] && ok ||
    fail "the resume left the killed write's temporary file: $(ls "$dir/checkpoints/k")"
kill -0 $pid 2>/dev/null && ok || fail "the resume after SIGKILL did not start: $(cat "$dir/err")"
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
pid=

echo "run_lock: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

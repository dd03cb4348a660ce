#!/bin/sh
# `spiral runs`: lists runs with kind, status, step and losses; a run whose
# trainer was killed (SIGKILL leaves "running" in the store) is shown as
# interrupted; --delete refuses a run being trained, removes a finished one
# from the store (and its checkpoint files with --files), and a deleted
# name can be used again.
. "$(dirname "$0")/harness.sh"
pid=
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$dir"' EXIT
status_of() { "$SPIRAL" runs --store "$dir/s.db" | awk -v n="$1" '$1 == n {print $3}'; }

"$SPIRAL" data make --store "$dir/s.db" --name dyck --family dyck --seed 1 >/dev/null || fail "data make"
"$SPIRAL" runs --store "$dir/s.db" | grep -q "no runs in" && ok || fail "empty store listing"
cat > "$dir/short.json" <<JSON
{"model": {"vocab_size": 7, "d_model": 16, "n_heads": 2, "d_ff": 32, "n_pre": 1, "n_loop": 1,
           "n_post": 1, "schedule": [2, 1]},
 "train": {"dataset": "dyck", "seq_len": 32, "batch_size": 4, "steps": 20, "lr": 0.003,
           "eval_every": 10, "checkpoint_every": 10}}
JSON
sed 's/"steps": 20/"steps": 100000/' "$dir/short.json" >"$dir/long.json"
"$SPIRAL" train --config "$dir/short.json" --store "$dir/s.db" --name done1 --quiet >/dev/null 2>&1 || fail "train done1"
line=$("$SPIRAL" runs --store "$dir/s.db" | awk '$1 == "done1"')
echo "$line" | grep -Eq '^done1 +spiral +done +20 +[0-9.]+ +[0-9.]+ +dyck' && ok || fail "listing of done1: '$line'"

"$SPIRAL" train --config "$dir/long.json" --store "$dir/s.db" --name busy --quiet >/dev/null 2>&1 &
pid=$!
i=0
while [ $i -lt 600 ] && [ "$(status_of busy)" != running ]; do sleep 0.05; i=$((i + 1)); done
[ "$(status_of busy)" = running ] && ok || fail "a training run is shown as '$(status_of busy)'"
"$SPIRAL" runs --store "$dir/s.db" --delete busy >/dev/null 2>"$dir/err" && fail "deleted a run being trained" ||
    { grep -q "is being trained right now (pid $pid" "$dir/err" && ok || fail "delete while training: $(cat "$dir/err")"; }
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
pid=
stored=$(sqlite3 "$dir/s.db" "SELECT status FROM runs WHERE name = 'busy'")
shown=$(status_of busy)
[ "$stored" = running ] && [ "$shown" = interrupted ] && ok ||
    fail "after SIGKILL: stored '$stored', shown '$shown' (expected running, interrupted)"

"$SPIRAL" runs --store "$dir/s.db" --delete done1 --files >"$dir/out" 2>&1 && ok || fail "delete: $(cat "$dir/out")"
grep -q "deleted run done1 and 2 checkpoint files" "$dir/out" && ok || fail "delete output: $(cat "$dir/out")"
[ -z "$(sqlite3 "$dir/s.db" "SELECT 1 FROM runs WHERE name = 'done1'")" ] &&
    [ "$(sqlite3 "$dir/s.db" "SELECT count(*) FROM runs WHERE name = 'busy'")" = 1 ] && ok ||
    fail "done1 still in the store, or busy went with it"
[ ! -e "$dir/checkpoints/done1" ] && ok || fail "checkpoint folder left: $(ls "$dir/checkpoints/done1")"
"$SPIRAL" train --config "$dir/short.json" --store "$dir/s.db" --name done1 --quiet >/dev/null 2>"$dir/err" &&
    ok || fail "the deleted name cannot be reused: $(cat "$dir/err")"
"$SPIRAL" runs --store "$dir/s.db" --delete nope >/dev/null 2>"$dir/err" && fail "deleted an unknown run" ||
    { grep -q "no run named 'nope'" "$dir/err" && ok || fail "unknown run: $(cat "$dir/err")"; }

# files that are not spiral stores are refused and left byte for byte as they were
sqlite3 "$dir/foreign.db" "CREATE TABLE notes(x); INSERT INTO notes VALUES('mine');"
printf 'plain text\n' >"$dir/text.db"
before=$(cat "$dir/foreign.db" "$dir/text.db" | sha256sum)
for cmd in "runs --store $dir/foreign.db" "data list --store $dir/foreign.db" \
           "train --config $dir/short.json --store $dir/foreign.db --name x" "runs --store $dir/text.db"; do
    # shellcheck disable=SC2086
    "$SPIRAL" $cmd >/dev/null 2>"$dir/err" && fail "spiral $cmd accepted a foreign file" ||
        { grep -q "not a spiral store" "$dir/err" && ok || fail "spiral $cmd: $(cat "$dir/err")"; }
done
after=$(cat "$dir/foreign.db" "$dir/text.db" | sha256sum)
[ "$before" = "$after" ] && [ ! -e "$dir/foreign.db-wal" ] && ok || fail "a foreign file was changed"
# listing is read-only: the store file does not change
sqlite3 "$dir/s.db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
before=$(sha256sum <"$dir/s.db")
"$SPIRAL" runs --store "$dir/s.db" >/dev/null || fail "runs after checkpoint"
[ "$before" = "$(sha256sum <"$dir/s.db")" ] && ok || fail "spiral runs changed the store file"

echo "runs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

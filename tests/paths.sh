#!/bin/sh
# Finding a study's files and names from anywhere.
# Checkpoint paths are kept relative to the store's folder: a run trained
# with --store w/s.db from one directory is recorded from inside w/ and
# from anywhere after the folder is moved, and the store holds no path
# that depends on the working directory of the training command.
. "$(dirname "$0")/harness.sh"
case "$SPIRAL" in /*) ;; *) SPIRAL="$(pwd)/$SPIRAL" ;; esac

mkdir -p "$dir/top/w"
cd "$dir/top" || exit 1
"$SPIRAL" data make --store w/s.db --name dyck --family dyck --seed 1 >/dev/null || fail "data make"
cat > run.json <<JSON
{"model": {"vocab_size": 7, "d_model": 16, "n_heads": 2, "d_ff": 32, "n_pre": 1, "n_loop": 1,
           "n_post": 1, "schedule": [2, 1]},
 "train": {"dataset": "dyck", "seq_len": 32, "batch_size": 4, "steps": 20, "lr": 0.003,
           "eval_every": 100, "checkpoint_every": 10}}
JSON
"$SPIRAL" train --config run.json --store w/s.db --name c --quiet >/dev/null 2>err || fail "train: $(cat err)"
kept=$(sqlite3 w/s.db "SELECT path FROM checkpoints ORDER BY step DESC LIMIT 1")
[ "$kept" = checkpoints/c/step_00000020.safetensors ] && ok || fail "kept checkpoint path '$kept'"
[ -f w/checkpoints/c/step_00000020.safetensors ] && ok || fail "checkpoint not beside the store"

cd w || exit 1
"$SPIRAL" record --run c --data dyck --store s.db --sequences 2 --quiet >/dev/null 2>../err &&
    ok || fail "record from the store's folder: $(cat ../err)"
cd "$dir" || exit 1
mv top/w moved
"$SPIRAL" record --run c --data dyck --store moved/s.db --sequences 2 --split val --quiet >/dev/null 2>err &&
    ok || fail "record after moving the store's folder: $(cat err)"

# a mistyped run or dataset name: the error lists what exists and suggests
"$SPIRAL" record --run cc --data dyck --store moved/s.db --quiet >/dev/null 2>err &&
    fail "record of an unknown run succeeded" ||
    { grep -q "no run named 'cc' (did you mean 'c'? the store has: c)" err && ok || fail "unknown run: $(cat err)"; }
"$SPIRAL" record --run c --data dyk --store moved/s.db --quiet >/dev/null 2>err &&
    fail "record of an unknown dataset succeeded" ||
    { grep -q "no dataset named 'dyk' (did you mean 'dyck'?" err && ok || fail "unknown dataset: $(cat err)"; }

echo "paths: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

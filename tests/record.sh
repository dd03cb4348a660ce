#!/bin/sh
# Recording end to end with the spiral binary:
#  - two `spiral record` processes write different runs into one store at
#    the same time; both succeed and lose nothing;
#  - a recording killed with SIGKILL leaves the store consistent, and running
#    it again completes only what is missing;
#  - the README's Python snippet loads a state with sqlite3 + numpy only, and
#    it equals what `spiral export` writes;
#  - bad input gives clear errors;
#  - the same recording started twice at once: one row, and a writer that
#    fails says another process owns the recording (never a raw SQLite error);
#  - while a recording runs, a second `spiral record` of it fails at once
#    naming the owner's pid; killed with SIGKILL, it reads as 'interrupted'
#    (probe, analyze and report say so), and running it again finishes it;
#  - SIGTERM marks a recording interrupted, and running it again finishes it.
. "$(dirname "$0")/harness.sh"
PY=/usr/bin/python3
q() { sqlite3 "$dir/s.db" "$1"; }

"$SPIRAL" data make --store "$dir/s.db" --name dyck --family dyck --seed 2 >/dev/null || fail "data make"
for kind in spiral looped; do
    if [ $kind = spiral ]; then sched='[{"g": 4, "offset": 1}, 2, 1]'; else sched='[1, 1, 1]'; fi
    cat > "$dir/$kind.json" <<JSON
{"model": {"vocab_size": 7, "d_model": 32, "n_heads": 2, "d_ff": 48, "schedule": $sched},
 "train": {"dataset": "dyck", "seq_len": 48, "batch_size": 4, "steps": 10, "eval_every": 0,
           "checkpoint_every": 10}}
JSON
    "$SPIRAL" train --config "$dir/$kind.json" --store "$dir/s.db" --quiet >/dev/null 2>&1 || fail "train $kind"
done

# two writers at once
"$SPIRAL" record --run spiral --data dyck --store "$dir/s.db" --sequences 60 --quiet >"$dir/a.out" 2>&1 &
a=$!
"$SPIRAL" record --run looped --data dyck --store "$dir/s.db" --sequences 60 --quiet >"$dir/b.out" 2>&1 &
b=$!
wait $a && ok || fail "concurrent record 1: $(cat "$dir/a.out")"
wait $b && ok || fail "concurrent record 2: $(cat "$dir/b.out")"
n=$(q "SELECT count(DISTINCT seq) FROM record_sequences rs JOIN recordings r ON r.id = rs.recording_id")
[ "$n" = 60 ] && ok || fail "distinct sequences $n"
n=$(q "SELECT count(*) FROM record_sequences")
[ "$n" = 120 ] && ok || fail "sequences recorded by both writers: $n, expected 120"
# spiral: token t=0..3, latents at g=4 and g=2 (4), coda = 9 sites; looped: token 0..3 + coda = 5
n=$(q "SELECT count(*) FROM states")
[ "$n" = $((60 * 9 + 60 * 5)) ] && ok || fail "states $n, expected $((60 * 14))"

# SIGKILL in the middle, then complete only what is missing
"$SPIRAL" record --run spiral --data dyck --store "$dir/s.db" --split val --sequences 400 --batch 4 --quiet >/dev/null 2>&1 &
pid=$!
i=0
while [ $i -lt 400 ]; do
    n=$(q "SELECT count(*) FROM record_sequences rs JOIN recordings r ON r.id = rs.recording_id WHERE r.split='val'" 2>/dev/null)
    [ "${n:-0}" -ge 8 ] && break
    sleep 0.02; i=$((i + 1))
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
# its writer is gone: stored 'running', read as 'interrupted'
[ "$(q "SELECT status FROM recordings WHERE split = 'val'")" = running ] && ok || fail "stored status after SIGKILL"
"$SPIRAL" probe --run spiral --data dyck --split val --label depth --store "$dir/s.db" --quiet \
    >/dev/null 2>"$dir/err"; code=$?
[ $code = 1 ] && grep -q "status interrupted" "$dir/err" && ok ||
    fail "probe of a killed recording: exit $code: $(cat "$dir/err")"
"$SPIRAL" analyze --run spiral --data dyck --split val --store "$dir/s.db" --quiet >/dev/null 2>"$dir/err"; code=$?
[ $code = 1 ] && grep -q "is interrupted, not done" "$dir/err" && ok ||
    fail "analyze of a killed recording: exit $code: $(cat "$dir/err")"
"$SPIRAL" report --store "$dir/s.db" --split val --out "$dir/rep" >/dev/null 2>&1
grep -q "val, [0-9]* x [0-9]* tokens (interrupted)" "$dir/rep/report.md" && ok ||
    fail "the report does not show the killed recording as interrupted: $(grep -o 'val, .*tokens ([a-z]*)' "$dir/rep/report.md")"
partial=$(q "SELECT count(*) FROM record_sequences rs JOIN recordings r ON r.id = rs.recording_id WHERE r.split='val'")
[ "$partial" -lt 400 ] && ok || fail "recording finished before the kill"
q "PRAGMA integrity_check" | grep -q '^ok$' && ok || fail "integrity after SIGKILL"
orphans=$(q "SELECT count(*) FROM states s WHERE NOT EXISTS (SELECT 1 FROM record_sequences rs WHERE rs.recording_id = s.recording_id AND rs.seq = s.seq)")
[ "$orphans" = 0 ] && ok || fail "$orphans states of sequences not committed"
"$SPIRAL" record --run spiral --data dyck --store "$dir/s.db" --split val --sequences 400 --batch 4 --quiet >"$dir/out" 2>&1 || fail "re-record: $(cat "$dir/out")"
grep -q "$((400 - partial)) recorded now" "$dir/out" && ok || fail "re-record did more than the missing $((400 - partial)): $(cat "$dir/out")"
echo "killed after $partial of 400 sequences; the second run recorded the rest"

# the README's Python snippet vs spiral export
"$SPIRAL" export --store "$dir/s.db" --run spiral --data dyck --site latent_in --iteration 0 --out "$dir/z.npy" >/dev/null || fail "export"
cat > "$dir/snippet.py" <<'PY'
import sqlite3, sys
import numpy as np
db = sqlite3.connect(sys.argv[1])
rows, cols, dtype, blob = db.execute(
    "SELECT s.rows, s.cols, s.dtype, s.data FROM states s"
    " JOIN recordings r ON r.id = s.recording_id JOIN runs ON runs.id = r.run_id"
    " WHERE runs.name = ? AND r.split = 'test' AND s.seq = ? AND s.iteration = ? AND s.site = ?",
    ("spiral", 5, 0, "latent_in")).fetchone()
z = np.frombuffer(blob, dtype="<f4" if dtype == "f32" else "<f2").reshape(rows, cols)
exported = np.load(sys.argv[2])
seq = np.load(sys.argv[2].replace(".npy", ".seq.npy"))
assert np.array_equal(exported[seq == 5], z), "export differs from the snippet"
labels = np.load(sys.argv[2].replace(".npy", ".depth.npy"))
assert labels.shape == (exported.shape[0],) and labels.dtype == np.int32
print("snippet ok", z.shape)
PY
$PY "$dir/snippet.py" "$dir/s.db" "$dir/z.npy" >"$dir/py.out" 2>&1 && ok || fail "python snippet: $(cat "$dir/py.out")"

# bad input: clear error, nothing written
before=$(q "SELECT count(*) FROM recordings")
"$SPIRAL" record --run nope --data dyck --store "$dir/s.db" 2>"$dir/err" >/dev/null; code=$?
[ $code = 1 ] && grep -q "no run named 'nope'" "$dir/err" && ok || fail "unknown run: $code $(cat "$dir/err")"
"$SPIRAL" record --run spiral --data nope --store "$dir/s.db" 2>"$dir/err" >/dev/null; code=$?
[ $code = 1 ] && grep -q "no dataset named 'nope'" "$dir/err" && ok || fail "unknown dataset: $(cat "$dir/err")"
"$SPIRAL" record --run spiral --data dyck --store "$dir/none.db" 2>"$dir/err" >/dev/null; code=$?
[ $code = 1 ] && [ ! -e "$dir/none.db" ] && ok || fail "missing store: $(cat "$dir/err")"
"$SPIRAL" data make --store "$dir/s.db" --name wide --family text --text README.md >/dev/null 2>&1
"$SPIRAL" record --run spiral --data wide --store "$dir/s.db" 2>"$dir/err" >/dev/null; code=$?
[ $code = 1 ] && grep -q "vocabulary" "$dir/err" && ok || fail "vocab mismatch: $(cat "$dir/err")"
after=$(q "SELECT count(*) FROM recordings")
[ "$before" = "$after" ] && ok || fail "bad input created a recording"

# the same recording started twice at once: one recording row; each writer
# finishes it or fails saying another process owns it
for i in 1 2 3; do
    "$SPIRAL" record --run looped --data dyck --store "$dir/s.db" --split val --sequences 20 --quiet \
        >"$dir/twin1.out" 2>&1 &
    t1=$!
    "$SPIRAL" record --run looped --data dyck --store "$dir/s.db" --split val --sequences 20 --quiet \
        >"$dir/twin2.out" 2>&1 &
    t2=$!
    wait $t1; c1=$?
    wait $t2; c2=$?
    [ $c1 = 0 ] || [ $c2 = 0 ] && ok || fail "twin records both failed (round $i): $(cat "$dir/twin1.out" "$dir/twin2.out")"
    for k in 1 2; do
        if [ "$(eval echo \$c$k)" != 0 ]; then
            grep -q "is being written by another process (pid [0-9]*" "$dir/twin$k.out" &&
                ! grep -qi "sqlite\|database is locked" "$dir/twin$k.out" && ok ||
                fail "twin record $k (round $i) failed without naming the owner: $(cat "$dir/twin$k.out")"
        fi
    done
done
n=$(q "SELECT count(*) FROM recordings r JOIN runs u ON u.id = r.run_id WHERE r.split = 'val' AND u.name = 'looped'")
[ "$n" = 1 ] && ok || fail "twin records made $n recordings"
[ "$(q "SELECT r.status FROM recordings r JOIN runs u ON u.id = r.run_id WHERE r.split = 'val' AND u.name = 'looped'")" = done ] &&
    ok || fail "twin records did not finish the recording"

# a second writer while the first runs: refused at once, naming the owner
"$SPIRAL" record --run looped --data dyck --store "$dir/s.db" --split test_ood --sequences 400 --batch 4 \
    --quiet >"$dir/own.out" 2>&1 &
pid=$!
i=0
while [ $i -lt 600 ]; do
    n=$(q "SELECT count(*) FROM record_sequences rs JOIN recordings r ON r.id = rs.recording_id
           WHERE r.split = 'test_ood'" 2>/dev/null)
    [ "${n:-0}" -ge 4 ] && break
    sleep 0.05; i=$((i + 1))
done
"$SPIRAL" record --run looped --data dyck --store "$dir/s.db" --split test_ood --sequences 400 --batch 4 \
    --quiet >"$dir/second.out" 2>&1; code=$?
[ $code = 1 ] && grep -q "looped on dataset dyck (test_ood split) is being written by another process (pid $pid," \
    "$dir/second.out" && ok || fail "second writer: exit $code: $(cat "$dir/second.out")"
kill -0 $pid 2>/dev/null && ok || fail "the first writer stopped: $(cat "$dir/own.out")"
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
"$SPIRAL" probe --run looped --data dyck --split test_ood --label depth --store "$dir/s.db" --quiet \
    >/dev/null 2>"$dir/err"; code=$?
[ $code = 1 ] && grep -q "status interrupted" "$dir/err" && ok || fail "probe after kill -9: $(cat "$dir/err")"
"$SPIRAL" record --run looped --data dyck --store "$dir/s.db" --split test_ood --sequences 400 --batch 4 \
    --quiet >"$dir/own.out" 2>&1 && ok || fail "record after kill -9: $(cat "$dir/own.out")"
[ "$(q "SELECT status FROM recordings WHERE split = 'test_ood'")" = done ] && ok || fail "not done after the re-run"

# SIGTERM: the batch in progress is committed, the recording is marked
# interrupted (not left running), exit 130; the same command finishes it
"$SPIRAL" record --run looped --data dyck --store "$dir/s.db" --split train --sequences 400 --batch 4 \
    --quiet >"$dir/term.out" 2>&1 &
pid=$!
i=0
while [ $i -lt 600 ]; do
    n=$(q "SELECT count(*) FROM record_sequences rs JOIN recordings r ON r.id = rs.recording_id
           WHERE r.split = 'train'" 2>/dev/null)
    [ "${n:-0}" -ge 8 ] && break
    sleep 0.05; i=$((i + 1))
done
kill -TERM $pid
wait $pid
code=$?
status=$(q "SELECT status FROM recordings WHERE split = 'train'")
[ "$code" = 130 ] && [ "$status" = interrupted ] && grep -q "interrupted" "$dir/term.out" && ok ||
    fail "SIGTERM: exit $code, status '$status': $(cat "$dir/term.out")"
"$SPIRAL" record --run looped --data dyck --store "$dir/s.db" --split train --sequences 400 --batch 4 \
    --quiet >"$dir/term.out" 2>&1 && ok || fail "record after SIGTERM: $(cat "$dir/term.out")"
status=$(q "SELECT status FROM recordings WHERE split = 'train'")
n=$(q "SELECT count(*) FROM record_sequences rs JOIN recordings r ON r.id = rs.recording_id WHERE r.split = 'train'")
[ "$status" = done ] && [ "$n" = 400 ] && ok || fail "after SIGTERM and again: status '$status', $n sequences"

echo "record: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/sh
# Looking inside the loop, end to end with the spiral binary:
#  - train.keep_steps keeps checkpoints off the checkpoint_every grid, and
#    bad keep_steps are refused naming the field;
#  - record and eval take --step N (the checkpoint at or before N), recordings
#    of two steps live side by side, and an unknown step lists the steps;
#  - eval --schedule: the trained schedule gives the same loss, another one
#    a different loss, and bad schedules are refused with clear messages.
. "$(dirname "$0")/harness.sh"
q() { sqlite3 "$dir/s.db" "$1"; }

"$SPIRAL" data make --store "$dir/s.db" --name dyck --family dyck --seed 2 >/dev/null || fail "data make"
for kind in spiral looped; do
    if [ $kind = spiral ]; then sched='[4, 2, 1]'; else sched='[1, 1, 1]'; fi
    cat > "$dir/$kind.json" <<JSON
{"model": {"vocab_size": 7, "d_model": 32, "n_heads": 2, "d_ff": 48, "schedule": $sched},
 "train": {"dataset": "dyck", "seq_len": 48, "batch_size": 4, "steps": 30, "eval_every": 0,
           "checkpoint_every": 20, "lr": 0.01, "keep_steps": [3, 7]}}
JSON
    "$SPIRAL" train --config "$dir/$kind.json" --store "$dir/s.db" --quiet >/dev/null 2>&1 || fail "train $kind"
done

# keep_steps: checkpoints at 3, 7 (kept), 20 (checkpoint_every), 30 (the end)
steps=$(q "SELECT group_concat(step) FROM (SELECT c.step FROM checkpoints c JOIN runs r ON r.id = c.run_id WHERE r.name = 'spiral' ORDER BY c.step)")
[ "$steps" = "3,7,20,30" ] && ok || fail "checkpoint steps $steps, expected 3,7,20,30"
for bad in '[0]:keep_steps\[0\]: expected a step in \[1, 30\]' '[5, 4]:keep_steps\[1\]: expected steps in increasing order' \
           '[31]:keep_steps\[0\]: expected a step in \[1, 30\]' '"5":train.keep_steps: expected an array' '[1.5]:keep_steps\[0\]: expected an integer'; do
    value=${bad%%:*} pattern=${bad#*:}
    sed "s/\"keep_steps\": \[3, 7\]/\"keep_steps\": $value/; s/\"dataset\": \"dyck\"/\"dataset\": \"dyck\"/" "$dir/spiral.json" > "$dir/bad.json"
    expect 1 "$pattern" "$SPIRAL" train --config "$dir/bad.json" --store "$dir/s.db" --name bad --quiet
done

# record --step: two recordings of one run side by side, each saying its step
"$SPIRAL" record --run spiral --data dyck --store "$dir/s.db" --sequences 4 --quiet > "$dir/r1.out" 2>&1 || fail "record last: $(cat "$dir/r1.out")"
"$SPIRAL" record --run spiral --data dyck --store "$dir/s.db" --sequences 4 --step 10 --quiet > "$dir/r2.out" 2>&1 || fail "record step 10: $(cat "$dir/r2.out")"
grep -q "at step 30" "$dir/r1.out" && ok || fail "record last: $(cat "$dir/r1.out")"
grep -q "at step 7" "$dir/r2.out" && ok || fail "record --step 10 took step 7: $(cat "$dir/r2.out")"
steps=$(q "SELECT group_concat(checkpoint_step) FROM (SELECT checkpoint_step FROM recordings r JOIN runs ON runs.id = r.run_id WHERE runs.name = 'spiral' ORDER BY checkpoint_step)")
[ "$steps" = "7,30" ] && ok || fail "recording steps $steps, expected 7,30"
n=$(q "SELECT count(DISTINCT recording_id) FROM states")
[ "$n" = 2 ] && ok || fail "states of $n recordings, expected 2"
expect 1 "no checkpoint at or before step 2 (its checkpoints are at steps: 3, 7, 20, 30)" \
    "$SPIRAL" record --run spiral --data dyck --store "$dir/s.db" --sequences 4 --step 2 --quiet
expect 2 "\-\-step" "$SPIRAL" record --run spiral --data dyck --store "$dir/s.db" --step x

# a version 3 store (recordings keyed by run, dataset and split) opens,
# migrates and keeps its recordings' states; then takes a second step
sqlite3 "$dir/s.db" ".backup '$dir/old.db'"
sqlite3 "$dir/old.db" "PRAGMA foreign_keys=OFF; BEGIN;
  CREATE TABLE rec3(id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE, split TEXT NOT NULL,
    seq_len INTEGER NOT NULL, n_sequences INTEGER NOT NULL, dtype TEXT NOT NULL,
    checkpoint_step INTEGER NOT NULL, d_model INTEGER NOT NULL, distances TEXT NOT NULL,
    status TEXT NOT NULL, created TEXT NOT NULL DEFAULT (datetime('now')),
    UNIQUE(run_id, dataset_id, split));
  INSERT INTO rec3 SELECT * FROM recordings WHERE checkpoint_step = 30;
  DELETE FROM states WHERE recording_id NOT IN (SELECT id FROM rec3);
  DELETE FROM attention_stats WHERE recording_id NOT IN (SELECT id FROM rec3);
  DELETE FROM record_sequences WHERE recording_id NOT IN (SELECT id FROM rec3);
  DROP TABLE recordings; ALTER TABLE rec3 RENAME TO recordings;
  ALTER TABLE probe_results DROP COLUMN test_counts;
  DROP TABLE lens_results; DELETE FROM schema_version WHERE version > 3; COMMIT;" || fail "making a version 3 store"
before=$(sqlite3 "$dir/old.db" "SELECT count(*) FROM states")
expect 1 "schema version 3 is older" "$SPIRAL" runs --store "$dir/old.db"
"$SPIRAL" record --run spiral --data dyck --store "$dir/old.db" --sequences 4 --step 7 --quiet > "$dir/m.out" 2>&1 || fail "record into the old store: $(cat "$dir/m.out")"
v=$(sqlite3 "$dir/old.db" "SELECT max(version) FROM schema_version")
[ "$v" = 6 ] && ok || fail "migrated version $v"
n=$(sqlite3 "$dir/old.db" "SELECT count(*) FROM states s JOIN recordings r ON r.id = s.recording_id WHERE r.checkpoint_step = 30")
[ "$n" = "$before" ] && [ "$n" -gt 0 ] && ok || fail "old recording's states after migration: $n, expected $before"
n=$(sqlite3 "$dir/old.db" "SELECT count(*) FROM recordings")
[ "$n" = 2 ] && ok || fail "recordings after the migration and a second step: $n"
n=$(sqlite3 "$dir/old.db" "PRAGMA foreign_key_check" | wc -l)
[ "$n" = 0 ] && ok || fail "foreign key violations after migration: $n"

# eval --run --step: different checkpoints, different losses; the same
# checkpoint through --weights gives the same loss
python3 - "$dir/seq.u16" <<'PY'
import struct, sys
toks = [1, 2, 1, 3, 4, 2, 1, 2, 3, 4, 1, 1, 2, 2, 3, 4, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 1, 2, 3, 4, 5, 6, 1, 1, 2, 2]
open(sys.argv[1], "wb").write(struct.pack("<%dH" % len(toks), *toks))
PY
loss() { "$SPIRAL" eval "$@" --tokens "$dir/seq.u16" 2>&1 | sed -n 's/^loss \([0-9.]*\) nats.*/\1/p'; }
l30=$(loss --run spiral --store "$dir/s.db")
l7=$(loss --run spiral --store "$dir/s.db" --step 7)
w30=$(loss --weights "$dir/checkpoints/spiral/step_00000030.safetensors")
[ -n "$l30" ] && [ "$l30" = "$w30" ] && ok || fail "eval --run ($l30) != eval --weights ($w30)"
[ -n "$l7" ] && [ "$l7" != "$l30" ] && ok || fail "eval --step 7 ($l7) equals the last step ($l30)"
expect 1 "no checkpoint at or before step 1 " "$SPIRAL" eval --run spiral --store "$dir/s.db" --step 1 --tokens "$dir/seq.u16"
expect 2 "give --weights, or --run with --store" "$SPIRAL" eval --tokens "$dir/seq.u16"

# eval --run --step without a sequence: the validation windows at that checkpoint
"$SPIRAL" eval --store "$dir/s.db" --run spiral --step 10 > "$dir/ev.out" 2>&1 || fail "eval --run --step: $(cat "$dir/ev.out")"
grep -q "checkpoint of step 7: val loss" "$dir/ev.out" && ! grep -q "stored val loss" "$dir/ev.out" && ok || fail "eval --run --step 10: $(cat "$dir/ev.out")"

# test-time depth: the trained schedule reproduces the loss; another schedule changes it
s1=$(loss --run spiral --store "$dir/s.db" --schedule 4,2,1)
[ "$s1" = "$l30" ] && ok || fail "--schedule 4,2,1 ($s1) != trained ($l30)"
s2=$(loss --run spiral --store "$dir/s.db" --schedule 4,2,1,1,1)
[ -n "$s2" ] && [ "$s2" != "$l30" ] && ok || fail "--schedule 4,2,1,1,1 ($s2) vs trained ($l30)"
s3=$(loss --run looped --store "$dir/s.db" --schedule 1)
[ -n "$s3" ] && ok || fail "looped --schedule 1"
expect 1 "entry 2 is g = 0" "$SPIRAL" eval --run spiral --store "$dir/s.db" --schedule 4,0,1 --tokens "$dir/seq.u16"
expect 1 "entry 2 of '4,x,1' is not an integer" "$SPIRAL" eval --run spiral --store "$dir/s.db" --schedule 4,x,1 --tokens "$dir/seq.u16"
expect 1 "expected chunk sizes" "$SPIRAL" eval --run spiral --store "$dir/s.db" --schedule 4,,1 --tokens "$dir/seq.u16"
expect 1 "iteration 1 has g = 8, but no trained iteration has g = 8" "$SPIRAL" eval --run spiral --store "$dir/s.db" --schedule 4,8,1 --tokens "$dir/seq.u16"

# spiral lens: coda and head rows for t = 0 .. 3, slot rows 4 + 2 + 1, depth rows 1 .. 5
"$SPIRAL" lens --run spiral --data dyck --store "$dir/s.db" --sequences 6 --depths 5 --quiet > "$dir/lens.out" 2>&1 || fail "lens: $(cat "$dir/lens.out")"
n=$(q "SELECT group_concat(mode || ':' || c) FROM (SELECT mode, count(*) AS c FROM lens_results GROUP BY mode ORDER BY mode)")
[ "$n" = "coda:4,depth:5,head:4,slot:7" ] && ok || fail "lens rows by mode: $n"
# t = T through the coda is the model itself: its delta is exactly 0, and the
# depth row with the trained schedule has the same loss
n=$(q "SELECT count(*) FROM lens_results WHERE mode = 'coda' AND iteration = 3 AND delta = 0 AND delta_lo = 0 AND delta_hi = 0")
[ "$n" = 1 ] && ok || fail "coda exit at T: delta not exactly 0"
n=$(q "SELECT count(*) FROM lens_results a JOIN lens_results b ON a.run_id = b.run_id WHERE a.mode = 'coda' AND a.iteration = 3 AND b.mode = 'depth' AND b.iteration = 3 AND a.loss = b.loss AND b.row_schedule = '4,2,1'")
[ "$n" = 1 ] && ok || fail "depth 3 (the trained schedule) differs from the model's loss"
grep -q "schedule 4,2,1" "$dir/lens.out" && grep -q "test-time depth" "$dir/lens.out" && ok || fail "lens output: $(cat "$dir/lens.out")"
# the lens at an earlier step, with another schedule: rows side by side
"$SPIRAL" lens --run spiral --data dyck --store "$dir/s.db" --sequences 6 --step 7 --schedule 4,2,1,1 --quiet > "$dir/lens2.out" 2>&1 || fail "lens --step: $(cat "$dir/lens2.out")"
n=$(q "SELECT count(DISTINCT checkpoint_step || schedule) FROM lens_results")
[ "$n" = 2 ] && ok || fail "lens keys: $n, expected 2"
expect 1 "no checkpoint at or before step 1 " "$SPIRAL" lens --run spiral --data dyck --store "$dir/s.db" --step 1 --quiet
expect 1 "entry 1 is g = 0" "$SPIRAL" lens --run spiral --data dyck --store "$dir/s.db" --schedule 0 --quiet
expect 1 "no run named 'nope'" "$SPIRAL" lens --run nope --data dyck --store "$dir/s.db" --quiet
expect 2 "\-\-run, \-\-data and \-\-store are required" "$SPIRAL" lens --run spiral --store "$dir/s.db"
# --device cpu is the default engine: the same tables; --device cuda needs a
# CUDA build (the GPU lens is proven in tests/cuda_train.sh)
"$SPIRAL" lens --run spiral --data dyck --store "$dir/s.db" --sequences 6 --depths 5 --device cpu --quiet > "$dir/lens_cpu.out" 2>&1 || fail "lens --device cpu: $(cat "$dir/lens_cpu.out")"
cmp -s "$dir/lens.out" "$dir/lens_cpu.out" && ok || fail "lens --device cpu differs from the default"
expect 1 "built without CUDA" "$SPIRAL" lens --run spiral --data dyck --store "$dir/s.db" --device cuda --quiet
expect 1 "the CPU engine computes in fp32 only" "$SPIRAL" lens --run spiral --data dyck --store "$dir/s.db" --precision bf16 --quiet
# interventions in eval: patching a sequence with itself gives the same
# logits bit for bit; ablating an iteration changes the loss
"$SPIRAL" eval --run spiral --store "$dir/s.db" --tokens "$dir/seq.u16" --logits "$dir/plain.npy" > /dev/null 2>&1 || fail "eval plain"
"$SPIRAL" eval --run spiral --store "$dir/s.db" --tokens "$dir/seq.u16" --patch 1 --source "$dir/seq.u16" --logits "$dir/self.npy" > "$dir/p.out" 2>&1 || fail "eval patch self: $(cat "$dir/p.out")"
cmp -s "$dir/plain.npy" "$dir/self.npy" && ok || fail "patching a sequence with itself changed the logits"
"$SPIRAL" eval --run spiral --store "$dir/s.db" --tokens "$dir/seq.u16" --patch 0 --source "$dir/seq.u16" --positions 3:9 --logits "$dir/self2.npy" > /dev/null 2>&1 || fail "eval patch self positions"
cmp -s "$dir/plain.npy" "$dir/self2.npy" && ok || fail "patching positions 3:9 with themselves changed the logits"
a=$(loss --run spiral --store "$dir/s.db" --ablate 0)
[ -n "$a" ] && [ "$a" != "$l30" ] && ok || fail "ablating iteration 0 left the loss at $a"
m=$(loss --run spiral --store "$dir/s.db" --ablate-level 2 --ablate-mode mean)
[ -n "$m" ] && [ "$m" != "$l30" ] && ok || fail "mean ablation of level 2 left the loss at $m"
python3 -c "import sys; open(sys.argv[1], 'wb').write(open(sys.argv[2], 'rb').read()[:20])" "$dir/short.u16" "$dir/seq.u16"
expect 1 "iteration 3 is out of range (the model has iterations 0 .. 2)" "$SPIRAL" eval --run spiral --store "$dir/s.db" --tokens "$dir/seq.u16" --ablate 3
expect 1 "no iteration has chunk size g = 8" "$SPIRAL" eval --run spiral --store "$dir/s.db" --tokens "$dir/seq.u16" --ablate-level 8
expect 1 "the patch source must have the sequence's length" "$SPIRAL" eval --run spiral --store "$dir/s.db" --tokens "$dir/seq.u16" --patch 0 --source "$dir/short.u16"
# no gradient under an intervention: refused before any pass, nothing written
expect 1 "no gradient with an intervention" "$SPIRAL" eval --run spiral --store "$dir/s.db" --tokens "$dir/seq.u16" --ablate 0 --grads "$dir/iv_grads.safetensors"
[ ! -e "$dir/iv_grads.safetensors" ] && ok || fail "eval --ablate --grads wrote a gradient file"
expect 1 "needs --source" "$SPIRAL" eval --run spiral --store "$dir/s.db" --tokens "$dir/seq.u16" --patch 0
expect 1 "is not a range of positions" "$SPIRAL" eval --run spiral --store "$dir/s.db" --tokens "$dir/seq.u16" --patch 0 --source "$dir/seq.u16" --positions 30:90
expect 2 "expected A:B" "$SPIRAL" eval --run spiral --store "$dir/s.db" --tokens "$dir/seq.u16" --patch 0 --source "$dir/seq.u16" --positions 3-9
expect 2 "one of --ablate, --ablate-level and --patch" "$SPIRAL" eval --run spiral --store "$dir/s.db" --tokens "$dir/seq.u16" --ablate 0 --patch 1
expect 2 "expected zero or mean" "$SPIRAL" eval --run spiral --store "$dir/s.db" --tokens "$dir/seq.u16" --ablate 0 --ablate-mode half

# lens --ablate-each: a row per iteration and per level; zeroing the last
# (residual) iteration's update is exactly the exit after T - 1
"$SPIRAL" lens --run spiral --data dyck --store "$dir/s.db" --sequences 6 --ablate-each --quiet > "$dir/ab.out" 2>&1 || fail "lens --ablate-each: $(cat "$dir/ab.out")"
n=$(q "SELECT count(*) FROM lens_results WHERE checkpoint_step = 30 AND mode = 'ablate'")-$(q "SELECT count(*) FROM lens_results WHERE checkpoint_step = 30 AND mode = 'ablate_level'")
[ "$n" = "3-3" ] && ok || fail "ablation rows (iterations-levels): $n"
n=$(q "SELECT count(*) FROM lens_results a JOIN lens_results c ON a.run_id = c.run_id AND a.checkpoint_step = c.checkpoint_step AND a.schedule = c.schedule WHERE a.mode = 'ablate' AND a.iteration = 2 AND c.mode = 'coda' AND c.iteration = 2 AND c.intervention = 'none' AND a.loss = c.loss AND a.delta > -1")
[ "$n" = 1 ] && ok || fail "ablating the last iteration is not the exit after T - 1"
n=$(q "SELECT count(*) FROM lens_results WHERE mode = 'ablate' AND iteration = 0 AND delta != 0")
[ "$n" = 1 ] && ok || fail "ablating iteration 0 did not change the loss"
"$SPIRAL" lens --run spiral --data dyck --store "$dir/s.db" --sequences 6 --ablate 1 --quiet > "$dir/ab1.out" 2>&1 || fail "lens --ablate 1: $(cat "$dir/ab1.out")"
n=$(q "SELECT count(*) FROM lens_results WHERE intervention = 'ablate 1 zero' AND mode = 'coda'")
[ "$n" = 4 ] && ok || fail "lens --ablate 1 rows: $n"
# lens --patch: iteration 1's update at positions 10..29 from a source sequence
python3 -c "import struct, sys; open(sys.argv[1], 'wb').write(struct.pack('<48H', *([1, 2, 3, 4, 5, 6] * 8)))" "$dir/src.u16"
"$SPIRAL" lens --run spiral --data dyck --store "$dir/s.db" --sequences 6 --patch 1 --source "$dir/src.u16" --positions 10:30 --quiet > "$dir/pl.out" 2>&1 || fail "lens --patch: $(cat "$dir/pl.out")"
n=$(q "SELECT count(*) FROM lens_results WHERE intervention = 'patch 1 positions 10:30' AND mode = 'coda'")
[ "$n" = 4 ] && ok || fail "lens --patch rows: $n"
expect 1 "the patch source needs at least the windows' 48" "$SPIRAL" lens --run spiral --data dyck --store "$dir/s.db" --patch 1 --source "$dir/short.u16" --quiet
expect 2 "\-\-source goes with \-\-patch" "$SPIRAL" lens --run spiral --data dyck --store "$dir/s.db" --source "$dir/src.u16" --quiet
expect 1 "iteration 3 is out of range" "$SPIRAL" lens --run spiral --data dyck --store "$dir/s.db" --ablate 3 --quiet
expect 1 "no checkpoint at or before step 2 " "$SPIRAL" lens --run spiral --data dyck --store "$dir/s.db" --ablate-each --step 2 --quiet

# the report draws the lens figure
"$SPIRAL" report --store "$dir/s.db" --out "$dir/rep" > "$dir/rep.out" 2>&1 || fail "report: $(cat "$dir/rep.out")"
[ -s "$dir/rep/lens.png" ] && grep -q "^spiral,coda,3," "$dir/rep/lens.csv" && grep -q "^spiral,ablate,0," "$dir/rep/lens.csv" && ok || fail "lens figure missing"

echo "lens: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/sh
# Topology mesh end to end with the spiral binary, on a tiny trained run:
#  - train, record: every memory slot is a recorded site memory.B at every
#    iteration (token level), beside the usual sites;
#  - export writes a memory site (the rows equal the store's BLOBs) and
#    rejects a slot the run lacks, a step it has no memory at, a run
#    without memory;
#  - probe fits the memory sites like the others; analyze accepts the run;
#    report lists their probes;
#  - info counts the routers; match derives looped (mesh) and dense
#    (residual) baselines whose run files train;
#  - --device cuda is refused for mesh with an error naming the topology;
#  - bad mesh_slots values: errors naming the field.
. "$(dirname "$0")/harness.sh"
PY=/usr/bin/python3
q() { sqlite3 "$dir/s.db" "$1"; }

"$SPIRAL" data make --store "$dir/s.db" --name dyck --family dyck --seed 2 >/dev/null || fail "data make"
cat > "$dir/mesh.json" <<JSON
{"model": {"vocab_size": 7, "d_model": 16, "n_heads": 2, "d_ff": 24, "topology": "mesh", "mesh_slots": 3,
           "schedule": [{"g": 4, "offset": 1}, {"g": 2, "shift": 3}, 1]},
 "train": {"dataset": "dyck", "seq_len": 32, "batch_size": 4, "steps": 10, "eval_every": 0,
           "checkpoint_every": 10}}
JSON
"$SPIRAL" train --config "$dir/mesh.json" --store "$dir/s.db" --quiet >"$dir/out" 2>&1 || fail "train: $(cat "$dir/out")"
"$SPIRAL" record --run mesh --data dyck --store "$dir/s.db" --sequences 30 --quiet >"$dir/out" 2>&1 ||
    fail "record: $(cat "$dir/out")"

# sites: token 0..3, latents at iterations 0 and 1 (4), coda, 3 slots x 3 iterations
n=$(q "SELECT count(DISTINCT site || ':' || iteration || ':' || scale) FROM states")
[ "$n" = $((4 + 4 + 1 + 9)) ] && ok || fail "distinct sites $n, expected 18"
n=$(q "SELECT count(*) FROM states WHERE site LIKE 'memory.%' AND scale = 1 AND rows = 32 AND cols = 16")
[ "$n" = $((30 * 9)) ] && ok || fail "memory states $n, expected 30 sequences x 9"
n=$(q "SELECT group_concat(DISTINCT site) FROM (SELECT site FROM states WHERE site LIKE 'memory.%' ORDER BY site)")
[ "$n" = "memory.0,memory.1,memory.2" ] && ok || fail "memory sites: $n"
n=$(q "SELECT group_concat(DISTINCT iteration) FROM (SELECT iteration FROM states WHERE site = 'memory.1' ORDER BY iteration)")
[ "$n" = "0,1,2" ] && ok || fail "memory.1 steps: $n"

# export a memory site; the rows are the store's BLOBs
"$SPIRAL" export --store "$dir/s.db" --run mesh --data dyck --site memory.2 --iteration 1 --out "$dir/m.npy" \
    >"$dir/out" 2>&1 && ok || fail "export memory.2: $(cat "$dir/out")"
grep -q "(960, 16) float32, memory.2 iteration 1 scale 1 of 30 sequences" "$dir/out" && ok || fail "export: $(cat "$dir/out")"
cat > "$dir/check.py" <<'PY'
import sqlite3, sys
import numpy as np
db = sqlite3.connect(sys.argv[1])
exported = np.load(sys.argv[2])
seq = np.load(sys.argv[2].replace(".npy", ".seq.npy"))
for s, blob in db.execute("SELECT seq, data FROM states WHERE site = 'memory.2' AND iteration = 1"):
    assert np.array_equal(exported[seq == s], np.frombuffer(blob, "<f4").reshape(32, 16)), s
print("memory export ok")
PY
$PY "$dir/check.py" "$dir/s.db" "$dir/m.npy" >"$dir/py.out" 2>&1 && ok || fail "export vs store: $(cat "$dir/py.out")"
expect 1 "memory slots are memory.0 .. memory.2 (mesh_slots 3)" \
    "$SPIRAL" export --store "$dir/s.db" --run mesh --data dyck --site memory.3 --iteration 1 --out "$dir/x.npy"
expect 1 "records its memory at steps 0..2" \
    "$SPIRAL" export --store "$dir/s.db" --run mesh --data dyck --site memory.0 --iteration 3 --out "$dir/x.npy"
expect 2 "expected token, latent_in, latent_out, coda or memory.B, got 'memory.01'" \
    "$SPIRAL" export --store "$dir/s.db" --run mesh --data dyck --site memory.01 --iteration 0 --out "$dir/x.npy"

# probe: the memory sites get their rows like the others
"$SPIRAL" probe --run mesh --data dyck --store "$dir/s.db" --label depth --quiet >"$dir/out" 2>"$dir/err" ||
    fail "probe: $(cat "$dir/err")"
n=$(grep -cE "^depth +memory\.[012] +[012] +1 +[01]\.[0-9]{3} \[" "$dir/out")
[ "$n" = 9 ] && ok || fail "probe memory lines: $n, expected 9: $(cat "$dir/out")"
n=$(q "SELECT count(*) FROM probe_results WHERE site LIKE 'memory.%'")
[ "$n" = 54 ] && ok || fail "probe_results memory rows $n, expected 9 x 6 controls"
"$SPIRAL" analyze --run mesh --data dyck --store "$dir/s.db" --quiet >"$dir/out" 2>&1 && ok || fail "analyze: $(cat "$dir/out")"

"$SPIRAL" report --store "$dir/s.db" --runs mesh --out "$dir/report" >"$dir/out" 2>&1 && ok || fail "report: $(cat "$dir/out")"
n=$(grep -c "^| depth | memory\.[012] | [012] | 1 |" "$dir/report/report.md")
[ "$n" = 9 ] && ok || fail "report's probe table: $n memory rows, expected 9"

# a run without memory
cat > "$dir/plain.json" <<JSON
{"model": {"vocab_size": 7, "d_model": 16, "n_heads": 2, "d_ff": 24, "schedule": [2, 1]},
 "train": {"dataset": "dyck", "seq_len": 32, "batch_size": 4, "steps": 2, "eval_every": 0, "checkpoint_every": 2}}
JSON
"$SPIRAL" train --config "$dir/plain.json" --store "$dir/s.db" --quiet >/dev/null 2>&1 || fail "train plain"
"$SPIRAL" record --run plain --data dyck --store "$dir/s.db" --sequences 4 --quiet >/dev/null 2>&1 || fail "record plain"
n=$(q "SELECT count(*) FROM states s JOIN recordings r ON r.id = s.recording_id JOIN runs u ON u.id = r.run_id WHERE u.name = 'plain' AND s.site LIKE 'memory%'")
[ "$n" = 0 ] && ok || fail "a residual run recorded $n memory states"
expect 1 "no memory slots (topology residual, not mesh)" \
    "$SPIRAL" export --store "$dir/s.db" --run plain --data dyck --site memory.0 --iteration 0 --out "$dir/x.npy"

# info and match
"$SPIRAL" info --config "$dir/mesh.json" >"$dir/out" 2>&1 || fail "info: $(cat "$dir/out")"
grep -q "topology mesh (3 memory slots)" "$dir/out" && ok || fail "info topology: $(cat "$dir/out")"
mkdir "$dir/matched"
"$SPIRAL" match --config "$dir/mesh.json" --out-dir "$dir/matched" >"$dir/match" 2>&1 && ok || fail "match: $(cat "$dir/match")"
grep -q '"topology": "mesh"' "$dir/matched/mesh-looped.json" && grep -q '"mesh_slots": 3' "$dir/matched/mesh-looped.json" &&
    ok || fail "looped baseline lost the memory: $(cat "$dir/matched/mesh-looped.json")"
grep -q '"topology": "residual"' "$dir/matched/mesh-dense-flops.json" && ! grep -q mesh_slots "$dir/matched/mesh-dense-flops.json" &&
    ok || fail "dense baseline: $(cat "$dir/matched/mesh-dense-flops.json")"
for base in looped dense-flops; do
    "$SPIRAL" train --config "$dir/matched/mesh-$base.json" --store "$dir/s.db" --quiet >"$dir/out" 2>&1 && ok ||
        fail "the derived $base run file does not train: $(cat "$dir/out")"
done
n=$(q "SELECT kind FROM runs WHERE name = 'mesh-looped'")
[ "$n" = looped ] && ok || fail "derived looped kind: $n"

# the CUDA engine refuses mesh; bad slot counts name the field
# (a build without CUDA says so first; engine_open's own refusal: test_model)
expect 1 "does not implement topology mesh\|built without CUDA" \
    "$SPIRAL" train --config "$dir/mesh.json" --store "$dir/s.db" --name mesh-gpu --device cuda --quiet
n=$(q "SELECT count(*) FROM runs WHERE name = 'mesh-gpu'")
[ "$n" = 0 ] && ok || fail "a refused run was created"
for bad in '"topology": "mesh", "mesh_slots": 1' '"topology": "mesh", "mesh_slots": 65' '"mesh_slots": 8'; do
    echo "{$bad}" > "$dir/bad.json"
    expect 1 "model.mesh_slots: " "$SPIRAL" info --config "$dir/bad.json"
done

echo "mesh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

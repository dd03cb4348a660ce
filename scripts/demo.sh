#!/bin/sh
# make demo: the main job end to end on a small embedded default.
#   1. a synthetic hierarchical language (PCFG) with gold labels and its
#      exact entropy floor;
#   2. spiral, looped and dense models (examples/demo/*.json) trained on it;
#   3. every iteration's hidden states recorded into the store;
#   4. a comparison table read back from the store with sqlite3.
# Everything lands in build/demo/runs.db (delete it to start over; an
# interrupted demo resumes where it stopped).
set -e
SPIRAL=${1:-build/spiral}
out=${DEMO_DIR:-build/demo}
store="$out/runs.db"
mkdir -p "$out"
has() { [ -n "$(sqlite3 "$store" "$1" 2>/dev/null)" ]; }

echo "== 1. dataset: layered PCFG (data/synth_pcfg.h), seed 1"
if has "SELECT 1 FROM datasets WHERE name='pcfg'"; then echo "(already in $store)"
else "$SPIRAL" data make --store "$store" --name pcfg --family pcfg --seed 1; fi
"$SPIRAL" data show --store "$store" --name pcfg --doc 0 --max-tokens 8 --labels l2.symbol,l2.end,l3.symbol

for kind in spiral looped dense; do
    echo
    echo "== 2. train $kind (examples/demo/$kind.json)"
    "$SPIRAL" info --config "examples/demo/$kind.json" --seq-len 64 | sed -n '1p;/^parameters/p;/^training FLOPs/p'
    status=$(sqlite3 "$store" "SELECT status FROM runs WHERE name='$kind'" 2>/dev/null || true)
    case "$status" in
        done) echo "(already trained)" ;;
        "") "$SPIRAL" train --config "examples/demo/$kind.json" --store "$store" --name $kind ;;
        *) "$SPIRAL" train --resume $kind --store "$store" ;;
    esac
    echo "== 3. record $kind: hidden states of 100 test sequences"
    "$SPIRAL" record --run $kind --data pcfg --store "$store" --sequences 100 --quiet
done

echo
echo "== 4. results (nats/token on the val split; entropy floor and n-gram baselines above)"
sqlite3 -header -column "$store" "
  SELECT runs.name AS run, runs.kind, m.step, printf('%.4f', m.val_loss) AS val_loss,
         printf('%.3g', m.flops) AS train_flops, printf('%.1f', m.wall_seconds) AS seconds
  FROM runs JOIN metrics m ON m.run_id = runs.id
  WHERE m.step = (SELECT max(step) FROM metrics WHERE run_id = runs.id) ORDER BY runs.id"
sqlite3 -header -column "$store" "
  SELECT runs.name AS run, s.site, count(DISTINCT s.iteration) AS iterations,
         group_concat(DISTINCT s.scale) AS scales, printf('%.1f', sum(length(s.data)) / 1e6) AS MB
  FROM states s JOIN recordings r ON r.id = s.recording_id JOIN runs ON runs.id = r.run_id
  GROUP BY runs.name, s.site ORDER BY runs.id, s.site"
echo
echo "demo: store at $store (schema in README, \"The experiment store\")"

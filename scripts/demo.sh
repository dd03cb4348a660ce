#!/bin/sh
# make demo: the main job end to end on a small embedded default.
#   1. a synthetic hierarchical language (PCFG) with gold labels and its
#      exact entropy floor;
#   2. spiral, looped and dense models (examples/demo/*.json) trained on it;
#   3. every iteration's hidden states recorded into the store;
#   4. linear probes with controls for the grammar's levels, the paper's
#      attention analysis and loop diagnostics;
#   5. the report: gnuplot figures and an HTML page.
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
echo "== 4. probes: grammar levels, per iteration and scale, with five controls"
for kind in spiral looped dense; do
    "$SPIRAL" probe --run $kind --data pcfg --store "$store" \
        --label l2.symbol,l3.symbol,l4.symbol,l2.end,l3.end,gen.lag1 --quiet | tail -n 12
done
echo
echo "== 5. attention (global-to-local), loop diagnostics, CKA"
"$SPIRAL" analyze --run spiral,looped,dense --data pcfg --store "$store" | sed -n '1,16p'
echo
echo "== 6. comparison"
"$SPIRAL" compare --store "$store" --runs spiral,looped,dense | sed -n '1,5p;/^equal /,$p'
echo
"$SPIRAL" report --store "$store" --out "$out/report"
echo "demo: report at $out/report/index.html (store: $store)"

#!/bin/sh
# Trains spiral, looped and dense on a synthetic language (Dyck) and on the
# King James Bible, then prints each run's final validation loss beside the
# dataset's entropy floor and n-gram baselines. README "Training" shows its
# output. Usage: sh examples/train_all.sh [STORE] (default build/study/runs.db)
set -e
SPIRAL=${SPIRAL:-build/spiral}
store=${1:-build/study/runs.db}
mkdir -p "$(dirname "$store")"
for ds in dyck kjv; do
    "$SPIRAL" data make --store "$store" --name $ds --family $ds --seed 1 2>/dev/null ||
        echo "(dataset $ds already in $store)"
done
for ds in dyck kjv; do
    for kind in spiral looped dense; do
        run=$ds-$kind
        if [ "$(sqlite3 "$store" "SELECT status FROM runs WHERE name='$run'")" = done ]; then continue; fi
        if sqlite3 "$store" "SELECT 1 FROM runs WHERE name='$run'" | grep -q 1; then
            "$SPIRAL" train --resume $run --store "$store" --quiet
        else
            "$SPIRAL" train --config examples/runs/$run.json --store "$store" --quiet
        fi
    done
done
echo
sqlite3 -header -column "$store" "
  SELECT runs.name AS run, runs.kind,
         printf('%.4f', m.val_loss) AS val_loss, printf('%.1f', m.wall_seconds) AS seconds,
         printf('%.3g', m.flops) AS train_flops
  FROM runs JOIN metrics m ON m.run_id = runs.id
  WHERE m.step = (SELECT max(step) FROM metrics WHERE run_id = runs.id) ORDER BY runs.id"

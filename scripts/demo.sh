#!/bin/sh
# make demo: what spiral can do today, end to end on a small embedded default.
# (Training, recording, probing and reports arrive with later issues; until
# then the demo initializes the three model kinds, compares their cost, and
# scores a text with each, writing logits and gradients.)
set -e
SPIRAL=${1:-build/spiral}
out=${DEMO_DIR:-build/demo}
mkdir -p "$out"
# the first 2 KB of the README: short enough that the demo takes seconds
text="$out/sample.txt"
head -c 2048 README.md > "$text"
for kind in spiral looped dense; do
    echo "== $kind (examples/$kind.json)"
    "$SPIRAL" info --config "examples/$kind.json" --seq-len 256 | sed -n '1,2p;/^total/p'
    "$SPIRAL" init --config "examples/$kind.json" --seed 1 --out "$out/$kind.safetensors"
    "$SPIRAL" eval --weights "$out/$kind.safetensors" --text "$text" \
        --logits "$out/$kind.logits.npy" --grads "$out/$kind.grads.safetensors"
    echo
done
echo "demo: outputs in $out/ (weights, logits .npy, gradients .safetensors)"

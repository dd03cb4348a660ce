#!/bin/sh
# Cross-check of spiral's forward pass against an independent reference
# implementation (tests/reference/spiral_ref.py, Python + numpy, float64,
# written from docs/model.md only).
#
# For each configuration: random weights and tokens are made by the reference
# (safetensors / uint16 files), both implementations evaluate them, and the
# logits (max abs diff <= 2e-4) and the mean loss (abs diff <= 1e-4) must agree.
# The reference's own self-checks run first (causality, g=1 == stacked core,
# alloc(W=0) == copy, ...). Each comparison counts as one test.
#
# Usage: SPIRAL=build/spiral sh tests/reference.sh
SPIRAL=${SPIRAL:-build/spiral}
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
REF="$HERE/reference/spiral_ref.py"
LOGIT_TOL=2e-4
LOSS_TOL=1e-4

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

finish() {
    echo "reference: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit $?
}

# ---- the reference's self-checks -----------------------------------------
if ! [ -x "$PY" ] || ! "$PY" -c 'import numpy' 2>/dev/null; then
    fail "python3 with numpy not available at $PY"
    finish
fi
"$PY" "$REF" selftest >"$tmp/selftest.out" 2>&1
st=$?
sed 's/^/  selftest: /' "$tmp/selftest.out"
np=$(grep -c '^PASS ' "$tmp/selftest.out")
nf=$(grep -c '^FAIL ' "$tmp/selftest.out")
passed=$((passed + np))
failed=$((failed + nf))
if [ "$st" -ne 0 ] && [ "$nf" -eq 0 ]; then
    fail "selftest exited with status $st"
fi

# ---- spiral binary --------------------------------------------------------
have_spiral=1
if ! [ -x "$SPIRAL" ]; then
    fail "spiral binary not found at $SPIRAL (build it first)"
    have_spiral=0
fi

# ---- configurations -------------------------------------------------------
# Each line: name|n_tokens|seed|model-config fields (merged into the base)
# Base: vocab 32, d_model 16, 2 heads, d_ff 24.
BASE='"vocab_size": 32, "d_model": 16, "n_heads": 2, "d_ff": 24'
cat >"$tmp/configs" <<'EOF'
spiral-8421-selfagg-alloc-residual-tied|38|1|"n_pre": 1, "n_loop": 2, "n_post": 1, "tie_embeddings": true, "rope_base": 10000, "norm_eps": 1e-5, "down": "selfagg", "up": "alloc", "topology": "residual", "schedule": [{"g": 8, "offset": 0, "shift": 7}, {"g": 4}, {"g": 2}, {"g": 1}]
offsets-mean-copy-residual-untied-pre0-post2|38|2|"n_pre": 0, "n_loop": 2, "n_post": 2, "tie_embeddings": false, "rope_base": 10000, "norm_eps": 1e-5, "down": "mean", "up": "copy", "topology": "residual", "schedule": [{"g": 4, "offset": 1}, {"g": 2}, {"g": 1}]
offsets-selfagg-copy-anchor-tied-pre2-post0|38|3|"n_pre": 2, "n_loop": 1, "n_post": 0, "tie_embeddings": true, "rope_base": 10000, "norm_eps": 1e-5, "down": "selfagg", "up": "copy", "topology": "anchor", "schedule": [{"g": 3, "offset": 2}, {"g": 2, "offset": 1}, {"g": 1}]
no-overlap-mean-alloc-anchor-untied|38|4|"n_pre": 1, "n_loop": 2, "n_post": 1, "tie_embeddings": false, "rope_base": 10000, "norm_eps": 1e-5, "down": "mean", "up": "alloc", "topology": "anchor", "schedule": [{"g": 4, "shift": 4}, {"g": 2, "shift": 2}, {"g": 1, "shift": 1}]
looped-baseline-all-g1|38|5|"n_pre": 1, "n_loop": 2, "n_post": 1, "tie_embeddings": true, "rope_base": 10000, "norm_eps": 1e-5, "down": "selfagg", "up": "alloc", "topology": "residual", "schedule": [{"g": 1}, {"g": 1}, {"g": 1}, {"g": 1}]
dense-baseline|38|6|"n_pre": 0, "n_loop": 3, "n_post": 0, "tie_embeddings": true, "rope_base": 10000, "norm_eps": 1e-5, "down": "mean", "up": "copy", "topology": "residual", "schedule": [{"g": 1}]
g8-offset5-shift9-selfagg-alloc-anchor-untied|38|7|"n_pre": 1, "n_loop": 1, "n_post": 1, "tie_embeddings": false, "rope_base": 10000, "norm_eps": 1e-5, "down": "selfagg", "up": "alloc", "topology": "anchor", "schedule": [{"g": 8, "offset": 5, "shift": 9}, {"g": 3, "offset": 1}, {"g": 1}]
g3-g2-mean-alloc-residual-pre2-post2|38|8|"n_pre": 2, "n_loop": 2, "n_post": 2, "tie_embeddings": true, "rope_base": 10000, "norm_eps": 1e-5, "down": "mean", "up": "alloc", "topology": "residual", "schedule": [{"g": 3}, {"g": 2}, {"g": 3, "offset": 2}, {"g": 1}]
looped-anchor-untied|38|9|"n_pre": 1, "n_loop": 2, "n_post": 1, "tie_embeddings": false, "rope_base": 10000, "norm_eps": 1e-5, "down": "mean", "up": "copy", "topology": "anchor", "schedule": [{"g": 1}, {"g": 1}, {"g": 1}]
spiral-offsets-selfagg-alloc-anchor-pre0-post0|38|10|"n_pre": 0, "n_loop": 2, "n_post": 0, "tie_embeddings": true, "rope_base": 10000, "norm_eps": 1e-5, "down": "selfagg", "up": "alloc", "topology": "anchor", "schedule": [{"g": 8, "offset": 3}, {"g": 4, "offset": 1}, {"g": 2, "offset": 1}, {"g": 1}]
g4-offset1-g3-offset2-selfagg-copy-residual-untied|38|11|"n_pre": 1, "n_loop": 2, "n_post": 1, "tie_embeddings": false, "rope_base": 10000, "norm_eps": 1e-5, "down": "selfagg", "up": "copy", "topology": "residual", "schedule": [{"g": 4, "offset": 1}, {"g": 3, "offset": 2}, {"g": 1}]
short-seq-g8-offset7-selfagg-alloc|10|12|"n_pre": 1, "n_loop": 1, "n_post": 1, "tie_embeddings": true, "rope_base": 10000, "norm_eps": 1e-5, "down": "selfagg", "up": "alloc", "topology": "residual", "schedule": [{"g": 8, "offset": 7}, {"g": 4, "offset": 2, "shift": 5}, {"g": 2}]
rope500-eps1e-2-mean-alloc|38|13|"n_pre": 1, "n_loop": 1, "n_post": 1, "tie_embeddings": true, "rope_base": 500, "norm_eps": 1e-2, "down": "mean", "up": "alloc", "topology": "residual", "schedule": [{"g": 2}, {"g": 1}]
mesh4-spiral-8421-selfagg-alloc-offsets|38|14|"n_pre": 1, "n_loop": 2, "n_post": 1, "tie_embeddings": true, "rope_base": 10000, "norm_eps": 1e-5, "down": "selfagg", "up": "alloc", "topology": "mesh", "mesh_slots": 4, "schedule": [{"g": 8, "offset": 3}, {"g": 4, "offset": 1}, {"g": 2}, {"g": 1}]
mesh3-no-overlap-mean-copy-untied|38|15|"n_pre": 1, "n_loop": 2, "n_post": 1, "tie_embeddings": false, "rope_base": 10000, "norm_eps": 1e-5, "down": "mean", "up": "copy", "topology": "mesh", "mesh_slots": 3, "schedule": [{"g": 4, "shift": 4}, {"g": 2, "shift": 2}, {"g": 1}]
mesh5-selfagg-alloc-pre0-post0-shifts|38|16|"n_pre": 0, "n_loop": 1, "n_post": 0, "tie_embeddings": true, "rope_base": 10000, "norm_eps": 1e-5, "down": "selfagg", "up": "alloc", "topology": "mesh", "mesh_slots": 5, "schedule": [{"g": 3, "offset": 2, "shift": 5}, {"g": 1, "shift": 1}, {"g": 2, "offset": 1}]
mesh2-looped-all-g1|38|17|"n_pre": 1, "n_loop": 2, "n_post": 1, "tie_embeddings": true, "rope_base": 10000, "norm_eps": 1e-5, "down": "mean", "up": "copy", "topology": "mesh", "mesh_slots": 2, "schedule": [{"g": 1}, {"g": 1}, {"g": 1}]
mesh4-dense|38|18|"n_pre": 0, "n_loop": 3, "n_post": 0, "tie_embeddings": false, "rope_base": 10000, "norm_eps": 1e-5, "down": "mean", "up": "copy", "topology": "mesh", "mesh_slots": 4, "schedule": [{"g": 1}]
EOF

while IFS='|' read -r name ntok seed fields; do
    [ -n "$name" ] || continue
    d="$tmp/$name"
    mkdir -p "$d"
    cfg="{$BASE, $fields}"
    if ! "$PY" "$REF" make-weights --config-json "$cfg" --seed "$seed" \
            --out "$d/w.safetensors" >"$d/mw.out" 2>&1 ||
       ! "$PY" "$REF" make-tokens --vocab 32 --n "$ntok" --seed "$seed" \
            --out "$d/t.bin" >"$d/mt.out" 2>&1 ||
       ! "$PY" "$REF" forward --weights "$d/w.safetensors" --tokens "$d/t.bin" \
            --logits "$d/ref.npy" >"$d/ref.out" 2>&1; then
        cat "$d"/*.out
        fail "$name: reference failed"
        continue
    fi
    refloss=$(sed -n 's/^loss //p' "$d/ref.out")
    if [ "$have_spiral" -eq 0 ]; then
        fail "$name logits: no spiral binary"
        fail "$name loss: no spiral binary"
        continue
    fi
    if ! "$SPIRAL" eval --weights "$d/w.safetensors" --tokens "$d/t.bin" \
            --logits "$d/spiral.npy" >"$d/spiral.out" 2>&1 </dev/null; then
        sed 's/^/  spiral: /' "$d/spiral.out"
        fail "$name logits: spiral eval failed"
        fail "$name loss: spiral eval failed"
        continue
    fi
    if msg=$("$PY" "$REF" compare --a "$d/ref.npy" --b "$d/spiral.npy" \
            --tol "$LOGIT_TOL" 2>&1); then
        pass "$name logits: $msg"
    else
        fail "$name logits: $msg"
    fi
    if msg=$("$PY" "$REF" compare-loss --ref "$refloss" --output "$d/spiral.out" \
            --tol "$LOSS_TOL" 2>&1); then
        pass "$name loss: $msg"
    else
        sed 's/^/  spiral: /' "$d/spiral.out"
        fail "$name loss: $msg"
    fi
done <"$tmp/configs"

finish

#!/bin/sh
# spiral generate and spiral eval --incremental end to end:
#  - tiny byte-level spiral models (residual, and mesh) trained a few
#    steps: greedy decoding (--temperature 0) reproduces itself, and each
#    greedy token is the argmax of the full forward pass's logits at its
#    position (spiral eval --logits on prompt + continuation);
#  - --out's log-probabilities equal log softmax of those full-pass logits;
#  - sampling with a seed is reproducible, another seed gives another text;
#  - eval --incremental gives the loss and logits of the full pass;
#  - a looped run and a non-byte vocabulary (ids printed) work too;
#  - bad input: unknown run, prompt longer than the context, --max-tokens
#    past the context, tokens outside the vocabulary, bad flags, --device
#    cuda without CUDA: clear errors and a non-zero exit.
. "$(dirname "$0")/harness.sh"
PY=/usr/bin/python3

for i in $(seq 1 40); do
    yes 'In the beginning was the word, and the word was with spiral.' | head -n 5
    echo
done > "$dir/text.txt"
"$SPIRAL" data make --store "$dir/s.db" --name txt --family text --text "$dir/text.txt" \
    --params '{"min_doc_bytes": 300, "val_fraction": 0.2, "test_fraction": 0.1}' >/dev/null 2>&1 \
    || fail "data make text"
"$SPIRAL" data make --store "$dir/s.db" --name dyck --family dyck --seed 2 >/dev/null 2>&1 \
    || fail "data make dyck"
cat > "$dir/spiral.json" <<JSON
{"model": {"vocab_size": 256, "d_model": 32, "n_heads": 2, "d_ff": 48, "down": "selfagg",
           "up": "alloc", "schedule": [{"g": 4, "offset": 1}, {"g": 2, "shift": 2}, 1]},
 "train": {"dataset": "txt", "seq_len": 64, "batch_size": 4, "steps": 60, "lr": 0.01,
           "eval_every": 0, "checkpoint_every": 60}}
JSON
cat > "$dir/looped.json" <<JSON
{"model": {"vocab_size": 7, "d_model": 32, "n_heads": 2, "d_ff": 48, "schedule": [1, 1]},
 "train": {"dataset": "dyck", "seq_len": 48, "batch_size": 4, "steps": 5, "eval_every": 0,
           "checkpoint_every": 5}}
JSON
cat > "$dir/mesh.json" <<JSON
{"model": {"vocab_size": 256, "d_model": 32, "n_heads": 2, "d_ff": 48, "topology": "mesh",
           "mesh_slots": 3, "schedule": [{"g": 4, "offset": 2}, {"g": 2, "shift": 3}, 1]},
 "train": {"dataset": "txt", "seq_len": 64, "batch_size": 4, "steps": 30, "lr": 0.01,
           "eval_every": 0, "checkpoint_every": 30}}
JSON
for kind in spiral looped mesh; do
    "$SPIRAL" train --config "$dir/$kind.json" --store "$dir/s.db" --quiet >/dev/null 2>&1 || fail "train $kind"
done
# the weights file of a run's last checkpoint
weights_of() { ls "$dir"/checkpoints/"$1"/*.safetensors | tail -n 1; }
w=$(weights_of spiral)

# greedy reproduces itself, and agrees with the full pass: for run $1
prompt='In the beginning'
check_greedy() {
    run=$1; f="$dir/$run"
    "$SPIRAL" generate --run "$run" --store "$dir/s.db" --prompt "$prompt" --quiet --max-tokens 40 \
        --temperature 0 --out "$f.tsv" > "$f.g1.txt" || fail "$run: greedy 1"
    "$SPIRAL" generate --run "$run" --store "$dir/s.db" --prompt "$prompt" --quiet --max-tokens 40 \
        --temperature 0 > "$f.g2.txt" || fail "$run: greedy 2"
    cmp -s "$f.g1.txt" "$f.g2.txt" && ok || fail "$run: greedy decoding differs between two runs"
    [ "$(wc -c < "$f.g1.txt")" -eq 40 ] && ok || fail "$run: greedy printed $(wc -c < "$f.g1.txt") bytes, expected 40"
    printf '%s' "$prompt" > "$f.seq.txt"
    cat "$f.g1.txt" >> "$f.seq.txt"
    "$SPIRAL" eval --weights "$(weights_of "$run")" --text "$f.seq.txt" --logits "$f.full.npy" \
        > "$f.full.out" || fail "$run: eval full"
    "$SPIRAL" eval --weights "$(weights_of "$run")" --text "$f.seq.txt" --logits "$f.inc.npy" \
        --incremental > "$f.inc.out" 2>"$f.inc.err" || fail "$run: eval incremental: $(cat "$f.inc.err")"
    $PY - "$f" <<'PY' && ok || fail "$run: greedy tokens / logprobs / incremental eval vs the full pass"
import sys, numpy as np
f = sys.argv[1]
full = np.load(f + ".full.npy").astype(np.float64)
inc = np.load(f + ".inc.npy").astype(np.float64)
seq = open(f + ".seq.txt", "rb").read()
rows = [l.split("\t") for l in open(f + ".tsv").read().splitlines()]
assert rows[0] == ["position", "token", "logprob"], rows[0]
rows = rows[1:]
assert len(rows) == 40
logp = full - full.max(1, keepdims=True)
logp -= np.log(np.exp(logp).sum(1, keepdims=True))
for pos, tok, lp in rows:
    pos, tok, lp = int(pos), int(tok), float(lp)
    assert seq[pos] == tok, (pos, tok)
    assert full[pos - 1].argmax() == tok, ("not the full pass's argmax", pos)
    assert abs(logp[pos - 1, tok] - lp) < 1e-4, (pos, logp[pos - 1, tok], lp)
rel = np.abs(inc - full).max(1) / np.abs(full).max(1)
assert rel.max() < 1e-5, rel.max()
a = float(open(f + ".full.out").read().split()[1]); b = float(open(f + ".inc.out").read().split()[1])
assert abs(a - b) < 1e-5, (a, b)
PY
}
check_greedy spiral
check_greedy mesh

# eval --incremental on a run's checkpoint, also under another schedule
# (test-time depth): the full pass's loss
for sched in "" "--schedule 4,2,2,1"; do
    full=$("$SPIRAL" eval --run spiral --store "$dir/s.db" --text "$dir/spiral.seq.txt" $sched | grep '^loss')
    inc=$("$SPIRAL" eval --run spiral --store "$dir/s.db" --text "$dir/spiral.seq.txt" $sched \
          --incremental 2>/dev/null | grep '^loss')
    $PY -c "import sys; a, b = float(sys.argv[1].split()[1]), float(sys.argv[2].split()[1]); assert abs(a - b) < 1e-5, (a, b)" \
        "$full" "$inc" && ok || fail "eval --run $sched: full '$full', incremental '$inc'"
done

# sampling with a seed is reproducible; another seed differs
gen() { "$SPIRAL" generate --run spiral --store "$dir/s.db" --prompt "$prompt" --quiet "$@"; }
gen --max-tokens 48 --temperature 1.2 --top-k 20 --top-p 0.95 --seed 7 > "$dir/s1.txt" || fail "sample 1"
gen --max-tokens 48 --temperature 1.2 --top-k 20 --top-p 0.95 --seed 7 > "$dir/s2.txt" || fail "sample 2"
gen --max-tokens 48 --temperature 1.2 --top-k 20 --top-p 0.95 --seed 8 > "$dir/s3.txt" || fail "sample 3"
cmp -s "$dir/s1.txt" "$dir/s2.txt" && ok || fail "the same seed gave different samples"
cmp -s "$dir/s1.txt" "$dir/s3.txt" && fail "seeds 7 and 8 gave the same 48 tokens" || ok
# --weights and a prompt file give the same greedy text as --run
printf '%s' "$prompt" > "$dir/prompt.txt"
"$SPIRAL" generate --weights "$w" --prompt-file "$dir/prompt.txt" --max-tokens 40 --temperature 0 \
    --quiet > "$dir/g3.txt" || fail "greedy --weights"
cmp -s "$dir/spiral.g1.txt" "$dir/g3.txt" && ok || fail "--weights and --run differ"

# a looped run over a 7-token vocabulary: ids, one line
printf '\001\000\002\000\003\000' > "$dir/p.u16"
"$SPIRAL" generate --run looped --store "$dir/s.db" --prompt-tokens "$dir/p.u16" --max-tokens 10 \
    --temperature 0 --quiet > "$dir/ids.txt" || fail "looped generate"
grep -Eq '^[0-6]( [0-6]){9}$' "$dir/ids.txt" && ok || fail "looped ids: $(cat "$dir/ids.txt")"

# bad input
expect 1 "no run named\|nope" "$SPIRAL" generate --run nope --store "$dir/s.db" --prompt a --max-tokens 3
head -c 65 "$dir/text.txt" > "$dir/long.txt"
expect 1 "65 tokens, more than run spiral's context of 64" \
    "$SPIRAL" generate --run spiral --store "$dir/s.db" --prompt-file "$dir/long.txt" --max-tokens 1
expect 1 "lower --max-tokens to 49" \
    "$SPIRAL" generate --run spiral --store "$dir/s.db" --prompt "$prompt" --max-tokens 50
expect 0 "" "$SPIRAL" generate --run spiral --store "$dir/s.db" --prompt "$prompt" --max-tokens 49 --quiet
printf '\011\000' > "$dir/bad.u16"
expect 1 "token 9 .*outside\|outside.*9" \
    "$SPIRAL" generate --run looped --store "$dir/s.db" --prompt-tokens "$dir/bad.u16" --max-tokens 2
expect 1 "empty" "$SPIRAL" generate --weights "$w" --prompt "" --max-tokens 2
expect 2 "--top-p" "$SPIRAL" generate --weights "$w" --prompt a --max-tokens 2 --top-p 1.5
expect 2 "--temperature" "$SPIRAL" generate --weights "$w" --prompt a --max-tokens 2 --temperature x
expect 2 "exactly one of --run and --weights" "$SPIRAL" generate --prompt a --max-tokens 2
expect 2 "--max-tokens is required" "$SPIRAL" generate --weights "$w" --prompt a
expect 2 "did you mean '--max-tokens'" "$SPIRAL" generate --weights "$w" --prompt a --max-token 2
expect 2 "fp32 only" "$SPIRAL" generate --weights "$w" --prompt a --max-tokens 2 --precision bf16
if "$SPIRAL" train --help | grep -q cuda && ! "$SPIRAL" generate --weights "$w" --prompt a --max-tokens 1 --device cuda --quiet >/dev/null 2>&1; then
    expect 1 "built without CUDA" "$SPIRAL" generate --weights "$w" --prompt a --max-tokens 1 --device cuda
fi
expect 2 "--incremental goes without --grads" "$SPIRAL" eval --weights "$w" --text "$dir/spiral.seq.txt" --incremental --grads "$dir/g.st"

echo "generate.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

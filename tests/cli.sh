#!/bin/sh
# CLI end to end: every command's --help, and bad input giving a clear
# message (naming the file/field), a non-zero exit, and nothing written.
. "$(dirname "$0")/harness.sh"

for cmd in info init eval generate data train runs record lens export sweep probe analyze \
           compare match report; do
    if "$SPIRAL" $cmd --help | grep -q "usage: spiral $cmd"; then ok; else fail "$cmd --help"; fi
done
if "$SPIRAL" --help | grep -q "commands:"; then ok; else fail "spiral --help"; fi
expect 2 "unknown command" "$SPIRAL" frobnicate

echo '{"d_model": 64, "n_heads": 5}' > "$dir/bad.json"
expect 1 "bad.json: model.n_heads" "$SPIRAL" info --config "$dir/bad.json"
echo '{"d_model": "wide"}' > "$dir/type.json"
expect 1 "model.d_model: expected an integer" "$SPIRAL" info --config "$dir/type.json"
expect 1 "missing.json: cannot open" "$SPIRAL" info --config "$dir/missing.json"
expect 2 "unknown argument" "$SPIRAL" info --config x --bogus
expect 2 "exactly one of" "$SPIRAL" info
expect 2 "seq-len" "$SPIRAL" info --config examples/spiral.json --seq-len 0

expect 1 "bad.json" "$SPIRAL" init --config "$dir/bad.json" --out "$dir/w.safetensors"
[ ! -e "$dir/w.safetensors" ] && ok || fail "init wrote a file for a bad config"
expect 1 "nodir" "$SPIRAL" init --config examples/spiral.json --out "$dir/nodir/w.safetensors"
"$SPIRAL" init --config examples/spiral.json --seed 3 --out "$dir/w.safetensors" >/dev/null && ok || fail "init"
"$SPIRAL" init --config examples/spiral.json --seed 3 --out "$dir/w2.safetensors" >/dev/null
cmp -s "$dir/w.safetensors" "$dir/w2.safetensors" && ok || fail "init is not reproducible"
ls "$dir" | grep -q tmp && fail "temporary file left behind" || ok

printf 'hello spiral world, hello again' > "$dir/t.txt"
"$SPIRAL" eval --weights "$dir/w.safetensors" --text "$dir/t.txt" --logits "$dir/l.npy" >"$dir/out" && ok || fail "eval"
grep -q "loss [0-9.]* nats over 30 predictions" "$dir/out" && ok || fail "eval output: $(cat "$dir/out")"
printf 'x' > "$dir/one.txt"
expect 1 "at least 2" "$SPIRAL" eval --weights "$dir/w.safetensors" --text "$dir/one.txt"
printf 'abc' > "$dir/odd.bin"
expect 1 "odd.bin: 3 bytes is not a whole number" "$SPIRAL" eval --weights "$dir/w.safetensors" --tokens "$dir/odd.bin"
printf '\001\000\377\177' > "$dir/big.bin"
expect 1 "outside the model's vocabulary" "$SPIRAL" eval --weights "$dir/w.safetensors" --tokens "$dir/big.bin"
head -c 1000 "$dir/w.safetensors" > "$dir/trunc.safetensors"
expect 1 "trunc.safetensors" "$SPIRAL" eval --weights "$dir/trunc.safetensors" --text "$dir/t.txt"
expect 1 "cannot open" "$SPIRAL" eval --weights "$dir/w.safetensors" --text "$dir/none.txt"
expect 2 "exactly one of" "$SPIRAL" eval --weights "$dir/w.safetensors"

expect 2 "exactly one of" "$SPIRAL" train --store "$dir/s.db"
# precision: a CUDA choice refused on the CPU engine, an unknown one named
expect 1 "fp32 only" "$SPIRAL" train --config examples/spiral.json --store "$dir/p.db" --precision bf16
expect 1 "expected fp32, tf32 or bf16" "$SPIRAL" train --config examples/spiral.json --store "$dir/p.db" --precision fp16
[ ! -e "$dir/p.db" ] && ok || fail "a refused --precision created the store"
# --device cuda in a build without CUDA: eval and record say so
expect 1 "built without CUDA" "$SPIRAL" eval --weights "$dir/none.safetensors" --tokens "$dir/none.u16" --device cuda
expect 1 "built without CUDA" "$SPIRAL" record --run r --data d --store "$dir/p.db" --device cuda
[ ! -e "$dir/p.db" ] && ok || fail "a refused --device created the store"
expect 1 "cannot open store" "$SPIRAL" data list --store "$dir/none.db"
[ ! -e "$dir/none.db" ] && ok || fail "data list created a store"
echo "not a database at all, just text, long enough to look like a header......" > "$dir/junk.db"
expect 1 "junk.db" "$SPIRAL" data list --store "$dir/junk.db"
expect 1 "family" "$SPIRAL" data make --store "$dir/s.db" --name x --family nosuch
expect 1 "too large to compute" "$SPIRAL" data make --store "$dir/s.db" --name x --family dyck --params '{"p_open": 0.999, "m": 1000}'
expect 1 "dyck.k" "$SPIRAL" data make --store "$dir/s.db" --name x --family dyck --params '{"k": -1}'
: > "$dir/empty.txt"
expect 1 "empty.txt" "$SPIRAL" data make --store "$dir/s.db" --name e --family text --text "$dir/empty.txt"
expect 1 "missing.txt" "$SPIRAL" data make --store "$dir/s.db" --name e --family text --text "$dir/missing.txt"
n=$(sqlite3 "$dir/s.db" "SELECT count(*) FROM datasets")
[ "$n" = 0 ] && ok || fail "a failed data make left $n datasets"
"$SPIRAL" data make --store "$dir/s.db" --name d --family dyck >/dev/null && ok || fail "data make dyck"
"$SPIRAL" data list --store "$dir/s.db" >"$dir/list.out" && ok || fail "data list"
[ "$(wc -l <"$dir/list.out")" = 2 ] && grep -q "^d  *dyck  *[0-9]" "$dir/list.out" && ok || fail "data list: $(cat "$dir/list.out")"
expect 1 "already exists" "$SPIRAL" data make --store "$dir/s.db" --name d --family dyck
"$SPIRAL" data show --store "$dir/s.db" --name d --doc 2 --labels depth,top | grep -q "depth" && ok || fail "data show"
expect 1 "no label 'deep'" "$SPIRAL" data show --store "$dir/s.db" --name d --labels deep
printf '{"model": {"vocab_size": 7}, "train": {"dataset": "d", "seq_len": "long"}}' > "$dir/run.json"
expect 1 "train.seq_len: expected an integer" "$SPIRAL" train --config "$dir/run.json" --store "$dir/s.db"
n=$(sqlite3 "$dir/s.db" "SELECT count(*) FROM runs")
[ "$n" = 0 ] && ok || fail "a failed train left $n runs"
expect 1 "no dataset named 'nope'" "$SPIRAL" data show --store "$dir/s.db" --name nope
# typos: the closest command or option is suggested, nothing runs
expect 2 "unknown command 'trian'; did you mean 'train'?" "$SPIRAL" trian
expect 2 "unknown argument '--stor'; did you mean '--store'?" "$SPIRAL" runs --stor "$dir/s.db"
expect 1 "no dataset named 'dd' (did you mean 'd'?" "$SPIRAL" data show --store "$dir/s.db" --name dd

echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

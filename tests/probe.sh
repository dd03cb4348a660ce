#!/bin/sh
# `spiral probe` end to end with the spiral binary, on a tiny trained run:
#  - the table on stdout (a line per probe with its five controls, its
#    margins over the random model and the lexical control, the verdict;
#    the expected iteration and the verdicts per label) and a row in
#    probe_results for every (site, iteration, scale, control), each with
#    its test outcome per test sequence;
#  - the verdict is "not tested" when the random-model or lexical control
#    is missing, and adding the missing control later decides it;
#  - a store of the previous schema version (no test outcomes) opens, is migrated, and its
#    old rows are judged with the unpaired interval (marked u);
#  - running it again fits nothing; a probe killed with SIGKILL leaves the
#    store consistent and running it again fits only the missing rows;
#  - the same seed gives the same numbers with 1 or 2 threads;
#  - bad input: clear errors and exit codes (1 for errors, 2 for usage).
. "$(dirname "$0")/harness.sh"
q() { sqlite3 "$dir/s.db" "$1"; }

"$SPIRAL" data make --store "$dir/s.db" --name dyck --family dyck --seed 2 >/dev/null || fail "data make"
cat > "$dir/spiral.json" <<JSON
{"model": {"vocab_size": 7, "d_model": 16, "n_heads": 2, "d_ff": 24, "schedule": [{"g": 4, "offset": 1}, 2, 1]},
 "train": {"dataset": "dyck", "seq_len": 32, "batch_size": 4, "steps": 10, "eval_every": 0,
           "checkpoint_every": 10}}
JSON
"$SPIRAL" train --config "$dir/spiral.json" --store "$dir/s.db" --quiet >/dev/null 2>&1 || fail "train"
"$SPIRAL" record --run spiral --data dyck --store "$dir/s.db" --sequences 30 --quiet >/dev/null 2>&1 || fail "record"

# the table; sites: token 0..3, latent_in/out at iterations 0 (g=4) and 1 (g=2), coda = 9
"$SPIRAL" probe --run spiral --data dyck --store "$dir/s.db" --label depth,gen.lag1 --quiet >"$dir/out" 2>"$dir/err"
code=$?
[ $code = 0 ] && ok || fail "probe exit $code: $(cat "$dir/err")"
cat "$dir/out"
grep -q "^label .*accuracy \[95% CI\] .*control .*select\. .*random .*position .*permuted .*lexical .*margin over random .*margin over lexical .*verdict" "$dir/out" && ok || fail "table header"
n=$(grep -cE "(not )?encoded$" "$dir/out")
[ "$n" = 18 ] && ok || fail "verdicts: $n lines end with a verdict, expected 18"
grep -qE "^ +(not )?encoded at: " "$dir/out" && ok || fail "verdict summary lines"
# gen.lag1 is the previous token: at a latent of g = 2 the lexical control
# (the chunk's 2 tokens; field 13) reads it exactly, so it is not encoded there
n=$(awk '$1 == "gen.lag1" && $4 == 2 && $13 == 1 && / not encoded$/' "$dir/out" | wc -l)
[ "$n" = 2 ] && ok || fail "gen.lag1 at g = 2: lexical control at 1.000 and not encoded at $n of 2 latent sites"
# at token sites the lexical window is the token itself (k = g = 1)
n=$(awk '$1 == "gen.lag1" && $2 == "token" && $13 < 0.9' "$dir/out" | wc -l)
[ "$n" = 4 ] && ok || fail "gen.lag1 at token sites: lexical control of the token alone below 0.9 at $n of 4"
grep -q "all [0-9]* fitted rows converged\|fitted rows did not reach the gradient tolerance" "$dir/out" && ok || fail "convergence line"
n=$(grep -cE "^(depth|gen\.lag1) +(token|latent_in|latent_out|coda) +[0-9]+ +[0-9]+ +[01]\.[0-9]{3} \[" "$dir/out")
[ "$n" = 18 ] && ok || fail "table lines: $n, expected 9 sites x 2 labels"
grep -q "^depth: expected iteration token [0-9.-]" "$dir/out" && ok || fail "expected iteration line"
grep -q "108 rows fitted now, 0 already stored" "$dir/out" && ok || fail "fitted count: $(head -1 "$dir/out")"
n=$(q "SELECT count(*) FROM probe_results")
[ "$n" = 108 ] && ok || fail "probe_results rows $n, expected 9 sites x 2 labels x 6"
n=$(q "SELECT count(DISTINCT control) FROM probe_results")
[ "$n" = 6 ] && ok || fail "controls: $n kinds"
# test outcomes: 12 bytes per test sequence (30 windows: 18 train, 6 validation, 6 test)
n=$(q "SELECT count(*) FROM probe_results WHERE length(test_counts) = 72")
[ "$n" = 108 ] && ok || fail "test_counts of 6 sequences: $n rows of 108"
n=$(q "SELECT count(*) FROM probe_summaries WHERE label='depth'")
[ "$n" = 4 ] && ok || fail "summaries of depth: $n, expected one per site kind"

# again: nothing to fit, same table
"$SPIRAL" probe --run spiral --data dyck --store "$dir/s.db" --label depth,gen.lag1 --quiet >"$dir/out2" 2>&1 || fail "second probe"
grep -q "0 rows fitted now, 108 already stored" "$dir/out2" && ok || fail "second run refitted: $(head -1 "$dir/out2")"
tail -n +2 "$dir/out" >"$dir/a"; tail -n +2 "$dir/out2" >"$dir/b"
cmp -s "$dir/a" "$dir/b" && ok || fail "second table differs"

# one thread instead of two, refitted: the same numbers
"$SPIRAL" probe --run spiral --data dyck --store "$dir/s.db" --label depth,gen.lag1 --quiet --replace --threads 1 >"$dir/out3" 2>&1 || fail "replace"
tail -n +2 "$dir/out3" >"$dir/c"
cmp -s "$dir/a" "$dir/c" && ok || fail "1 thread differs from 2: $(diff "$dir/a" "$dir/c" | head -5)"

# SIGKILL in the middle, then complete only what is missing
"$SPIRAL" probe --run spiral --data dyck --store "$dir/s.db" --label is_open,top,match_dist,gen.next1,gen.slot2 --quiet >/dev/null 2>&1 &
pid=$!
i=0
while [ $i -lt 500 ]; do
    n=$(q "SELECT count(*) FROM probe_results WHERE label IN ('is_open','top','match_dist','gen.next1','gen.slot2')" 2>/dev/null)
    [ "${n:-0}" -ge 1 ] && break
    sleep 0.01; i=$((i + 1))
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
partial=$(q "SELECT count(*) FROM probe_results WHERE label IN ('is_open','top','match_dist','gen.next1','gen.slot2')")
[ "$partial" -lt 270 ] && ok || fail "probe finished before the kill"
q "PRAGMA integrity_check" | grep -q '^ok$' && ok || fail "integrity after SIGKILL"
"$SPIRAL" probe --run spiral --data dyck --store "$dir/s.db" --label is_open,top,match_dist,gen.next1,gen.slot2 --quiet >"$dir/out4" 2>&1 || fail "resume: $(cat "$dir/out4")"
grep -q "$((270 - partial)) rows fitted now, $partial already stored" "$dir/out4" && ok || fail "resume fitted other than the missing $((270 - partial)): $(head -1 "$dir/out4")"
echo "killed after $partial of 270 probes; the second run fitted the rest"

# without the random-model or lexical control: "not tested", never "not encoded"
"$SPIRAL" probe --run spiral --data dyck --store "$dir/s.db" --label gen.slot2 --controls a,b --replace --quiet >"$dir/out5" 2>&1 || fail "controls a,b: $(cat "$dir/out5")"
n=$(grep -cE "^gen\.slot2 .* not tested$" "$dir/out5")
[ "$n" = 9 ] && ok || fail "not tested lines: $n of 9"
grep -q "^ *not tested at: token 0" "$dir/out5" && ! grep -q "encoded at" "$dir/out5" && ok || fail "summary says not tested: $(tail -3 "$dir/out5")"
# adding the lexical control fits only it, and the verdict is decided
"$SPIRAL" probe --run spiral --data dyck --store "$dir/s.db" --label gen.slot2 --controls e --quiet >"$dir/out6" 2>&1 || fail "controls e"
grep -q "9 rows fitted now, 9 already stored" "$dir/out6" && ok || fail "lexical added: $(head -1 "$dir/out6")"
n=$(grep -cE "^gen\.slot2 .*(not encoded|[^t] encoded)$" "$dir/out6")
[ "$n" = 9 ] && ok || fail "verdicts after adding the lexical control: $n of 9"
# --lexical-window fixes k at every site
"$SPIRAL" probe --run spiral --data dyck --store "$dir/s.db" --label gen.lag5,gen.lag6 --controls e --lexical-window 6 --quiet >"$dir/out7" 2>&1 || fail "--lexical-window 6"
# (field 13 of a table line is the lexical control's accuracy)
n=$(awk '$1 == "gen.lag5" && $13 >= 0.95' "$dir/out7" | wc -l)
[ "$n" = 9 ] && ok || fail "a window of 6 tokens holds the token 5 back: lexical >= 0.95 at $n of 9 sites"
"$SPIRAL" probe --run spiral --data dyck --store "$dir/s.db" --label gen.lag6 --controls e --lexical-window 2 --replace --quiet >"$dir/out7" 2>&1 || fail "--lexical-window 2"
n=$(awk '$1 == "gen.lag6" && $13 == 1' "$dir/out7" | wc -l)
m=$(awk '$1 == "gen.lag6" && $13 >= 0' "$dir/out7" | wc -l)
[ "$n" = 0 ] && [ "$m" = 9 ] && ok || fail "a window of 2 tokens cannot hold the token 6 back, yet $n lexical controls read 1.000"

# a store of the version before test_counts: no such column; it opens, migrates, and old
# rows get unpaired margins (the current version N is read from the store itself)
N=$(sqlite3 "$dir/s.db" "SELECT max(version) FROM schema_version")
cp "$dir/s.db" "$dir/old.db"
sqlite3 "$dir/old.db" "ALTER TABLE probe_results DROP COLUMN test_counts; DELETE FROM schema_version WHERE version = $N;" || fail "making an old store"
[ "$(sqlite3 "$dir/old.db" "SELECT max(version) FROM schema_version")" = $((N - 1)) ] && ok || fail "old store"
"$SPIRAL" probe --run spiral --data dyck --store "$dir/old.db" --label depth,gen.lag1 --quiet >"$dir/out8" 2>&1 || fail "probe on an old store: $(cat "$dir/out8")"
[ "$(sqlite3 "$dir/old.db" "SELECT max(version) FROM schema_version")" = "$N" ] && ok || fail "not migrated to $N"
grep -q "0 rows fitted now, 108 already stored" "$dir/out8" && ok || fail "old rows kept: $(head -1 "$dir/out8")"
n=$(grep -cE "\]u +[-+]" "$dir/out8")
[ "$n" = 18 ] && ok || fail "unpaired margins over the random model on old rows: $n of 18"

# progress on stderr without --quiet: the CLI's view of the library's
# reports, whose last one reaches the total (9 sites, one probe each)
"$SPIRAL" probe --run spiral --data dyck --store "$dir/s.db" --label gen.lag2 --controls none >/dev/null 2>"$dir/err"
tail -1 "$dir/err" | grep -q "^probe 9/9 probes (100%) | [0-9.]* s/probe | " && ok || fail "progress: $(cat "$dir/err")"
# and none with --quiet
"$SPIRAL" probe --run spiral --data dyck --store "$dir/s.db" --label gen.lag3 --controls none --quiet >/dev/null 2>"$dir/err"
[ ! -s "$dir/err" ] && ok || fail "progress with --quiet: $(cat "$dir/err")"

# bad input
"$SPIRAL" probe --help | grep -q "usage: spiral probe" && ok || fail "--help"
"$SPIRAL" probe --run spiral --data dyck --store "$dir/s.db" --label colour >/dev/null 2>"$dir/err"; code=$?
[ $code = 1 ] && grep -q "unknown label 'colour'; available: depth, top, match_dist, is_open" "$dir/err" && ok || fail "unknown label: $code $(cat "$dir/err")"
"$SPIRAL" probe --run spiral --data dyck --store "$dir/s.db" --label depth --split val >/dev/null 2>"$dir/err"; code=$?
[ $code = 1 ] && grep -q "no recording.*spiral record --run spiral --data dyck --split val" "$dir/err" && ok || fail "not recorded: $code $(cat "$dir/err")"
"$SPIRAL" probe --run nope --data dyck --store "$dir/s.db" --label depth >/dev/null 2>"$dir/err"; code=$?
[ $code = 1 ] && grep -q "no run named 'nope'" "$dir/err" && ok || fail "unknown run: $(cat "$dir/err")"
"$SPIRAL" data make --store "$dir/s.db" --name dyck1 --family dyck --seed 3 --params '{"k": 1}' >/dev/null 2>&1
"$SPIRAL" record --run spiral --data dyck1 --store "$dir/s.db" --sequences 10 --quiet >/dev/null 2>&1 || fail "record dyck1"
"$SPIRAL" probe --run spiral --data dyck1 --store "$dir/s.db" --label top >/dev/null 2>"$dir/err"; code=$?
[ $code = 1 ] && grep -q "label 'top' has a single class" "$dir/err" && ok || fail "one-class label: $code $(cat "$dir/err")"
"$SPIRAL" probe --run spiral --data dyck --store "$dir/s.db" --label depth --seed 5 >/dev/null 2>"$dir/err"; code=$?
[ $code = 1 ] && grep -q "use --replace" "$dir/err" && ok || fail "other seed: $code $(cat "$dir/err")"
"$SPIRAL" probe --run spiral --data dyck --store "$dir/s.db" >/dev/null 2>"$dir/err"; code=$?
[ $code = 2 ] && grep -q "label" "$dir/err" && ok || fail "missing --label: $code"
"$SPIRAL" probe --run spiral --data dyck --store "$dir/s.db" --label depth --controls a,x >/dev/null 2>"$dir/err"; code=$?
[ $code = 2 ] && grep -q "\-\-controls" "$dir/err" && ok || fail "bad --controls: $code"
"$SPIRAL" probe --run spiral --data dyck --store "$dir/s.db" --label depth --lexical-window 0 >/dev/null 2>"$dir/err"; code=$?
[ $code = 2 ] && grep -q "\-\-lexical-window" "$dir/err" && ok || fail "bad --lexical-window: $code $(cat "$dir/err")"
"$SPIRAL" probe --run spiral --data dyck --store "$dir/none.db" --label depth >/dev/null 2>"$dir/err"; code=$?
[ $code = 1 ] && [ ! -e "$dir/none.db" ] && ok || fail "missing store: $code"

echo "probe: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/sh
# spiral report end to end with the spiral binary, on a store made by the
# real pipeline (data make, train, record, probe, analyze, lens):
#  - `spiral report` exits 0 and prints DIR/index.html; every figure type
#    is drawn: NAME.png is a PNG (its IHDR size is checked by
#    tests/test_report.c), NAME.svg, NAME.gp and a NAME.csv with data rows;
#    gnuplot printed no warnings (no NAME.log);
#  - index.html: every relative href and src exists in DIR, every #anchor
#    has its id; report.md names every run and links only existing files;
#  - re-running the saved NAME.gp in DIR redraws the PNG;
#  - --runs selects runs; bad input: clear messages, exit 1 or 2; without
#    gnuplot the message names the Debian package.
. "$(dirname "$0")/harness.sh"

# check_links DIR PAGE: every href="x"/src="x" of PAGE exists in DIR (or is an #anchor with that id)
check_links() {
    n=0
    for link in $(grep -o -E '(href|src)="[^"]*"' "$2" | sed -E 's/^(href|src)="(.*)"$/\2/'); do
        n=$((n + 1))
        case "$link" in
            '#'*) grep -q "id=\"${link#\#}\"" "$2" || fail "$2: anchor $link has no id" ;;
            /*|*://*) fail "$2: link $link is not relative" ;;
            *) [ -e "$1/$link" ] || fail "$2: broken link $link" ;;
        esac
    done
    [ "$n" -gt 0 ] && ok || fail "$2 has no links"
}

"$SPIRAL" data make --store "$dir/s.db" --name dyck --family dyck --seed 2 >/dev/null || fail "data make"
write_run() {
    cat > "$dir/$1.json" <<JSON
{"model": {"vocab_size": 7, "d_model": 16, "n_heads": 2, "d_ff": 32, "schedule": $2},
 "train": {"dataset": "dyck", "seq_len": 32, "batch_size": 4, "steps": 12, "eval_every": 4,
           "eval_batches": 2, "checkpoint_every": 12, "seed": $3}}
JSON
}
write_run spiral '[4, 2, 1]' 1
write_run looped '[1, 1, 1]' 1
for run in spiral looped; do
    "$SPIRAL" train --config "$dir/$run.json" --store "$dir/s.db" --quiet >/dev/null 2>&1 || fail "train $run"
    "$SPIRAL" record --run $run --data dyck --store "$dir/s.db" --sequences 10 --quiet >/dev/null 2>&1 || fail "record $run"
    "$SPIRAL" probe --run $run --data dyck --store "$dir/s.db" --label depth,is_open --threads 1 --quiet \
        >/dev/null 2>"$dir/probe.err" || fail "probe $run: $(cat "$dir/probe.err")"
done
"$SPIRAL" analyze --run spiral,looped --data dyck --store "$dir/s.db" --quiet >/dev/null 2>"$dir/analyze.err" ||
    fail "analyze: $(cat "$dir/analyze.err")"
for run in spiral looped; do
    "$SPIRAL" lens --run $run --data dyck --store "$dir/s.db" --sequences 4 --depths 2 --ablate-each --quiet \
        >/dev/null 2>"$dir/lens.err" || fail "lens $run: $(cat "$dir/lens.err")"
done

# the report
"$SPIRAL" report --help | grep -q "usage: spiral report" && ok || fail "report --help"
out="$dir/rep"
"$SPIRAL" report --store "$dir/s.db" --out "$out" >"$dir/stdout" 2>"$dir/stderr" && ok ||
    fail "report: $(cat "$dir/stderr")"
[ "$(cat "$dir/stdout")" = "$out/index.html" ] && ok || fail "report printed '$(cat "$dir/stdout")'"
grep -q "figures drawn" "$dir/stderr" && ! grep -q skipped "$dir/stderr" && ok ||
    fail "a figure was skipped: $(cat "$dir/stderr")"
for name in training comparison probe_heatmap_token probe_heatmap_latent probe_curves_labels attention \
            loop_update cka cka_cross spectrum; do
    [ "$(head -c 4 "$out/$name.png" | tail -c 3)" = PNG ] && ok || fail "$name.png is not a PNG"
    grep -q "<svg" "$out/$name.svg" 2>/dev/null && ok || fail "$name.svg is not an SVG"
    [ -s "$out/$name.gp" ] && ok || fail "$name.gp missing"
    rows=$(($(wc -l < "$out/$name.csv") - 1))
    [ "$rows" -gt 0 ] && ok || fail "$name.csv has no data rows"
    [ ! -e "$out/$name.log" ] && ok || fail "gnuplot warned on $name: $(cat "$out/$name.log")"
    grep -q "src=\"$name.png\"" "$out/index.html" && ok || fail "index.html does not show $name.png"
done
# the probe CSV holds every probe row of the store at token sites and the coda
n=$(sqlite3 "$dir/s.db" "SELECT count(*) FROM probe_results WHERE control='none' AND site IN ('token','coda')")
[ "$(($(wc -l < "$out/probe_heatmap_token.csv") - 1))" = "$n" ] && ok ||
    fail "probe_heatmap_token.csv: $(wc -l < "$out/probe_heatmap_token.csv") lines for $n probes"
check_links "$out" "$out/index.html"
for run in spiral looped; do
    grep -q "| $run |" "$out/report.md" && ok || fail "report.md does not list $run"
    grep -q "spiral train --config $dir/$run.json" "$out/index.html" && ok || fail "command line of $run missing"
done
grep -q "entropy floor" "$out/report.md" && ok || fail "report.md lacks the entropy floor"
for link in $(grep -o -E '\]\([^)#][^)]*\)' "$out/report.md" | sed -E 's/^\]\((.*)\)$/\1/'); do
    [ -e "$out/$link" ] || fail "report.md: broken link $link"
done
ok
# a saved script redraws its figure
rm "$out/cka.png"
(cd "$out" && gnuplot cka.gp) && [ -s "$out/cka.png" ] && ok || fail "cka.gp does not redraw cka.png"

# --runs: one run, in its own directory
"$SPIRAL" report --store "$dir/s.db" --out "$dir/one" --runs looped >/dev/null 2>&1 && ok || fail "report --runs looped"
grep -q ">looped<" "$dir/one/index.html" && ! grep -q ">spiral<" "$dir/one/index.html" && ok ||
    fail "--runs looped: the page lists other runs"
grep -q "Not drawn: no probe results at latent sites" "$dir/one/index.html" && ok ||
    fail "--runs looped: the latent heatmap is not noted as skipped"

# --probe-sites and --probe-iterations: only those probes in the tables and figures
"$SPIRAL" report --store "$dir/s.db" --out "$dir/sites" --probe-sites token --probe-iterations 1-2 >/dev/null 2>&1 && ok ||
    fail "report --probe-sites token --probe-iterations 1-2"
n=$(sqlite3 "$dir/s.db" "SELECT count(*) FROM probe_results WHERE control='none' AND site = 'token' AND iteration IN (1, 2)")
[ "$(($(wc -l < "$dir/sites/probe_heatmap_token.csv") - 1))" = "$n" ] && ok ||
    fail "filtered probe_heatmap_token.csv: $(wc -l < "$dir/sites/probe_heatmap_token.csv") lines for $n probes"
! grep -q ",coda,\|,token,0,\|,token,3," "$dir/sites/probe_heatmap_token.csv" && ok || fail "filtered CSV holds other probes"
grep -q "Not drawn: no probe results at latent sites" "$dir/sites/index.html" && ok ||
    fail "--probe-sites token: the latent heatmap is not noted as skipped"
# the probe table carries the controls, the margins and the verdict
grep -q "| random model | lexical | margin over random | margin over lexical |.*| verdict |" "$dir/sites/report.md" && ok ||
    fail "probe table header lacks the controls and the verdict"
grep -qE "\| (encoded|not encoded|not tested) \|$" "$dir/sites/report.md" && ok || fail "probe table rows lack a verdict"
expect 1 "unknown site 'latent'" "$SPIRAL" report --store "$dir/s.db" --out "$dir/x" --probe-sites token,latent
expect 1 "'2-1'" "$SPIRAL" report --store "$dir/s.db" --out "$dir/x" --probe-iterations 2-1

# bad input
expect 2 "required" "$SPIRAL" report --store "$dir/s.db"
expect 2 "unknown argument" "$SPIRAL" report --store "$dir/s.db" --out "$dir/x" --colour red
expect 2 "split" "$SPIRAL" report --store "$dir/s.db" --out "$dir/x" --split sideways
expect 1 "no run named 'nope'" "$SPIRAL" report --store "$dir/s.db" --out "$dir/x" --runs spiral,nope
expect 1 "$dir/none.db" "$SPIRAL" report --store "$dir/none.db" --out "$dir/x"
[ ! -e "$dir/none.db" ] && ok || fail "report created a store"
touch "$dir/file"
expect 1 "$dir/file" "$SPIRAL" report --store "$dir/s.db" --out "$dir/file"
expect 1 "gnuplot-nox" env SPIRAL_GNUPLOT="$dir/no-gnuplot" "$SPIRAL" report --store "$dir/s.db" --out "$dir/x"

echo "report: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

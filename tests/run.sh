#!/bin/sh
# Runs the test binaries given as arguments and every tests/*.sh script
# (each script gets the spiral binary in $SPIRAL), then prints the total as
# "N passed, N failed". Exits non-zero if anything failed.
BUILD=${BUILD:-build}
export SPIRAL="$BUILD/spiral"
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "$@" tests/*.sh; do
    case "$t" in tests/run.sh|tests/harness.sh) continue ;; esac
    [ -e "$t" ] || continue
    case "$t" in *.sh) cmd="sh $t" ;; *) cmd="$t" ;; esac
    if $cmd >"$log" 2>&1; then status=0; else status=1; fi
    line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -n "$line" ]; then
        p=$(echo "$line" | sed -E 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\1/')
        f=$(echo "$line" | sed -E 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\2/')
    else
        p=0; f=1
    fi
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" -ne 0 ]; then
        echo "---- $t FAILED ----"; cat "$log"; echo "----"
    else
        echo "$t: $p passed"
        # a test that could not run here says so (e.g. the GPU tests)
        grep -i 'skipped' "$log" | sed 's/^/  /'
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

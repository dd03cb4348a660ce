#!/bin/sh
# Runs the test programs given as arguments (built with -fsanitize=thread
# in $BUILD/tests/) under ThreadSanitizer: any data race stops the program
# with exit 66 and its report. OpenBLAS runs on one thread, as spiral's
# pool sets it, so only spiral's own threads are watched. Prints
# "tsan: N passed, N failed"; exits non-zero if any failed. Where the
# kernel's address layout keeps ThreadSanitizer from starting at all, says
# so and passes (that is the machine, not the code).
BUILD=${BUILD:-build/tsan}
export OPENBLAS_NUM_THREADS=1
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 ${TSAN_OPTIONS:-}"
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "$@"; do
    if "$BUILD/tests/$t" >"$log" 2>&1; then
        passed=$((passed + 1))
        echo "tsan $t: $(grep -E '[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1), no data race"
    elif grep -q "FATAL: ThreadSanitizer" "$log" && ! grep -q "WARNING: ThreadSanitizer" "$log"; then
        echo "tsan $t: skipped (ThreadSanitizer cannot start here: $(grep -m1 FATAL "$log"))"
    else
        failed=$((failed + 1))
        echo "---- tsan $t FAILED ----"; cat "$log"; echo "----"
    fi
done
echo "tsan: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

# harness.sh: what the tests/*.sh scripts share; each sources it first:
#   . "$(dirname "$0")/harness.sh"
# It sets SPIRAL (the binary under test, build/spiral unless given), dir (a
# fresh temporary folder, removed on exit; a script that needs more on exit
# sets its own trap, removing $dir too), the counters passed and failed
# with ok and fail MESSAGE, and expect (below). Each script ends by printing
# "NAME: $passed passed, $failed failed", which tests/run.sh adds up.
SPIRAL=${SPIRAL:-build/spiral}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }

# expect CODE PATTERN command...: the command exits with status CODE and,
# unless PATTERN is empty, its stderr matches PATTERN (grep); its stdout is
# left in $dir/out, its stderr in $dir/err.
expect() {
    code=$1; pattern=$2; shift 2
    "$@" >"$dir/out" 2>"$dir/err"
    status=$?
    if [ "$status" -ne "$code" ]; then fail "$* exited $status, expected $code: $(cat "$dir/err")"
    elif [ -n "$pattern" ] && ! grep -q -- "$pattern" "$dir/err"; then
        fail "$*: stderr lacks '$pattern': $(cat "$dir/err")"
    else ok; fi
}

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

# For the GPU scripts (tests/cuda*.sh, run from the repository root):
# cuda_skip_without_gpu NAME WHAT: where nvcc or a GPU is missing, prints
# that WHAT were skipped and NAME's empty total, and exits 0.
cuda_skip_without_gpu() {
    if ! command -v "${NVCC:-nvcc}" >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
        echo "$1: $2 skipped (no nvcc/GPU)"
        echo "$1: 0 passed, 0 failed"
        exit 0
    fi
}

# cuda_build NAME TARGET...: makes TARGET (BUILD, default build); a failed
# build prints the end of its log and NAME's failure, and exits 1.
cuda_build() {
    name=$1; shift
    BUILD=${BUILD:-build}
    mkdir -p "$BUILD"
    if ! make --no-print-directory BUILD="$BUILD" "$@" >"$BUILD/$name-build.log" 2>&1; then
        tail -n 40 "$BUILD/$name-build.log"
        echo "$name: build failed (the whole log: $BUILD/$name-build.log)"
        echo "$name: 0 passed, 1 failed"
        exit 1
    fi
}

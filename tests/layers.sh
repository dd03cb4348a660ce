#!/bin/sh
# layers.sh: checks that the library's folders depend one way.
#
#   base/ <- data/ <- core/ <- probes/, analysis/ <- reports/ <- cli/
#
# Every `#include "name.h"` in a folder must name a header of the same
# folder or of a folder below it (probes/ and analysis/ sit side by side and
# may not include each other). Header names must be unique across folders,
# since they are included by bare name. Prints "N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
FOLDERS="base data core probes analysis reports cli"

# rank FOLDER: the layer's height (same height: neither may include the other).
rank() {
    case "$1" in
        base) echo 0 ;; data) echo 1 ;; core) echo 2 ;;
        probes|analysis) echo 3 ;; reports) echo 4 ;; cli) echo 5 ;;
        *) echo -1 ;;
    esac
}

passed=0
failed=0
owners=$(mktemp)
trap 'rm -f "$owners"' EXIT

# Which folder owns each header name.
for f in $FOLDERS; do
    for h in "$f"/*.h "$f"/*/*.h; do
        [ -e "$h" ] && echo "$(basename "$h") $f"
    done
done | sort >"$owners"
dups=$(awk '{print $1}' "$owners" | uniq -d)
if [ -n "$dups" ]; then
    echo "FAIL: header names used in two folders: $dups"
    failed=$((failed + 1))
else
    passed=$((passed + 1))
fi

for f in $FOLDERS; do
    rf=$(rank "$f")
    for src in "$f"/*.c "$f"/*.h "$f"/*/*.c "$f"/*/*.h "$f"/*/*.cu "$f"/*/*.cuh; do
        [ -e "$src" ] || continue
        bad=0
        for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$src"); do
            name=$(basename "$inc")
            owner=$(awk -v n="$name" '$1 == n {print $2; exit}' "$owners")
            [ -z "$owner" ] && continue          # a header of the same subfolder
            [ "$owner" = "$f" ] && continue
            ro=$(rank "$owner")
            if [ "$ro" -ge "$rf" ]; then
                echo "FAIL: $src includes $inc of $owner/ (a layer not below $f/)"
                bad=1
            fi
        done
        if [ "$bad" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    done
done
echo "layers: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

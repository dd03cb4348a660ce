#!/bin/sh
# scripts/cuda_deps.sh (the folder `make cuda CUDA_DEPS=DIR` builds with on
# a GPU machine without the -dev packages): it refuses a missing argument,
# and the folder it lays out is whole: a program that includes each header
# from it (not from /usr/include) and links its static GSL, SQLite, nettle
# and jansson builds and computes with all four. Needs no GPU.
. "$(dirname "$0")/harness.sh"

expect 2 "usage" sh scripts/cuda_deps.sh

deps="$dir/deps"
mkdir -p "$deps/include/stale"
if sh scripts/cuda_deps.sh "$deps" >"$dir/out" 2>"$dir/err"; then ok; else
    fail "cuda_deps.sh: $(cat "$dir/err")"; echo "cuda_deps: $passed passed, $failed failed"; exit 1
fi
[ ! -e "$deps/include/stale" ] && ok || fail "an older folder's contents were kept"
leftover=$(ls -d "$deps".tmp.* 2>/dev/null)
[ -z "$leftover" ] && ok || fail "temporary folder left: $leftover"
for f in lib/libgsl.a lib/libsqlite3.a lib/libnettle.a lib/libjansson.a include/cblas.h; do
    [ -s "$deps/$f" ] && ok || fail "$f missing from the folder"
done

cat >"$dir/use.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include <cblas.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort.h>
#include <jansson.h>
#include <nettle/sha2.h>
#include <sqlite3.h>

int main(void) {
    double v[3] = {3, 1, 2};
    gsl_sort(v, 1, 3);
    sqlite3 *db;
    sqlite3_stmt *st;
    int sum = 0;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT 40 + 2", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        return 1;
    sum = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    json_t *j = json_loads("{\"n\": 7}", 0, NULL);
    struct sha256_ctx h;
    uint8_t digest[SHA256_DIGEST_SIZE];
    sha256_init(&h);
    sha256_update(&h, 3, (const uint8_t *)"abc");
    sha256_digest(&h, sizeof digest, digest);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    printf("%g %g %g %d %d %02x%02x %lu\n", v[0], v[1], v[2], sum,
           (int)json_integer_value(json_object_get(j, "n")), digest[0], digest[1],
           gsl_rng_get(r) > 0 ? 1UL : 0UL);
    gsl_rng_free(r);
    json_decref(j);
    return 0;
}
EOF
# every header from the folder: the dependency list names no /usr/include copy
deps_list=$(cc -M -I"$deps/include" "$dir/use.c" 2>"$dir/err")
for h in gsl/gsl_rng.h jansson.h nettle/sha2.h sqlite3.h cblas.h; do
    echo "$deps_list" | grep -q "$deps/include/$h" && ok || fail "$h not taken from the folder"
done
if cc -I"$deps/include" "$dir/use.c" -o "$dir/use" "$deps/lib/libgsl.a" "$deps/lib/libsqlite3.a" \
       "$deps/lib/libnettle.a" "$deps/lib/libjansson.a" $(pkg-config --libs openblas) -lm -lpthread -ldl \
       2>"$dir/err"; then
    ok
    # sorted, SELECT 40 + 2, the JSON's n, SHA-256("abc") starts ba78, a draw
    out=$("$dir/use")
    [ "$out" = "1 2 3 42 7 ba78 1" ] && ok || fail "the program built from the folder printed '$out'"
else
    fail "a program against the folder's headers and libraries did not link: $(head -5 "$dir/err")"
fi

echo "cuda_deps: $passed passed, $failed failed"

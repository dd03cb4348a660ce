#!/bin/sh
# Lays out DIR for `make cuda CUDA_DEPS=DIR` on a GPU machine that has CUDA
# but not the -dev packages of spiral's libraries: DIR/include with the
# headers of GSL, SQLite, nettle, jansson and OpenBLAS's CBLAS, DIR/lib with
# the static GSL, SQLite, nettle and jansson, all copied from this machine's
# Debian packages (scripts/deps.sh installs them). OpenBLAS itself stays a
# shared library: point CUDA_BLAS at the one on the GPU machine, e.g.
#   make cuda CUDA_DEPS=DIR CUDA_BLAS="-L/usr/lib/x86_64-linux-gnu -l:libopenblas.so.0"
# Build DIR on a machine whose C library is no newer than the GPU machine's
# (static libraries built against a newer glibc may not link there).
set -e
if [ $# -ne 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    echo "usage: sh scripts/cuda_deps.sh DIR" >&2
    echo "  copies headers and static libraries for 'make cuda CUDA_DEPS=DIR'" >&2
    exit 2
fi
dir=$1
lib=/usr/lib/x86_64-linux-gnu
blas_inc=/usr/include/x86_64-linux-gnu/openblas-pthread
for f in /usr/include/gsl /usr/include/nettle /usr/include/sqlite3.h /usr/include/jansson.h \
         /usr/include/jansson_config.h "$blas_inc/cblas.h" "$blas_inc/openblas_config.h" \
         "$lib/libgsl.a" "$lib/libsqlite3.a" "$lib/libnettle.a" "$lib/libjansson.a"; do
    if [ ! -e "$f" ]; then
        echo "cuda_deps: $f is missing (run scripts/deps.sh as root first)" >&2
        exit 1
    fi
done
# build in a temporary folder beside DIR, then rename: nothing half-made
tmp="$dir.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp/include" "$tmp/lib"
cp -r /usr/include/gsl /usr/include/nettle "$tmp/include/"
cp /usr/include/sqlite3.h /usr/include/jansson.h /usr/include/jansson_config.h \
   "$blas_inc/cblas.h" "$blas_inc/openblas_config.h" "$tmp/include/"
cp "$lib/libgsl.a" "$lib/libsqlite3.a" "$lib/libnettle.a" "$lib/libjansson.a" "$tmp/lib/"
rm -rf "$dir"
mv "$tmp" "$dir"
echo "cuda_deps: wrote $dir ($(du -sh "$dir" | cut -f1))"

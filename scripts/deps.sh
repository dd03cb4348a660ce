#!/bin/sh
# Installs the Debian packages spiral needs, if any is missing.
# As root it runs apt-get; otherwise it prints the exact command and fails.
PACKAGES="gcc make pkg-config libopenblas-dev libgsl-dev libsqlite3-dev libjansson-dev \
nettle-dev sqlite3 gnuplot-nox python3 python3-numpy bible-kjv bible-kjv-text"
missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
    echo "deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null || {
        echo "deps: apt-get install failed for:$missing" >&2
        exit 1
    }
else
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: run: sudo apt-get install -y$missing" >&2
    exit 1
fi

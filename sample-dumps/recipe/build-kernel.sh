#!/bin/sh
# Build the vmcrash sample kernel from Debian 12's linux-source-6.1.
# Usage: build-kernel.sh BUILD_DIR   (needs: apt-get install linux-source-6.1 dwarves bc bison flex libelf-dev libssl-dev)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=$(mkdir -p "${1:?usage: build-kernel.sh BUILD_DIR}" && cd "$1" && pwd)
mkdir -p "$build"
cd "$build"
[ -d linux-source-6.1 ] || tar xf /usr/src/linux-source-6.1.tar.xz
cd linux-source-6.1
make -s tinyconfig
./scripts/kconfig/merge_config.sh -m .config "$here/kernel.fragment" >/dev/null
make -s olddefconfig
missing=0
for opt in $(grep -E '^CONFIG_[A-Z0-9_]+=y' "$here/kernel.fragment" | cut -d= -f1); do
  grep -qx "$opt=y" .config || { echo "config lost: $opt" >&2; missing=1; }
done
[ $missing = 0 ] || exit 1
make -j"$(nproc)" bzImage modules 2>&1 | tail -n 20
rm -rf ../oops-module && cp -r "$here/oops-module" ../oops-module
make -s M="$build/oops-module" modules

#!/bin/sh
# vmcrash set-up on a fresh Debian 12 machine: system packages, then a
# virtual environment in .venv with vmcrash and its test tools.
#   ./setup.sh            then   .venv/bin/pytest
set -eu
cd "$(dirname "$0")"

# liblzo2-dev: python-lzo builds against it (LZO-compressed kdumps).
# python3-venv, python3-dev, gcc: the virtual environment and C extensions.
# xz-utils: unpacks the sample dumps (Python's lzma does it too; handy by hand).
packages="liblzo2-dev python3-venv python3-dev gcc xz-utils"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then as_root=""; else as_root="sudo"; fi
  $as_root apt-get update
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y --no-install-recommends $missing
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test,cluster]'
# A third-party plugin package: the tests prove entry-point discovery with it.
.venv/bin/python -m pip install --quiet -e tests/thirdparty
echo "vmcrash installed in .venv: run the tests with .venv/bin/pytest"

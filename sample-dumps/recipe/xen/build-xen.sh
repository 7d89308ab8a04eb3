#!/bin/bash
# Build the Xen 4.17 hypervisor from Debian 12's source package, with DWARF in xen-syms.
# Usage: build-xen.sh BUILD_DIR     (e.g. /work/build/xen)
# Needs: a deb-src line for bookworm main; gcc flex bison python3 xz-utils.
# Debian's kconfig (debian/xen-kconfig: CONFIG_DEBUG=n) is kept; CONFIG_EXPERT=y is
# needed to make CONFIG_DEBUG_INFO visible, and CONFIG_DEBUG_INFO=y keeps DWARF in xen-syms.
# Time: about 5 minutes on 2 cores.
set -eu
VER=${XEN_DEB_VERSION:-4.17.5+72-g01140da4e8-1}
build=$(mkdir -p "${1:?usage: build-xen.sh BUILD_DIR}" && cd "$1" && pwd)
cd "$build"
src=$build/xen-${VER%-*}
[ -d "$src" ] || apt-get source "xen=$VER"
cd "$src"
args=(XEN_TARGET_ARCH=x86_64 XEN_COMPILE_ARCH=x86_64
      EXTRA_CFLAGS_XEN_CORE="-ffile-prefix-map=$src=. -fdebug-prefix-map=$src=.")
# Reproducible-ish build date, as debian/rules does (SOURCE_DATE_EPOCH = changelog date).
export SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -STimestamp)
export XEN_BUILD_DATE=$(LC_ALL=C date -u -d "@$SOURCE_DATE_EPOCH")
export XEN_BUILD_TIME=$(LC_ALL=C date -u -d "@$SOURCE_DATE_EPOCH" "+%T")
cp debian/xen-kconfig xen/.config
cat >> xen/.config <<'KC'
CONFIG_EXPERT=y
CONFIG_DEBUG_INFO=y
CONFIG_KEXEC=y
KC
make -C xen olddefconfig "${args[@]}"
grep -E '^CONFIG_(EXPERT|DEBUG_INFO|DEBUG|KEXEC)=' xen/.config
make -C xen -j"$(nproc)" "${args[@]}"
ls -l xen/xen xen/xen.gz xen/xen-syms
file xen/xen-syms

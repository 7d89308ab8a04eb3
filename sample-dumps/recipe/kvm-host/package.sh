#!/bin/sh
# Copy the kvm-host sample from the scratch run dir into sample-dumps/kvm-host/.
# Usage: package.sh RUN_DIR DEST_DIR      (after run.sh and facts.sh)
# Stores vmcore.elf as vmcore.elf.xz (xz -9e, 192 MiB dictionary) only: the kdump-zlib file the kdump
# kernel also wrote is 29.5 MB (22 MB even after xz); remake it from the ELF with
#   makedumpfile -c -d 23 vmcore.elf vmcore.kdump-zlib
set -eu
here=$(cd "$(dirname "$0")" && pwd)
run=$(cd "$1" && pwd); dest=$2
mkdir -p "$dest"
xz --lzma2=preset=9e,dict=192MiB -T1 -c "$run/vmcore.elf" > "$dest/vmcore.elf.xz"
for f in console.log inner-console.log qemu.cmd qemu.exit crash-kernel-dmesg.txt makedumpfile-version.txt saved-files.txt; do
	cp "$run/$f" "$dest/$f"
done
# makedumpfile logs without the progress-indicator lines
for f in makedumpfile-elf.log makedumpfile-zlib.log; do
	tr '\r' '\n' < "$run/$f" | grep -v -E '\[ *[0-9.]+ ?%\]' | grep -v '^ *$' > "$dest/$f"
done
rm -rf "$dest/host-facts" "$dest/facts"
cp -r "$run/host-facts" "$dest/host-facts"
cp -r "$run/sample/facts" "$dest/facts"
cp "$run/sample/facts.json" "$dest/facts.json"
chmod -R a+rX,go-w "$dest"; chmod 644 "$dest/vmcore.elf.xz"
du -sh "$dest"; ls -l "$dest"

#!/bin/sh
# Copy one sample from the scratch dirs into sample-dumps/<sample>/.
# Usage: package-sample.sh WORK_SAMPLE_DIR RUN_DIR MANIFEST DEST_DIR
#   dump files are taken from WORK_SAMPLE_DIR as named in MANIFEST (a name ending in
#   .xz is compressed from the file without .xz with xz -9); RUN_DIR's logs and the
#   facts/ dir and facts.json are copied too.
set -eu
w=$(cd "$1" && pwd); run=$(cd "$2" && pwd); manifest=$3; dest=$4
mkdir -p "$dest"
grep -v '^#' "$manifest" | cut -d'|' -f1 | while read -r name; do
	[ -n "$name" ] || continue
	case "$name" in
	*.xz) xz -9 -T2 -c "$w/${name%.xz}" > "$dest/$name" ;;
	*) cp "$w/$name" "$dest/$name" ;;
	esac
	chmod 644 "$dest/$name"
done
for f in console.log crash-kernel-dmesg.txt makedumpfile-version.txt qemu.cmd monitor.txt; do
	[ -f "$run/$f" ] && cp "$run/$f" "$dest/$f"
done
rm -rf "$dest/facts"; cp -r "$w/facts" "$dest/facts"
cp "$w/facts.json" "$dest/facts.json"
du -sh "$dest"

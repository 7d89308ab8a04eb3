#!/bin/sh
# Collect the facts about one sample: the full set of raw crash outputs from the
# primary crash (default crash 8.0.6 in the Debian 13 chroot), sys/ps/bt -a from
# every crash version on every file, drgn on every file, then facts.json.
# Usage: facts.sh WORK_SAMPLE_DIR KERNEL_DIR MANIFEST PRIMARY_FILE [MODNAME=KO ...]
#   WORK_SAMPLE_DIR holds the uncompressed dump files named as in MANIFEST minus .xz;
#   KERNEL_DIR holds vmlinux; MANIFEST lines are "file|format|made_by".
# Environment:
#   BUILD (default /work/build): holds the chroots trixie/ (crash 8.0.6) and sid/
#     (crash 9.0.2); it is bind-mounted at /data inside them, so the sample dirs
#     must be under it.
#   PRIMARY (default 8.0.6): which crash writes facts/crash.*.txt: 8.0.6 or 9.0.2.
# Writes WORK_SAMPLE_DIR/facts/ and WORK_SAMPLE_DIR/facts.json (a draft, checked by
# hand; hand-written additions come from MANIFEST's sibling *.extra.json).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-/work/build}; PRIMARY=${PRIMARY:-8.0.6}
s=$(cd "$1" && pwd); k=$(cd "$2" && pwd); manifest=$(cd "$(dirname "$3")" && pwd)/$(basename "$3"); primary=$4
shift 4
mods=""; kos=""
for m in "$@"; do mods="$mods --mod $m"; kos="$kos ${m#*=}"; done
root_of() { case "$1" in 8.0.2) echo /;; 8.0.6) echo "$BUILD/trixie";; 9.0.2) echo "$BUILD/sid";; esac; }
f="$s/facts"; rm -rf "$f"; mkdir -p "$f/per-file"
cd "$s"
t0=$(date +%s)
python3 "$here/crash_facts.py" --root "$(root_of "$PRIMARY")" --bind "$BUILD" --full $mods "$k/vmlinux" "$primary" "$f" crash || true
echo "$PRIMARY" > "$f/crash-version.txt"
python3 "$here/drgn_facts.py" "$primary" "$k/vmlinux" $kos > "$f/drgn.json"
grep -v '^#' "$manifest" | cut -d'|' -f1 | sed 's/\.xz$//' | while read -r file; do
	[ -n "$file" ] || continue
	for v in 8.0.2 8.0.6 9.0.2; do
		[ -d "$(root_of $v)" ] || continue
		python3 "$here/crash_facts.py" --root "$(root_of $v)" --bind "$BUILD" $mods "$k/vmlinux" "$file" "$f/per-file" "crash-$v.$file" || true
	done
	python3 "$here/drgn_facts.py" "$file" "$k/vmlinux" $kos > "$f/per-file/drgn.$file.json" 2> "$f/per-file/drgn.$file.stderr" || true
	[ -s "$f/per-file/drgn.$file.json" ] || rm -f "$f/per-file/drgn.$file.json"
	[ -s "$f/per-file/drgn.$file.stderr" ] || rm -f "$f/per-file/drgn.$file.stderr"
done
extra="${manifest%.manifest}.extra.json"
[ -f "$extra" ] || extra=""
python3 "$here/make_facts_json.py" "$s" "$manifest" $extra
echo "facts for $s took $(( $(date +%s) - t0 )) s"

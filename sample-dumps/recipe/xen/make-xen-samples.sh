#!/bin/bash
# Turn finished runs of run-xen.sh into the stored samples (xz files, raw facts, tool
# outputs, draft facts.json).  facts.json is then checked by hand against facts/.
# Usage: make-xen-samples.sh BUILD_DIR RUN_XENDUMP_HOST RUN_KDUMP SAMPLE_DUMPS_DIR
#   RUN_XENDUMP_HOST: a run of `run-xen.sh ... xendump+host 768M`
#   RUN_KDUMP:        a run of `run-xen.sh ... kdump 896M crashkernel=128M`
# Needs: xz, crash 8.0.6 in the trixie chroot (../make-trixie-chroot.sh), crash 8.0.2
# (Debian 12), drgn in /work/main/.venv, the sample vmlinux (VMLINUX=...).
# Time: 6-25 min (load), nearly all of it xz -9e with a 192 MiB dictionary (-T1) on 2 dumps
# of 800 MB (with -T2 the blocks are compressed apart and the files are ~30% bigger).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?build dir}" && pwd); r1=$(cd "${2:?xendump+host run}" && pwd)
rk=$(cd "${3:?kdump run}" && pwd); out=$(cd "${4:?sample-dumps dir}" && pwd)
vmlinux=${VMLINUX:-/work/build/linux-source-6.1/vmlinux}
trixie=${TRIXIE:-/work/build/trixie}
py=${PYTHON:-/work/main/.venv/bin/python}
src=$(ls -d "$build"/xen-4.17*/ | head -1)
XZBIG=(xz --lzma2=preset=9e,dict=192MiB -T1)
mkdir -p "$build/analysis" "$out/xen-host-qemu" "$out/xen-hypervisor-kdump"
# the two big compressions run in the background, one thread each
"${XZBIG[@]}" -c "$r1/host.elf" > "$out/xen-host-qemu/host.elf.xz" & xz1=$!
"${XZBIG[@]}" -c "$rk/kdump/vmcore.raw" > "$out/xen-hypervisor-kdump/vmcore.elf.xz" & xz2=$!
cp "$src/xen/xen-syms" "$build/analysis/xen-syms"
syms=$build/analysis/xen-syms
# crash in the Debian 13 chroot sees /work/build as /data (see ../crash_facts.py)
mkdir -p "$trixie/data"; mountpoint -q "$trixie/data" || mount --bind /work/build "$trixie/data"
in_chroot() { echo "/data${1#/work/build}"; }
crash806() { chroot "$trixie" timeout 600 crash -s --no_scroll "$@"; }

# ---- xen-kernel: the hypervisor that ran ----
K=$out/xen-kernel; mkdir -p "$K"
xz -9e -T1 -c "$src/xen/xen-syms" > "$K/xen-syms.xz"
cp "$src/xen/.config" "$K/xen.config"
{ echo "xen_version: $(awk '/^xen_version/ {print $3}' "$r1"/facts/xl-info.xendump.txt)"
  grep -a -m1 'Xen version' "$r1"/facts/xl-dmesg.xendump.txt | sed 's/^(XEN) /banner: /'
  echo "build_id: $(awk '/^build_id/ {print $3}' "$r1"/facts/xl-info.xendump.txt)"
  echo "debian_source_package: xen $(basename "$src" | sed 's/^xen-//')-1 (bookworm main)"
  echo "xen-syms sha256: $(sha256sum "$src/xen/xen-syms" | cut -d' ' -f1)"
  echo "xen (multiboot ELF booted by QEMU -kernel) sha256: $(sha256sum "$src/xen/xen" | cut -d' ' -f1)"
  echo "xen-syms: $(file -b "$src/xen/xen-syms")"; } > "$K/xen-version.txt"

# ---- 1: xendump of the PV domU ----
S=$out/xen-domU-xendump; mkdir -p "$S/facts"
cp "$r1"/facts/{xl-info,xl-list,xl-vcpu-list,xl-dmesg,time}.xendump.txt "$r1"/facts/xl-list-l.xendump.json \
   "$r1"/facts/{domU-console,dom0-ps}.xendump.txt "$r1"/facts/xl-dump-core.txt \
   "$r1"/facts/xl-vcpu-list.after-xendump.txt "$r1"/facts/xl-create.*.txt "$S/facts/"
"${XZBIG[@]}" -c "$r1/xendump.elf" > "$S/xendump.elf.xz"
python3 "$here/../crash_facts.py" --bind /work/build "$vmlinux" "$r1/xendump.elf" "$S/facts" crash806-xendump
printf 'help -D\nlog\nmach\nq\n' | crash806 "$(in_chroot "$vmlinux")" "$(in_chroot "$r1/xendump.elf")" \
	> "$S/facts/crash806-xendump.help-D-log-mach.txt" 2>&1 || true
printf 'ps\nq\n' | timeout 600 crash -s --no_scroll "$vmlinux" "$r1/xendump.elf" \
	> "$S/facts/crash802-xendump.ps.txt" 2>&1 || true
"$py" "$here/../drgn_facts.py" "$r1/xendump.elf" "$vmlinux" > /dev/null 2> "$S/facts/drgn-0.3.0-xendump.err.txt" || true
readelf -h -S "$r1/xendump.elf" > "$S/facts/readelf-h-S.txt"
python3 "$here/make_xen_facts.py" "$S" xendump "$here/samples/xen-domU-xendump.manifest" \
	"$here/samples/xen-domU-xendump.extra.json" > "$S/facts.json"

# ---- 2: QEMU dump-guest-memory of the whole machine ----
S=$out/xen-host-qemu; mkdir -p "$S/facts"
cp "$r1"/facts/{xl-info,xl-list,xl-vcpu-list,xl-dmesg,time,domU-console,dom0-ps}.host.txt \
   "$r1"/facts/xl-list-l.host.json "$S/facts/"
cp "$r1/monitor.txt" "$S/facts/qemu-monitor.txt"; cp "$r1/qemu.cmd" "$S/facts/qemu.cmd.txt"
cp "$r1/console.log" "$S/facts/serial-console.txt"
phys=$(grep -a -o 'New Xen image base address: 0x[0-9a-f]*' "$r1/console.log" | awk '{print $NF}')
printf 'sys\ndoms\nvcpus\npcpus\nbt -a\nlog\nq\n' | crash806 --xen_phys_start "$phys" \
	"$(in_chroot "$syms")" "$(in_chroot "$r1/host.elf")" > "$S/facts/crash806-xen.txt" 2>&1 || true
printf 'sys\nq\n' | timeout 600 crash -s --no_scroll --xen_phys_start "$phys" "$syms" "$r1/host.elf" \
	> "$S/facts/crash802-xen.txt" 2>&1 || true
readelf -h -l -n "$r1/host.elf" > "$S/facts/readelf-h-l-n.txt" 2>&1 || true
# the domU's tasks, as crash 8.0.6 read them from the xendump of the same boot ~10 s earlier
cp "$out/xen-domU-xendump/facts/crash806-xendump.ps.txt" "$S/facts/crash806-domU-xendump-same-boot.ps.txt"
python3 "$here/make_xen_facts.py" "$S" host "$here/samples/xen-host-qemu.manifest" \
	"$here/samples/xen-host-qemu.extra.json" > "$S/facts.json"

# ---- 3: Xen kdump (crash kernel's /proc/vmcore) ----
S=$out/xen-hypervisor-kdump; mkdir -p "$S/facts"
cp "$rk"/facts/{xl-info,xl-list,xl-vcpu-list,xl-dmesg,time,domU-console,dom0-ps}.kdump.txt \
   "$rk"/facts/xl-list-l.kdump.json "$rk"/facts/{kexec-p,dom0-iomem}.txt "$S/facts/"
cp "$rk"/kdump/crash-kernel-{cmdline,dmesg,iomem}.txt "$S/facts/"
cp "$rk/console.log" "$S/facts/serial-console.txt"; cp "$rk/qemu.cmd" "$S/facts/qemu.cmd.txt"
printf 'sys\ndoms\nvcpus\npcpus\nbt -a\nlog\nq\n' | crash806 \
	"$(in_chroot "$syms")" "$(in_chroot "$rk/kdump/vmcore.raw")" > "$S/facts/crash806-xen.txt" 2>&1 || true
printf 'sys\nq\n' | timeout 600 crash -s --no_scroll "$syms" "$rk/kdump/vmcore.raw" \
	> "$S/facts/crash802-xen.txt" 2>&1 || true
readelf -h -l -n "$rk/kdump/vmcore.raw" > "$S/facts/readelf-h-l-n.txt" 2>&1 || true
python3 "$here/make_xen_facts.py" "$S" kdump "$here/samples/xen-hypervisor-kdump.manifest" \
	"$here/samples/xen-hypervisor-kdump.extra.json" > "$S/facts.json"
wait $xz1 $xz2
du -a "$out"/xen-*

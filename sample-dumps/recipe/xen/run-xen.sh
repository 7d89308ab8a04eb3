#!/bin/bash
# Boot Xen (multiboot, uncompressed `xen` ELF) + the sample kernel as PV dom0 under QEMU TCG.
# dom0's /init (guest/dom0-init) starts the toolstack and a PV domU, then runs STEPS.
# Usage: run-xen.sh BUILD_DIR RUN_DIR STEPS [QEMU_MEM] [EXTRA_XEN_ARGS...]
#   STEPS: "+"-separated: xendump, host, kdump (see guest/dom0-init)
#   With "host", once dom0 prints READY-HOST this script stops the VM and lets QEMU
#   write `dump-guest-memory` (ELF) of the whole machine into RUN_DIR/host.elf.
# QEMU_CPU (default max,-fsgsbase): with plain -cpu max, processes in the PV domU were seen
#   to crash on a zero FS base (TLS) now and then.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?build dir}" && pwd); run=${2:?run dir}; steps=${3:?steps}; mem=${4:-768M}
shift 4 || shift $#
rm -rf "$run"; mkdir -p "$run"; run=$(cd "$run" && pwd)
src=$(ls -d "$build"/xen-4.17*/ | head -1)
cp "$src/xen/xen" "$run/xen"
cp "$build/bzImage" "$build"/{dom0,domU,crash}-initramfs.cpio "$run/"
xenargs="console=com1 com1=115200,8n1 dom0_mem=448M,max:448M smap=0 loglvl=all guest_loglvl=all $*"
dom0args="console=hvc0 earlyprintk=xen loglevel=7 init_on_free=1 vmcrash.xen=$steps"
sock="$run/monitor.sock"
set -- timeout 3000 qemu-system-x86_64 -machine pc -cpu "${QEMU_CPU:-max,-fsgsbase}" -smp 2 -m "$mem" \
	-display none -no-reboot -monitor "unix:$sock,server,nowait" -serial "file:$run/console.log" \
	-kernel "$run/xen" -append "$xenargs" \
	-initrd "$run/bzImage $dom0args,$run/dom0-initramfs.cpio" \
	-virtfs "local,path=$run,mount_tag=out,security_model=none"
echo "$*" > "$run/qemu.cmd"
start=$(date +%s)
"$@" & qpid=$!
i=0
until grep -aq -E 'VMCRASH: (READY-HOST|DONE)' "$run/console.log" 2>/dev/null; do
	sleep 5; i=$((i+1))
	[ $i -lt 560 ] || { echo "guest never became ready"; kill "$qpid"; exit 1; }
	kill -0 "$qpid" 2>/dev/null || { echo "qemu exited after $(( $(date +%s) - start )) s"; exit 0; }
done
echo "marker after $(( $(date +%s) - start )) s: $(grep -a -o -E 'VMCRASH: (READY-HOST|DONE.*)' "$run/console.log" | head -1)"
if grep -aq 'VMCRASH: READY-HOST' "$run/console.log"; then
	sleep 3
	python3 "$here/../hmp.py" "$sock" stop "info status" "info cpus" "info registers -a" \
		"dump-guest-memory $run/host.elf" quit > "$run/monitor.txt"
fi
wait "$qpid" || true
echo "done after $(( $(date +%s) - start )) s"
ls -l "$run"

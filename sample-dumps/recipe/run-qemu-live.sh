#!/bin/sh
# Boot the sample kernel under QEMU TCG with -device vmcoreinfo, start the sleeper
# and spinner, stop the VM, and let QEMU dump it (ELF and kdump-zlib) while stopped.
# Usage: run-qemu-live.sh BUILD_DIR RUN_DIR [MEM]
# QEMU writes every guest page (no filtering), so the guest runs with init_on_free=1
# (freed pages, e.g. the initrd and boot-time memory, are zeroed) and -vga none
# (no 16 MiB VGA RAM segment) to keep the dumps small.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/qemu-lib.sh"
build=$(cd "${1:?build dir}" && pwd); run=${2:?run dir}; mem=${3:-256M}
rm -rf "$run"; mkdir -p "$run"; run=$(cd "$run" && pwd)
cp "$build/linux-source-6.1/arch/x86/boot/bzImage" "$run/"
cp "$build/initramfs-live.cpio.gz" "$run/initramfs.cpio.gz"   # make-initramfs.sh BUILD_DIR live
sock="$run/monitor.sock"
set -- timeout 1800 qemu-system-x86_64 -machine q35 -cpu max -smp 2 -m "$mem" \
	-display none -vga none -no-reboot -monitor "unix:$sock,server,nowait" -serial "file:$run/console.log" \
	-device vmcoreinfo \
	-kernel "$run/bzImage" -initrd "$run/initramfs.cpio.gz" \
	-append "console=ttyS0 init_on_free=1 vmcrash.mode=live" \
	-virtfs "local,path=$run,mount_tag=out,security_model=none"
start_qemu_until_ready "$run" "VMCRASH: READY" "$@"
sleep 10   # let the spinner run and the shell go to sleep
python3 "$here/hmp.py" "$sock" stop "info status" "info cpus" "info registers -a" \
	"dump-guest-memory $run/qemu.elf" \
	"dump-guest-memory -z $run/qemu.kdump-zlib.flat" \
	"info registers -a" quit > "$run/monitor.txt"
wait "$qpid" || true
echo "done after $(( $(date +%s) - start )) s"
ls -l "$run"

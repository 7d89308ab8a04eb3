#!/bin/sh
# Facts of the kvm-host sample (all from sources other than vmcrash).
# Usage: facts.sh RUN_DIR KERNEL_DIR
#   RUN_DIR: the run.sh output (vmcore.elf, host-facts/, inner-console.log, console.log);
#   KERNEL_DIR holds vmlinux. Must be under BUILD (default /work/build), see ../facts.sh.
# Steps: 1. ../facts.sh with crash 9.0.2 as the primary crash (sys, ps, bt -a, log, mach,
#           kmem, vtop; sys/ps/bt -a with crash 8.0.2, 8.0.6, 9.0.2; drgn_facts.py)
#        2. drgn_kvm.py: host tasks, vm_list walk (vCPUs, memslots), guest RAM check
#        3. crash_kvm.py: the same KVM structures with crash 9.0.2
#        4. kvm_extra.py -> kvm-host.extra.json (host-side and inner-guest facts; checked
#           by hand), then ../make_facts_json.py again to merge it into facts.json.
# Writes RUN_DIR/sample/{vmcore.elf (hard link), facts/, facts.json}.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
run=$(cd "$1" && pwd); k=$(cd "$2" && pwd)
py=${PYTHON:-/work/main/.venv/bin/python}	# has drgn
s="$run/sample"; mkdir -p "$s"
ln -f "$run/vmcore.elf" "$s/vmcore.elf"
t0=$(date +%s)
PRIMARY=9.0.2 PATH="$(dirname "$py"):$PATH" "$here/../facts.sh" "$s" "$k" "$here/kvm-host.manifest" vmcore.elf
"$py" "$here/drgn_kvm.py" "$s/vmcore.elf" "$k/vmlinux" "$s/facts" > /dev/null
python3 "$here/crash_kvm.py" "$k/vmlinux" "$s/vmcore.elf" "$s/facts" "$s/facts/drgn.kvm.json"
"$py" "$here/kvm_extra.py" "$run" "$s/facts" "$s/vmcore.elf" "$k/vmlinux" > "$s/kvm-host.extra.json"
cmp -s "$s/kvm-host.extra.json" "$here/kvm-host.extra.json" || \
	echo "NOTE: $s/kvm-host.extra.json differs from $here/kvm-host.extra.json (check, then copy)"
python3 "$here/../make_facts_json.py" "$s" "$here/kvm-host.manifest" "$s/kvm-host.extra.json"
echo "kvm-host facts took $(( $(date +%s) - t0 )) s"

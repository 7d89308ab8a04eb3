#!/bin/bash
# Turn a finished run-pvh.sh run into the sample SAMPLE_DIR (vmcore.elf.xz, facts/, facts.json).
# Usage: make-pvh-sample.sh XEN_BUILD_DIR RUN_DIR SAMPLE_DIR
# Needs: xz; crash 8.0.6 in the Debian 13 chroot (TRIXIE, default /work/build/trixie) and
# crash 9.0.2 in the sid chroot (SID, default /work/build/sid), both with /work/build
# bind-mounted on /data; python3.  RUN_DIR must lie under /work/build.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?xen build dir}" && pwd); run=$(cd "${2:?run dir}" && pwd)
S=$(mkdir -p "${3:?sample dir}" && cd "$3" && pwd)
trixie=${TRIXIE:-/work/build/trixie}; sid=${SID:-/work/build/sid}
src=$(ls -d "$build"/xen-4.17*/ | head -1)
core=$run/kdump/vmcore.raw
[ -s "$core" ] || { echo "no $core" >&2; exit 1; }
mkdir -p "$S/facts" "$run/analysis"
t0=$(date +%s)
# the big compression in the background, one thread (-T2 compresses blocks apart: bigger)
xz --lzma2=preset=9e,dict=192MiB -T1 -c "$core" > "$S/vmcore.elf.xz.tmp" & xzpid=$!
cp "$run"/facts/{xl-info,xl-list,xl-vcpu-list,xl-dmesg,time,domU-console,dom0-ps}.kdump.txt \
   "$run"/facts/xl-list-l.kdump.json "$run"/facts/{kexec-p,dom0-iomem}.txt "$S/facts/"
cp "$run"/facts/xl-create.*.txt "$S/facts/"
cp "$run"/kdump/crash-kernel-{cmdline,dmesg,iomem}.txt "$S/facts/"
cp "$run/console.log" "$S/facts/serial-console.txt"; cp "$run/qemu.cmd" "$S/facts/qemu.cmd.txt"
cp "$src/xen/xen-syms" "$run/analysis/xen-syms"
for r in "$trixie" "$sid"; do
	mkdir -p "$r/data"; mountpoint -q "$r/data" || mount --bind /work/build "$r/data"
done
in_chroot() { echo "/data${1#/work/build}"; }
crash_in() { r=$1; shift; chroot "$r" timeout 600 crash -s --no_scroll \
	"$(in_chroot "$run/analysis/xen-syms")" "$(in_chroot "$core")" "$@"; }
printf 'sys\ndoms\nvcpus\npcpus\nbt -a\nlog\nq\n' | crash_in "$trixie" > "$S/facts/crash806-xen.txt" 2>&1 || true
printf 'sys\ndoms\nvcpus\npcpus\nbt -a\nq\n' | crash_in "$sid" > "$S/facts/crash902-xen.txt" 2>&1 || true
# the PVH domain: its id from xl list -l, its struct domain / vcpus from crash's doms / vcpus
domid=$(python3 -c 'import json,sys; print([d["domid"] for d in json.load(open(sys.argv[1])) if d["config"]["c_info"]["type"] in ("pvh","hvm")][0])' "$S/facts/xl-list-l.kdump.json")
dom=$(awk -v id="$domid" '/^ +DID +DOMAIN/ {t=1; next} t && NF>=8 {sub(/^[>*]+ +/, ""); if ($1==id) {print $2; exit}}' "$S/facts/crash806-xen.txt")
vcpus=$(awk -v id="$domid" '/VCID +PCID +VCPU/ {t=1; next} /PCID +PCPU/ {t=0} t {n=NF; if ($(n-1)==id) print $(n-4)}' "$S/facts/crash806-xen.txt")
echo "PVH domain $domid: struct domain $dom, vcpus $vcpus"
{
	d="((struct domain *)0x$dom)"
	echo "p $d->domain_id"
	echo "p/x $d->options"
	echo "p/x $d->arch.emulation_flags"
	echo "p/x $d->arch.paging.mode"
	echo "p/x $d->tot_pages"
	echo "p/x $d->max_pages"
	echo "p $d->arch.p2m->phys_table"
	echo "p/x $d->arch.p2m->max_mapped_pfn"
	echo "p $d->arch.p2m->p2m_class"
	for v in $vcpus; do
		w="((struct vcpu *)0x$v)"
		echo "p $w->vcpu_id"; echo "p $w->processor"; echo "p $w->is_running"
		echo "p/x $w->arch.hvm.guest_cr"; echo "p/x $w->arch.hvm.guest_efer"
		echo "p/x $w->arch.hvm.svm.vmcb_pa"
		echo "p/x $w->arch.hvm.svm.vmcb->_h_cr3"; echo "p/x $w->arch.hvm.svm.vmcb->_cr3"
		echo "p/x $w->arch.hvm.svm.vmcb->rip"; echo "p/x $w->arch.hvm.svm.vmcb->rsp"
		echo "p/x $w->arch.hvm.svm.vmcb->cs"
		echo "p/x $w->arch.user_regs"
	done
	echo q
} > "$run/analysis/pvh-queries.txt"
crash_in "$trixie" < "$run/analysis/pvh-queries.txt" > "$run/analysis/pvh-answers.txt" 2>&1 || true
# interleave queries and answers ($N = ... lines)
python3 - "$run/analysis/pvh-queries.txt" "$run/analysis/pvh-answers.txt" > "$S/facts/crash806-pvh-domain.txt" <<'PY'
import re, sys
qs = [l.rstrip("\n") for l in open(sys.argv[1]) if l.strip() != "q"]
text = open(sys.argv[2]).read()
parts = re.split(r"^\$\d+ = ", text, flags=re.M)
print("# crash 8.0.6 with xen-syms on vmcore.elf: the PVH domain's struct domain / vcpus")
print(parts[0].strip())
for q, a in zip(qs, parts[1:]):
    print("crash> " + q)
    print(a.rstrip())
PY
root=$(awk '/->arch.p2m->phys_table/ {getline; getline; gsub(/[^0-9]/, ""); print; exit}' "$S/facts/crash806-pvh-domain.txt")
paddr=$(awk '/VMCOREINFO-BEGIN/ {getline; print $1; exit}' "$S/facts/domU-console.kdump.txt" | tr -d '\r')
size=$(awk '/VMCOREINFO-BEGIN/ {getline; print $2; exit}' "$S/facts/domU-console.kdump.txt" | tr -d '\r')
{ echo "# npt_walk.py vmcore.elf $(printf '%#x' "$root") $paddr $size  (p2m root = d->arch.p2m->phys_table)"
  python3 "$here/npt_walk.py" "$core" "$root" "$paddr" "$size" | tr -c '\n[:print:]' '.'; } \
	> "$S/facts/npt-walk-vmcoreinfo.txt" 2>&1 || true
# guest-virtual checks: init_uts_ns (address from the guest's VMCOREINFO) through vCPU 0's cr3,
# and the user-space rip of the running vCPU through its cr3 (vmcb._cr3 / vmcb.rip from crash)
uts=$(grep -a -o 'SYMBOL(init_uts_ns)=[0-9a-f]*' "$S/facts/npt-walk-vmcoreinfo.txt" | head -1 | cut -d= -f2)
cr3s=$(awk '/vmcb->_cr3$/ {getline; print $1}' "$S/facts/crash806-pvh-domain.txt")
rips=$(awk '/vmcb->rip$/ {getline; print $1}' "$S/facts/crash806-pvh-domain.txt")
set -- $cr3s; cr3_0=$1
{ echo "# npt_walk.py --gva $cr3_0 vmcore.elf $(printf '%#x' "$root") 0x$uts 400  (init_uts_ns via vCPU 0's cr3)"
  python3 "$here/npt_walk.py" --gva "$cr3_0" "$core" "$root" "0x$uts" 400 | tr -c '\n[:print:]' '.'; } \
	> "$S/facts/npt-walk-init_uts_ns.txt" 2>&1 || true
i=0; set -- $rips
for c in $cr3s; do
	r=$1; shift
	{ echo "# npt_walk.py --gva $c vmcore.elf $(printf '%#x' "$root") $r 32  (vCPU $i: vmcb.rip through vmcb._cr3)"
	  python3 "$here/npt_walk.py" --gva "$c" "$core" "$root" "$r" 32 | grep -a -E "^(guest L|L[1-4] |gva |gpa )"
	  python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import npt_walk as n
f = open(sys.argv[2], "rb"); s = n.loads(f)
gpa = n.guest_walk(f, s, int(sys.argv[3], 0), int(sys.argv[4], 0), int(sys.argv[5], 0))
print("32 bytes at rip:", n.read_ma(f, s, n.walk(f, s, int(sys.argv[3], 0), gpa, False), 32).hex())' \
		"$here" "$core" "$root" "$c" "$r" | tail -1; } > "$S/facts/npt-walk-vcpu$i-rip.txt" 2>&1 || true
	i=$((i+1))
done
chmod 644 "$S"/facts/*
readelf -h -l -n "$core" > "$S/facts/readelf-h-l-n.txt" 2>&1 || true
wait $xzpid; mv "$S/vmcore.elf.xz.tmp" "$S/vmcore.elf.xz"
echo "raw_size: $(stat -c %s "$core")" > "$S/facts/vmcore-size.txt"
python3 "$here/make_pvh_facts.py" "$S" "$here/xen-pvh-kdump.extra.json" > "$S/facts.json"
echo "done in $(( $(date +%s) - t0 )) s"; ls -l "$S" "$S/facts"

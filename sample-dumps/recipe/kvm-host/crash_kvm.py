#!/usr/bin/env python3
"""Run crash (default 9.0.2 in the Debian sid chroot) on the kvm-host dump and save
the raw outputs of the KVM-related commands, one file per topic:

Usage: crash_kvm.py VMLINUX DUMP OUTDIR [DRGN_KVM_JSON]
  OUTDIR/crash.log-tail50.txt  the last 50 lines of `log`
  OUTDIR/crash.kvm.txt         p vm_list; list -H vm_list ... -s kvm.<fields>
  OUTDIR/crash.kvm-vcpus.txt   tree -t xarray over kvm.vcpu_array -s kvm_vcpu.<fields>
  OUTDIR/crash.kvm-memslots.txt tree -t rbtree over kvm_memslots.gfn_tree (both address spaces)
  OUTDIR/crash.qemu.txt        ps -g, bt and vm of the QEMU process
  OUTDIR/crash.guest-ram.txt   vtop -u / rd -u of the guest RAM (banner found by drgn_kvm.py)
Same conventions as ../crash_facts.py (whose Crash class is reused): the dump and
vmlinux must be under BUILD (/work/build), bind-mounted at /data in the chroot.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from crash_facts import Crash, ensure_bind  # noqa: E402

root = os.environ.get("CRASH_ROOT", "/work/build/sid")
bind = os.environ.get("BUILD", "/work/build")
vmlinux, dump, out = sys.argv[1:4]
drgn_json = sys.argv[4] if len(sys.argv) > 4 else None
os.makedirs(out, exist_ok=True)
ensure_bind(root, bind)
c = Crash(root, "crash", bind, vmlinux, dump, [])


def save(name, text):
    with open(os.path.join(out, f"crash.{name}.txt"), "w") as f:
        f.write(text)


def run(cmds):
    # echo each command first, so that the raw output shows what produced it
    seq = []
    for cmd in cmds:
        seq += [f"echo '=== crash> {cmd}'", cmd]
    return c.run(seq)[1]


# `log | tail -50` fails in the chroot ("crash: pipe operation failed"): cut here
save("log-tail50", "".join(c.run(["log"])[1].splitlines(True)[-50:]))
kvm_out = run(["p vm_list",
               "list -H vm_list -o kvm.vm_list -s kvm.userspace_pid,created_vcpus,online_vcpus,nr_memslot_pages,mm,stats_id"])
save("kvm", kvm_out)
kvms = re.findall(r"^([0-9a-f]{16})$", kvm_out, re.M)
pids = re.findall(r"userspace_pid = (\d+)", kvm_out)
vc = []
ms = []
for k in kvms:
    vc += [f"tree -t xarray -r kvm.vcpu_array {k} -s kvm_vcpu.vcpu_id,vcpu_idx,mode,cpu,pid"]
    o = c.run([f"p/x ((struct kvm *)0x{k})->memslots"])[1]
    for slots in re.findall(r"0x[0-9a-f]+", o.split("=", 1)[1]):
        idx = int(re.search(r"= (\d+)", c.run([f"p ((struct kvm_memslots *){slots})->node_idx"])[1]).group(1))
        # tree -o takes "struct.member" or a number, not gfn_node[idx]: compute the offset
        base = int(re.search(r"\[(\d+)\] struct rb_node gfn_node", c.run(["struct kvm_memory_slot.gfn_node -o"])[1]).group(1))
        rbsz = int(re.search(r"SIZE: (\d+)", c.run(["struct rb_node -o"])[1]).group(1))
        ms += [f"p ((struct kvm_memslots *){slots})->node_idx",
               "struct kvm_memory_slot.gfn_node -o", "struct rb_node -o",
               # gfn_node[node_idx] is the rb_node that links the slot into gfn_tree
               f"tree -t rbtree -r kvm_memslots.gfn_tree {slots} -o {base + idx * rbsz} "
               f"-s kvm_memory_slot.as_id,id,base_gfn,npages,userspace_addr,flags"]
save("kvm-vcpus", run(vc))
save("kvm-memslots", run([f"p ((struct kvm *)0x{k})->memslots" for k in kvms] + ms))
q = []
for p in pids:
    q += [f"ps -g {p}", f"bt -g {p}", f"vm {p}"]
save("qemu", run(q))
if drgn_json:
    g = []
    for vm in json.load(open(drgn_json))["vms"]:
        for hit in vm["ram_slot_check"]["linux_banner_hits"][:2]:
            g += [f"set {vm['userspace_pid']}", f"vtop -u {hit['hva']}", f"rd -u -a {hit['hva']} 64"]
    save("guest-ram", run(g))

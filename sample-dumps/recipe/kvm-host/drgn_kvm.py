#!/usr/bin/env python3
"""drgn facts of the kvm-host sample: host tasks, and every KVM VM on vm_list
with its vCPUs and memslots, plus a check that the guest RAM is in the dump.

Usage: drgn_kvm.py VMCORE VMLINUX OUTDIR
  -> OUTDIR/drgn.tasks.txt   "pid tgid ppid state cpu comm" for every thread
     OUTDIR/drgn.kvm.txt     human-readable walk of vm_list
     OUTDIR/drgn.kvm.json    the same as JSON (merged into facts.json)
Public drgn API and helpers only (list_for_each_entry, xa_for_each,
rbtree_inorder_for_each_entry, access_remote_vm, pid_task ...).
"""
import json
import os
import sys

import drgn
from drgn import Object, container_of, FaultError
from drgn.helpers.linux import (
    access_remote_vm, follow_phys, for_each_task, list_for_each_entry, pid_task,
    rbtree_inorder_for_each_entry, task_cpu, task_state_to_char, xa_for_each,
)

core, vmlinux, out = sys.argv[1:4]
os.makedirs(out, exist_ok=True)
prog = drgn.Program()
prog.set_core_dump(core)
prog.load_debug_info([vmlinux])

# ---- host tasks ----
with open(os.path.join(out, "drgn.tasks.txt"), "w") as f:
    f.write("pid tgid ppid state cpu comm\n")
    for t in sorted(for_each_task(prog), key=lambda t: int(t.pid)):
        f.write(f"{int(t.pid)} {int(t.tgid)} {int(t.real_parent.pid)} "
                f"{task_state_to_char(t)} {task_cpu(t)} {t.comm.string_().decode()}\n")

# ---- KVM VMs ----
VCPU_MODE = {0: "OUTSIDE_GUEST_MODE", 1: "IN_GUEST_MODE", 2: "EXITING_GUEST_MODE",
             3: "READING_SHADOW_PAGE_TABLES"}
lines, vms = [], []
for kvm in list_for_each_entry("struct kvm", prog["vm_list"].address_of_(), "vm_list"):
    mm = kvm.mm
    vm = {
        "kvm": hex(kvm.value_()),
        "userspace_pid": int(kvm.userspace_pid),
        "created_vcpus": int(kvm.created_vcpus),
        "online_vcpus": int(kvm.online_vcpus.counter),
        "nr_memslot_pages": int(kvm.nr_memslot_pages),
        "mm": hex(mm.value_()),
        # thread-group leaders using this mm (no CONFIG_MEMCG, so no mm->owner)
        "mm_users": sorted({(int(t.tgid), t.group_leader.comm.string_().decode())
                            for t in for_each_task(prog) if t.mm == mm}),
        "stats_id": kvm.stats_id.string_().decode(),
        "vcpus": [], "memslots": [],
    }
    lines.append(f"kvm {vm['kvm']}: userspace_pid {vm['userspace_pid']} created_vcpus "
                 f"{vm['created_vcpus']} online_vcpus {vm['online_vcpus']} nr_memslot_pages "
                 f"{vm['nr_memslot_pages']} mm {vm['mm']} (used by {vm['mm_users']}) stats_id {vm['stats_id']}")
    for idx, entry in xa_for_each(kvm.vcpu_array.address_of_()):
        vcpu = Object(prog, "struct kvm_vcpu *", entry.value_())
        v = {"index": int(idx), "kvm_vcpu": hex(vcpu.value_()),
             "vcpu_id": int(vcpu.vcpu_id), "vcpu_idx": int(vcpu.vcpu_idx),
             "mode": int(vcpu.mode), "mode_name": VCPU_MODE.get(int(vcpu.mode), "?"),
             "cpu": int(vcpu.cpu)}
        # the thread that last ran KVM_RUN on this vCPU (vcpu->pid is a struct pid *)
        if vcpu.pid:
            t = pid_task(vcpu.pid, prog.constant("PIDTYPE_PID"))
            if t:
                v["tid"] = int(t.pid)
                v["comm"] = t.comm.string_().decode()
                v["task_state"] = task_state_to_char(t)
                v["task_cpu"] = task_cpu(t)
        try:  # AMD SVM: the guest state save area of the current VMCB
            svm = container_of(vcpu, "struct vcpu_svm", "vcpu")
            save = svm.vmcb.save
            v["guest_rip"] = hex(save.rip)
            v["guest_rsp"] = hex(save.rsp)
            v["guest_cr3"] = hex(save.cr3)
            v["guest_cpl"] = int(save.cpl)
        except (LookupError, FaultError) as e:
            v["guest_regs_error"] = str(e)
        vm["vcpus"].append(v)
        lines.append("  vcpu " + " ".join(f"{k}={val}" for k, val in v.items()))
    for as_id in range(len(kvm.memslots)):
        slots = kvm.memslots[as_id]
        node_idx = int(slots.node_idx)
        for s in rbtree_inorder_for_each_entry("struct kvm_memory_slot",
                                               slots.gfn_tree.address_of_(),
                                               f"gfn_node[{node_idx}]"):
            m = {"as_id": int(s.as_id), "id": int(s.id), "base_gfn": hex(s.base_gfn),
                 "npages": int(s.npages), "gpa_start": hex(s.base_gfn * 4096),
                 "gpa_end": hex((s.base_gfn + s.npages) * 4096),
                 "userspace_addr": hex(s.userspace_addr),
                 "userspace_end": hex(s.userspace_addr + s.npages * 4096),
                 "flags": int(s.flags), "memslots": hex(slots.value_()),
                 "node_idx": node_idx}
            vm["memslots"].append(m)
            lines.append("  memslot " + " ".join(f"{k}={val}" for k, val in m.items()))
    # Is the guest RAM in the dump?  Read the big RAM slot of address space 0
    # through the QEMU process's page tables, page by page.
    ram = max((m for m in vm["memslots"] if m["as_id"] == 0), key=lambda m: m["npages"])
    ok = bad = unmapped = 0
    banner = []
    vmcoreinfo = None   # the guest kernel's own VMCOREINFO text (built at boot)
    base = int(ram["userspace_addr"], 16)
    for i in range(ram["npages"]):
        try:
            data = access_remote_vm(mm, base + i * 4096, 4096)
        except FaultError:
            try:   # PTE present (page in QEMU's mm) but the page is not in the dump?
                follow_phys(mm, base + i * 4096)
                bad += 1
            except FaultError:
                unmapped += 1
            continue
        ok += 1
        j = data.find(b"Linux version 6.1")
        if j >= 0 and len(banner) < 4:
            gpa = int(ram["gpa_start"], 16) + i * 4096 + j
            banner.append({"gpa": hex(gpa), "hva": hex(base + i * 4096 + j),
                           "text": data[j:j + 60].split(b"\0")[0].decode(errors="replace")})
        j = data.find(b"OSRELEASE=")
        if j >= 0 and vmcoreinfo is None:
            # may run past the page end: read the rest through the same mm
            text = access_remote_vm(mm, base + i * 4096 + j, 4096).split(b"\0")[0].decode(errors="replace")
            kv = dict(l.split("=", 1) for l in text.splitlines() if "=" in l)
            vmcoreinfo = {"gpa": hex(int(ram["gpa_start"], 16) + i * 4096 + j),
                          "hva": hex(base + i * 4096 + j), "bytes": len(text),
                          **{k: kv[k] for k in ("OSRELEASE", "BUILD-ID", "KERNELOFFSET",
                                                 "NUMBER(phys_base)", "SYMBOL(init_uts_ns)",
                                                 "NUMBER(pgtable_l5_enabled)") if k in kv}}
    vm["guest_vmcoreinfo"] = vmcoreinfo
    if vmcoreinfo:
        # The guest runs the same vmlinux: with its KASLR offset, read its utsname
        # from guest RAM and name the symbols at the vCPUs' guest RIPs.
        koff = int(vmcoreinfo["KERNELOFFSET"], 16)
        pbase = int(vmcoreinfo["NUMBER(phys_base)"]) & (2**64 - 1)
        def gpa_to_hva(gpa):
            for m in vm["memslots"]:
                if m["as_id"] == 0 and int(m["gpa_start"], 16) <= gpa < int(m["gpa_end"], 16):
                    return int(m["userspace_addr"], 16) + gpa - int(m["gpa_start"], 16)
        uts = int(vmcoreinfo["SYMBOL(init_uts_ns)"], 16)
        gpa = (uts - 0xffffffff80000000 + pbase) & (2**64 - 1)
        off = prog.type("struct uts_namespace").member("name").offset + \
            prog.type("struct new_utsname").member("release").offset
        rel = access_remote_vm(mm, gpa_to_hva(gpa) + off, 65).split(b"\0")[0].decode()
        vmcoreinfo["init_uts_ns_gpa"] = hex(gpa)
        vmcoreinfo["utsname_release_read_from_guest_ram"] = rel
        lines.append(f"  guest init_uts_ns at gpa {gpa:#x}: release {rel!r}")
        # host symbols are relocated by the host's own KASLR offset
        host_vmci = prog["VMCOREINFO"].string_().decode()   # from the dump's VMCOREINFO note
        hkoff = int(dict(l.split("=", 1) for l in host_vmci.splitlines() if "=" in l)["KERNELOFFSET"], 16)
        for v in vm["vcpus"]:
            if "guest_rip" in v and int(v["guest_rip"], 16) < 0xffffffff80000000:
                v["guest_rip_symbol"] = None   # not kernel text: guest user space (see guest_cpl)
                lines.append(f"  vcpu {v['vcpu_id']} guest RIP {v['guest_rip']}: guest user space, CPL {v['guest_cpl']}")
            elif "guest_rip" in v:
                try:
                    sym = prog.symbol(int(v["guest_rip"], 16) - koff + hkoff)
                    v["guest_rip_symbol"] = f"{sym.name}+{int(v['guest_rip'], 16) - koff + hkoff - sym.address:#x}"
                except LookupError:
                    v["guest_rip_symbol"] = None
                lines.append(f"  vcpu {v['vcpu_id']} guest RIP {v['guest_rip']} = {v['guest_rip_symbol']} "
                             f"(vmlinux address {int(v['guest_rip'], 16) - koff:#x}, guest KASLR offset {koff:#x})")
    if vmcoreinfo:
        lines.append("  guest VMCOREINFO at gpa " + vmcoreinfo["gpa"] + ": " +
                     " ".join(f"{k}={v}" for k, v in vmcoreinfo.items() if k not in ("gpa", "hva")))
    vm["ram_slot_check"] = {"slot_id": ram["id"], "pages": ram["npages"],
                            "readable_pages": ok, "mapped_but_not_in_dump": bad,
                            "not_mapped_in_qemu": unmapped,
                            "linux_banner_hits": banner}
    lines.append(f"  guest RAM slot {ram['id']}: {ok} of {ram['npages']} pages readable "
                 f"through the QEMU mm; {unmapped} not mapped (never touched by the guest), "
                 f"{bad} mapped but not in the dump (zero pages left out by makedumpfile)")
    for b in banner:
        lines.append(f"  guest RAM has 'Linux version' at gpa {b['gpa']} (hva {b['hva']}): {b['text']!r}")
    vms.append(vm)

with open(os.path.join(out, "drgn.kvm.txt"), "w") as f:
    f.write(f"vm_list: {len(vms)} VM(s)\n" + "\n".join(lines) + "\n")
with open(os.path.join(out, "drgn.kvm.json"), "w") as f:
    json.dump({"drgn_version": drgn.__version__, "vms": vms}, f, indent=1)
print("\n".join(lines))

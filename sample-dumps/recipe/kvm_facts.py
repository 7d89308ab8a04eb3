#!/usr/bin/env python3
"""Write facts.json for the KVM/QEMU snapshot sample from sources other than
vmcrash: drgn on QEMU's own ELF dump of the same state (tasks, stacks, log,
vtop through drgn's follow_phys), QEMU's monitor (`info registers -a` taken
while the VM was stopped), and `qemu-img snapshot -l`.

Usage: kvm_facts.py RUN_DIR VMLINUX DRGN_JSON > facts.json
"""
import json
import re
import sys

import drgn
from drgn.helpers.linux.mm import follow_phys


def monitor_registers(path):
    text = open(path).read()
    # the first `info registers -a` (after `stop`), one block per CPU
    block = text.split("### info registers -a", 1)[1].split("###", 1)[0]
    cpus = {}
    for m in re.finditer(r"CPU#(\d+)\n(.*?)(?=CPU#|\Z)", block, re.S):
        regs = {}
        for name, val in re.findall(r"\b(R[A-Z0-9]+|CR[0234]|EFER)=([0-9a-f]+)", m.group(2)):
            regs[name.lower()] = "0x" + val.lstrip("0") if val.strip("0") else "0x0"
        gs = re.search(r"^GS =\w+ ([0-9a-f]+)", m.group(2), re.M)
        if gs:
            regs["gs_base"] = hex(int(gs.group(1), 16))
        cpus[m.group(1)] = {k: regs[k] for k in ("rip", "rsp", "rbp", "rax", "cr3", "cr4", "efer", "gs_base") if k in regs}
    return cpus


def main(run, vmlinux, drgn_json):
    d = json.load(open(drgn_json))
    prog = drgn.Program()
    prog.set_core_dump(f"{run}/qemu.elf")
    prog.load_debug_info([vmlinux])
    init_mm = prog["init_mm"].address_of_()
    vtop = []
    for kind, addr in (("kernel-text", prog.symbol("schedule").address),
                       ("direct-map", prog["init_task"].tasks.next.value_()),
                       ("vmalloc", prog["init_task"].tasks.next.value_() and
                        drgn.helpers.linux.pid.find_task(prog, 1).stack.value_()),
                       ("percpu", prog["__per_cpu_offset"][1].value_() + prog.symbol("runqueues").address)):
        vtop.append({"vaddr": hex(addr), "kind": kind, "paddr": hex(follow_phys(init_mm, addr).value_()),
                     "source": "drgn follow_phys(init_mm)"})
    vmci = dict(l.split("=", 1) for l in d["vmcoreinfo"].splitlines() if "=" in l)
    dmesg = [re.sub(r"^\[\s*\d+\.\d+\] ", "", l) for l in d["dmesg"]]
    facts = {
        "sample": "kvm-qemu-snapshot",
        "files": {
            "migration.stream": {"format": "qemu-migration", "archive": "snapshot.tar.xz",
                                 "made_by": "QEMU 7.2 monitor: migrate \"exec:cat > FILE\" (VM stopped)"},
            "disk.qcow2": {"format": "qcow2-savevm", "archive": "snapshot.tar.xz",
                           "made_by": "QEMU 7.2 monitor: savevm vmcrash-snap (VM stopped)"},
            "qemu.elf": {"format": "elf", "archive": "snapshot.tar.xz",
                         "made_by": "QEMU 7.2 monitor: dump-guest-memory (VM stopped)",
                         "crash_opens": False, "drgn_opens": True},
        },
        "release": d["release"],
        "arch": "x86_64",
        "cpus": len(d["cpus_online"]),
        "page_size": d["page_size"],
        "vmcoreinfo": {k: vmci[k] for k in ("OSRELEASE", "KERNELOFFSET", "NUMBER(phys_base)")},
        "panic": None,
        "tasks": [{k: t[k] for k in ("pid", "ppid", "comm", "state", "cpu")} for t in d["tasks"]],
        # drgn's stacks of each CPU's active task, real (not inlined) functions
        "backtraces": {cpu: [f["function"] for f in a["stack"] if not f["inline"]]
                       for cpu, a in d["active_tasks"].items()},
        "log_tail": dmesg[-30:],
        "vtop": vtop,
        "registers": monitor_registers(f"{run}/monitor.txt"),
        "memory": {"ram_bytes": 96 << 20},
        "notes": ("crash 8.0.6 cannot open QEMU's ELF of this live guest (it fails reading the "
                  "exception stacks at fffffe0000014000); the facts come from drgn and QEMU's monitor."),
    }
    json.dump(facts, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:4])

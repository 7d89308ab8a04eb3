#!/usr/bin/env python3
"""Write the kvm-host additions to facts.json (kvm-host.extra.json) from what the
run recorded OUTSIDE the dump: the host-side facts the host /init saved before it
panicked (RUN_DIR/host-facts/), the inner guest's own console (RUN_DIR/inner-console.log),
the outer serial console (RUN_DIR/console.log), and drgn_kvm.py's walk of the dump
(FACTS_DIR/drgn.kvm.json), cross-checked here against the host-side facts.

Usage: kvm_extra.py RUN_DIR FACTS_DIR VMCORE VMLINUX > kvm-host.extra.json
kvm-host.notes.json (a JSON list of strings, next to this script) becomes "notes".
The output is then checked by hand (README.md says what was checked).
"""
import json
import os
import re
import sys

import drgn

run, fdir, core, vmlinux = sys.argv[1:5]
hf = os.path.join(run, "host-facts")


def read(*p):
    with open(os.path.join(*p), errors="replace") as f:
        return f.read()


console = read(run, "console.log")
inner = read(run, "inner-console.log")
kvm = json.load(open(os.path.join(fdir, "drgn.kvm.json")))
errors = []

# ---- QEMU process, as seen by the host before the panic ----
qpid = int(read(hf, "qemu.pid"))
threads = [dict(tid=int(l.split(" ", 1)[0]), comm=l.split(" ", 1)[1])
           for l in read(hf, "qemu.threads").splitlines() if l]
for l in read(hf, "qemu.threads.stat").splitlines():
    tid, rest = l.split(" ", 1)
    # /proc/TID/stat: "pid (comm) state ..." - comm may contain spaces; field 39 = processor
    after = rest.rsplit(")", 1)[1].split()
    for t in threads:
        if t["tid"] == int(tid):
            t["state"] = after[0]
            t["last_cpu_at_capture"] = int(after[36])   # ~5 s before the panic
vm = kvm["vms"][0]
ram = max((m for m in vm["memslots"] if m["as_id"] == 0), key=lambda m: m["npages"])
low = min((m for m in vm["memslots"] if m["as_id"] == 0), key=lambda m: int(m["base_gfn"], 16))
ram_block_start = int(low["userspace_addr"], 16)     # gpa 0 lives here
ram_block_end = int(ram["userspace_end"], 16)
maps_line = None
for l in read(hf, "qemu.maps").splitlines():
    a, b = (int(x, 16) for x in l.split()[0].split("-"))
    if a <= ram_block_start < b:
        maps_line = l.strip()
        vma = (a, b)
smaps = {}
blk = read(hf, "qemu.smaps").split("\n")
for i, l in enumerate(blk):
    if maps_line and l.strip() == maps_line:
        for m in blk[i + 1:i + 25]:
            k = m.split(":")[0]
            if k in ("Size", "Rss", "Anonymous", "AnonHugePages"):
                smaps[k] = m.split(":")[1].strip()
fds = [l.split("-> ")[1] for l in read(hf, "qemu.fd").splitlines() if "anon_inode:kvm" in l or "/dev/kvm" in l]
qemu = {
    "pid": qpid,
    "cmdline": read(hf, "qemu.cmdline").strip(),
    "threads": threads,
    "vcpu_threads": {t["comm"]: t["tid"] for t in threads if t["comm"].startswith("CPU ")},
    "kvm_fds": fds,
    "guest_ram_maps_line": maps_line,
    "guest_ram_vma": {"start": hex(vma[0]), "end": hex(vma[1])},
    "guest_ram_block": {"start": hex(ram_block_start), "end": hex(ram_block_end),
                        "bytes": ram_block_end - ram_block_start,
                        "note": "QEMU's pc.ram RAMBlock (gpa 0 at its start), from the memslots; the VMA above "
                                "is larger because the kernel merged it with the adjacent anonymous 8 MiB stack "
                                "of a QEMU thread (its guard page is the ---p page just below the VMA)"},
    "guest_ram_smaps": smaps,
}

# ---- cross-checks: dump (drgn) vs host-side facts ----
if vm["userspace_pid"] != qpid:
    errors.append(f"kvm.userspace_pid {vm['userspace_pid']} != QEMU pid {qpid}")
for v in vm["vcpus"]:
    want = qemu["vcpu_threads"].get(f"CPU {v['vcpu_id']}/KVM")
    if v.get("tid") != want:
        errors.append(f"vcpu {v['vcpu_id']}: drgn tid {v.get('tid')} != host-side {want}")
if [q for q in vm["mm_users"] if q[0] != qpid]:
    errors.append(f"kvm.mm used by {vm['mm_users']}")

# ---- inner guest, from its own console ----
facts = inner.split("VMCRASH-INNER: FACTS BEGIN\n", 1)[1].split("VMCRASH-INNER: FACTS END", 1)[0]
sec = dict(re.findall(r"^== (.*?)\n(.*?)(?=^== |\Z)", facts, re.M | re.S))
tasks = []
for l in sec["ps -o pid,ppid,stat,comm"].splitlines()[1:]:
    f = l.split(None, 3)
    tasks.append({"pid": int(f[0]), "ppid": int(f[1]), "stat": f[2], "comm": f[3]})
dmesg = sec["dmesg"].splitlines()
pick = ("Linux version", "Command line", "Hypervisor detected", "Memory:", "smpboot: Total",
        "kvm-clock: Using msrs", "Run /init")
inner_guest = {
    "release": sec["uname -r"].strip(),
    "cpus": int(sec["nproc"].strip()),
    "qemu_m": "64M",
    "ram_bytes": 64 << 20,
    "meminfo_MemTotal": sec["/proc/meminfo (head)"].splitlines()[0].split(":")[1].strip(),
    "cmdline": sec["/proc/cmdline"].strip(),
    "tasks": tasks,
    "processes": {
        "vmcrash-sleeper": int(re.search(r"sleeper pid (\d+)", inner).group(1)),
        "vmcrash-spinner": int(re.search(r"spinner pid (\d+)", inner).group(1)),
    },
    "spinner_cpu": 1,
    "tasks_note": "from the guest's own `ps -o pid,ppid,stat,comm` about 8 s before the host panicked; "
                  "'ps' (the last entry) is that ps itself and had exited by then",
    "log_lines": [l for l in dmesg if any(p in l for p in pick)],
    "dmesg_lines": len(dmesg),
    "console_file": "inner-console.log",
}

# ---- host panic / memory / timings from the outer console ----
m = re.search(r"CPU: (\d+) PID: (\d+) Comm: (\S+)", console)
panic = {"message": "sysrq: Trigger a crash",
         "panic_string": "Kernel panic - not syncing: sysrq triggered crash",
         "cpu": int(m.group(1)), "pid": int(m.group(2)), "comm": m.group(3),
         "how": "host /init: taskset -c 0 /bin/vmcrash-trigger wrote 'c' to /proc/sysrq-trigger while the "
                "inner KVM guest was running (vmcrash-spinner pinned to its CPU 1); the host kexec'd into the "
                "kdump kernel loaded with kexec -p -s"}
res = re.search(r"Reserving (\d+)MB of memory at (\d+)MB for crashkernel", console)
cmdlines = re.findall(r"\] Command line: (.*)", console)
vmcore_bytes = int(re.search(r"vmcore (\d+) bytes", console).group(1))
timing = {
    "inner_guest_facts_after_s": int(re.search(r"inner guest facts after (\d+) s", console).group(1)),
    "makedumpfile": re.search(r"makedumpfile took (.*)", console).group(1).strip(),
    "host_uptime_at_panic": re.search(r"\[\s*([\d.]+)\] sysrq: Trigger a crash", console).group(1) + " s",
}

# ---- KASLR layout (drgn) ----
prog = drgn.Program()
prog.set_core_dump(core)
prog.load_debug_info([vmlinux])
host_vmci = dict(l.split("=", 1) for l in prog["VMCOREINFO"].string_().decode().splitlines() if "=" in l)
kaslr = {
    "KERNELOFFSET": "0x" + host_vmci["KERNELOFFSET"],
    "_stext": hex(prog.symbol("_stext").address),
    "page_offset_base": hex(prog["page_offset_base"].value_()),
    "vmalloc_base": hex(prog["vmalloc_base"].value_()),
    "vmemmap_base": hex(prog["vmemmap_base"].value_()),
    # phys_base is an assembler symbol without a type: read it as a u64
    "phys_base": hex(prog.read_u64(prog.symbol("phys_base").address)),
    "5-level paging": host_vmci.get("NUMBER(pgtable_l5_enabled)") == "1",
}

out = {
    "sample": "kvm-host",
    "panic": panic,
    "memory": {
        "ram_bytes": 384 << 20, "qemu_m": "384M",
        "crashkernel": f"{res.group(1)}M (reserved at {res.group(2)} MiB, not part of the dump)",
        "kdump_kernel_proc_vmcore_bytes": vmcore_bytes,
    },
    "guest": {
        "qemu": "qemu-system-x86_64 7.2 (Debian 1:7.2+dfsg-7+deb12u18), TCG (no KVM), -machine q35 -cpu max -smp 2 -m 384M; "
                "TCG's -cpu max is AuthenticAMD with SVM + NPT, so the host's kvm_amd works (nested paging)",
        "first_kernel_cmdline": cmdlines[0],
        "kdump_kernel_cmdline": cmdlines[-1],
        "processes": f"inner QEMU (pid {qpid}, threads {', '.join(str(t['tid']) + ' ' + t['comm'] for t in threads)}), "
                     f"vmcrash-trigger (pid {panic['pid']}, CPU 0)",
    },
    "kaslr": kaslr,
    "qemu_process": qemu,
    "kvm": {"drgn_version": kvm["drgn_version"], "vms": kvm["vms"]},
    "inner_guest": inner_guest,
    "timing": timing,
    "cross_check_errors": errors,
}
# hand-written notes about this run (checked against facts/*.txt)
notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kvm-host.notes.json")
if os.path.exists(notes):
    out["notes"] = json.load(open(notes))
json.dump(out, sys.stdout, indent=1)
print()

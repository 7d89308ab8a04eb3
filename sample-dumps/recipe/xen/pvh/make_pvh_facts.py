#!/usr/bin/env python3
"""facts.json of the Xen PVH kdump sample (keys as in ../../../xen-hypervisor-kdump/facts.json,
plus what only a PVH domain has: vmcoreinfo_note, dmesg, p2m root, vCPU registers).

Usage: make_pvh_facts.py SAMPLE_DIR [EXTRA.json]
Reads SAMPLE_DIR/facts/ (see make-pvh-sample.sh); EXTRA.json keys are merged last.
The draft is then checked by hand against facts/.
"""
import json
import os
import re
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, ".."))
from make_xen_facts import read, kv, parse_xl_list, parse_vcpu_list, parse_stat_lines  # noqa: E402


def block(text, name):
    m = re.search(r"VMCRASH-DOMU: %s-BEGIN[^\n]*\n(.*?)VMCRASH-DOMU: %s-END" % (name, name), text, re.S)
    return m.group(1).splitlines() if m else []


def last_boot(con):
    """The console log of the last boot of the domU (xl restarts it after a triple fault)."""
    i = con.rfind("VMCRASH-DOMU: domU up:")
    j = con.rfind("Linux version", 0, i) if i >= 0 else -1
    return con[j:] if j >= 0 else con


def crash_answers(text):
    """crash> QUERY / answer pairs of facts/crash806-pvh-domain.txt."""
    out, q = [], None
    for line in text.splitlines():
        if line.startswith("crash> "):
            q = line[7:]
            out.append([q, ""])
        elif q is not None:
            out[-1][1] += line + "\n"
    return out


def num(a):
    m = re.search(r"(0x[0-9a-f]+|\d+)", a)
    return int(m.group(1), 0) if m else None


def crash_tables(text):
    doms, vcpus, pcpus, sect = {}, {}, [], None
    for line in text.splitlines():
        if re.match(r"^\s+DID\s+DOMAIN", line):
            sect = "d"; continue
        if re.match(r"^\s+VCID\s+PCID", line):
            sect = "v"; continue
        if re.match(r"^\s+PCID\s+PCPU", line):
            sect = "p"; continue
        f = line.replace(">", " ").replace("*", " ").split()
        if not f or not re.match(r"^[0-9a-f]+$", f[0]):
            sect = None if sect == "p" and line.startswith("PCPU:") else sect
            continue
        if sect == "d" and len(f) >= 8:
            doms[f[1]] = int(f[0])
        elif sect == "v" and len(f) >= 7:
            vcpus[f[2]] = {"vcpu": int(f[0]), "pcpu": int(f[1]), "state": f[3], "domain": int(f[5])}
        elif sect == "p" and len(f) >= 3:
            pcpus.append((int(f[0]), f[2]))
    return doms, vcpus, pcpus


def main():
    S = sys.argv[1]
    extra = json.load(open(sys.argv[2])) if len(sys.argv) > 2 else {}
    fd = os.path.join(S, "facts")
    f = lambda n: os.path.join(fd, n)
    info = kv(read(f("xl-info.kdump.txt")))
    dmesg = read(f("xl-dmesg.kdump.txt"))
    serial = read(f("serial-console.txt"))
    banner = re.search(r"^\(XEN\) (Xen version .*)$", dmesg, re.M)
    phys = re.search(r"New Xen image base address: (0x[0-9a-f]+)", dmesg)
    kdump_area = re.search(r"Kdump: (\d+)MB \(\d+kB\) at (0x[0-9a-f]+)", dmesg)
    kexec_cpu = re.search(r"Executing kexec image on cpu(\d+)", serial)
    raw = kv(read(f("vmcore-size.txt"))) if os.path.exists(f("vmcore-size.txt")) else {}
    facts = {"sample": os.path.basename(os.path.abspath(S)), "files": {
        "vmcore.elf.xz": {"format": "elf", "made_by": (
            "/proc/vmcore of the crash kernel that Xen 4.17.5 kexec'ed into after `xl debug-keys C` "
            "(crashkernel=128M on Xen's command line, crash kernel loaded from dom0 with Debian's kexec -p "
            "through Xen), copied with cp (not filtered, %s bytes); QEMU 7.2 TCG -cpu max,-fsgsbase "
            "(AMD, SVM+NPT), 2 pCPUs, 768 MiB; xz --lzma2=preset=9e,dict=192MiB" % raw.get("raw_size", "?"))}}}
    facts["xen_version"] = info.get("xen_version")
    facts["xen_version_banner"] = banner.group(1) if banner else None
    facts["xen_build_id"] = info.get("build_id")
    facts["xen_debian_source_version"] = "4.17.5+72-g01140da4e8-1"
    crash = read(f("crash806-xen.txt"))
    cdoms, cvcpus, cpcpus = crash_tables(crash)
    facts["hypervisor"] = {
        "pcpus": int(info["nr_cpus"]),
        "total_memory_mib": int(info["total_memory"]),
        "free_memory_mib": int(info["free_memory"]),
        "scheduler": info.get("xen_scheduler"),
        "virt_caps": info.get("virt_caps"),
        "commandline": info.get("xen_commandline"),
        "xen_phys_start": phys.group(1) if phys else None,
        "kdump_area": {"size_mib": int(kdump_area.group(1)), "start": kdump_area.group(2)} if kdump_area else None,
        "panic": {"cpu": int(kexec_cpu.group(1)) if kexec_cpu else None,
                  "message": "'C' pressed -> triggering crashdump",
                  "kexec_on_cpu": int(kexec_cpu.group(1)) if kexec_cpu else None,
                  "trigger": "`xl debug-keys C` run in dom0; Xen printed 'Executing kexec image on cpu%s'"
                             % (kexec_cpu.group(1) if kexec_cpu else "?")},
        "pcpu_current_in_dump": [dict(pcpu=p, domain=cvcpus[v]["domain"], vcpu=cvcpus[v]["vcpu"])
                                 for p, v in cpcpus if v in cvcpus],
        "pcpu_current_source": "crash 8.0.6 `vcpus`/`pcpus` on vmcore with xen-syms (facts/crash806-xen.txt)",
    }
    lst = parse_xl_list(read(f("xl-list.kdump.txt")))
    vcpus = parse_vcpu_list(read(f("xl-vcpu-list.kdump.txt")))
    answers = crash_answers(read(f("crash806-pvh-domain.txt")))
    doms = []
    for d in json.loads(read(f("xl-list-l.kdump.json"))):
        domid = d["domid"]
        c, b = d["config"]["c_info"], d["config"]["b_info"]
        dom = {"id": domid, "name": c["name"], "type": c["type"],
               "vcpus": [{k: v[k] for k in ("id", "pcpu", "state")} for v in vcpus.get(domid, [])],
               "memory_kb": b.get("target_memkb"), "max_memkb": b.get("max_memkb"),
               "xl_list": lst.get(domid)}
        addr = [a for a, i in cdoms.items() if i == domid]
        if addr:
            dom["struct_domain"] = "0x" + addr[0]
        if domid == 0:
            dom["tasks_in_guest"] = parse_stat_lines(read(f("dom0-ps.kdump.txt")))
            doms.append(dom)
            continue
        con_all = read(f("domU-console.kdump.txt"))
        con = last_boot(con_all)
        dom["boots_in_console_log"] = con_all.count("VMCRASH-DOMU: domU up:")
        un = block(con, "UNAME")
        dom["kernel_release"] = un[-1].strip() if un else None
        dom["uname_a"] = un[0].strip() if un else None
        cl = block(con, "CMDLINE")
        dom["kernel_cmdline"] = cl[0].strip() if cl else b.get("cmdline")
        vi = block(con, "VMCOREINFO")
        if vi:
            p, s = vi[0].split()
            dom["vmcoreinfo_note"] = {"paddr": p, "size": int(s),
                                      "source": "`cat /sys/kernel/vmcoreinfo` in the guest: guest-PHYSICAL address (PVH)"}
        dom["dmesg"] = [l for l in block(con, "DMESG")]
        dom["iomem"] = block(con, "IOMEM")
        dom["ps_output"] = [l for l in block(con, "PS") if not l.startswith("STAT:")]
        dom["tasks_in_guest"] = parse_stat_lines(con)
        dom["tasks"] = [dict(t, state="S") if t["pid"] == 1 else dict(t) for t in dom["tasks_in_guest"]
                        if t["comm"] != "ps"]
        dom["tasks_source"] = ("/proc/PID/stat read inside the domU before the crash (facts/domU-console.kdump.txt, "
                               "last boot); init's state set to S (it was reading the list), its `ps` child dropped; "
                               "init's child `sleep 1000` is missing")
        # from crash on the dump
        xen = {}
        for q, a in answers:
            m = re.search(r"->(.*)$", q)
            if not m:
                continue
            field = m.group(1)
            if q.startswith("p ((struct domain") or q.startswith("p/x ((struct domain"):
                if field == "arch.p2m->phys_table":
                    xen["p2m_root_mfn"] = hex(num(a.split("pfn")[1]))
                elif field in ("options", "arch.emulation_flags", "arch.paging.mode", "tot_pages",
                               "max_pages", "arch.p2m->max_mapped_pfn", "domain_id"):
                    xen[field.replace("arch.", "").replace("p2m->", "p2m_")] = hex(num(a)) if "/x" in q else num(a)
                elif field == "arch.p2m->p2m_class":
                    xen["p2m_class"] = a.strip()
        vinfo, cur = [], None
        for q, a in answers:
            m = re.search(r"\(\(struct vcpu \*\)0x([0-9a-f]+)\)->(.*)$", q)
            if not m:
                continue
            if cur is None or cur["struct_vcpu"] != "0x" + m.group(1):
                cur = {"struct_vcpu": "0x" + m.group(1)}
                vinfo.append(cur)
            field = m.group(2)
            if field in ("vcpu_id", "processor"):
                cur[field] = num(a)
            elif field == "is_running":
                cur[field] = a.strip()
            elif field == "arch.hvm.guest_cr":
                cur["guest_cr"] = re.findall(r"0x[0-9a-f]+|\b0\b", a)
            elif field == "arch.user_regs":
                regs = dict(re.findall(r"(\w+) = (0x[0-9a-f]+|0)", a))
                cur["user_regs"] = {k: regs[k] for k in ("rip", "rsp", "rbp", "rax", "rflags", "cs", "ss") if k in regs}
            elif field == "arch.hvm.svm.vmcb->cs":
                cur["vmcb_cs_sel"] = (re.search(r"sel = (0x[0-9a-f]+|0)", a) or [None, None])[1]
            else:
                cur[field.replace("arch.hvm.svm.", "").replace("->", ".")] = a.strip()
        xen["vcpus"] = vinfo
        dom["xen_state_in_dump"] = xen
        dom["xen_state_source"] = "crash 8.0.6 `p` on struct domain / struct vcpu with xen-syms (facts/crash806-pvh-domain.txt)"
        nw = read(f("npt-walk-vmcoreinfo.txt")) if os.path.exists(f("npt-walk-vmcoreinfo.txt")) else ""
        m = re.search(r"gpa (0x[0-9a-f]+) -> machine address (0x[0-9a-f]+)", nw)
        if m:
            dom["vmcoreinfo_note"]["machine_address"] = m.group(2)
            dom["vmcoreinfo_note"]["check"] = ("walked by hand through the p2m (npt_walk.py, facts/npt-walk-vmcoreinfo.txt): "
                                               "the note there reads VMCOREINFO / OSRELEASE=%s" %
                                               (re.search(r"OSRELEASE=(\S+)", nw).group(1) if "OSRELEASE=" in nw else "?"))
        checks = []
        for name in sorted(os.listdir(fd)):
            if not (name.startswith("npt-walk-") and name != "npt-walk-vmcoreinfo.txt"):
                continue
            t = read(f(name))
            m1 = re.search(r"gva (0x[0-9a-f]+) -> gpa (0x[0-9a-f]+)", t)
            m2 = re.search(r"gpa (0x[0-9a-f]+) -> machine address (0x[0-9a-f]+)", t)
            cr3 = re.search(r"--gva (0x[0-9a-f]+)", t)
            if not (m1 and m2):
                continue
            c = {"file": "facts/" + name, "guest_cr3": cr3.group(1) if cr3 else None,
                 "gva": m1.group(1), "gpa": m1.group(2), "machine_address": m2.group(2),
                 "guest_levels": re.findall(r"^guest (L\d) .*= (0x[0-9a-f]+)$", t, re.M),
                 "p2m_levels": re.findall(r"^(L\d) table .*= (0x[0-9a-f]+)$", t, re.M)}
            b = re.search(r"32 bytes at rip: ([0-9a-f]+)", t)
            if b:
                c["bytes_at_gva"] = b.group(1)
            if "6.1.192-vmcrash" in t:
                c["reads"] = "init_uts_ns: Linux / vmcrash / 6.1.192-vmcrash / #1 SMP Sat Nov 28 02:32:27 UTC 2026 / x86_64"
            checks.append(c)
        dom["gva_checks"] = checks
        doms.append(dom)
    facts["domains"] = doms
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(facts.get(k), dict):
            facts[k].update(v)
        else:
            facts[k] = v
    json.dump(facts, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Draft SAMPLE/facts.json of a Xen sample from the raw outputs saved at dump time.

Usage: make_xen_facts.py SAMPLE_DIR TAG MANIFEST [EXTRA.json]
  SAMPLE_DIR/facts/ holds what guest/dom0-init saved (xl-info.TAG.txt, xl-list.TAG.txt,
    xl-list-l.TAG.json, xl-vcpu-list.TAG.txt, xl-dmesg.TAG.txt, domU-console.TAG.txt,
    dom0-ps.TAG.txt) and, if made, crash806-*.ps.txt (crash 8.0.6 on the domU xendump).
  MANIFEST: lines "file|format|made_by" (file as stored, e.g. xendump.elf.xz)
  EXTRA.json: keys merged last (hand-written notes, panic, ...).
The result is a draft that is then checked by hand against facts/*.
"""
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from make_facts_json import parse_ps  # crash `ps` parser shared with the other samples


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def kv(text):
    d = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+)\s*: ?(.*)$", line)
        if m:
            d[m.group(1)] = m.group(2).strip()
    return d


def parse_xl_list(text):
    out = {}
    for line in text.splitlines()[1:]:
        m = re.match(r"^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+([\d.]+)", line)
        if m:
            out[int(m.group(2))] = {"name": m.group(1), "mem_mib": int(m.group(3)),
                                    "vcpus": int(m.group(4)), "state": m.group(5),
                                    "cpu_time_s": float(m.group(6))}
    return out


def parse_vcpu_list(text):
    out = {}
    for line in text.splitlines()[1:]:
        m = re.match(r"^(\S+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(\S+)\s+([\d.]+)\s+(.*)$", line)
        if m:
            out.setdefault(int(m.group(2)), []).append(
                {"id": int(m.group(3)), "pcpu": None if m.group(4) == "-" else int(m.group(4)),
                 "state": m.group(5), "cpu_time_s": float(m.group(6)),
                 "affinity": m.group(7).strip()})
    return out


def parse_stat_lines(text, last_block=True):
    """Tasks from the raw /proc/PID/stat lines ("STAT: ...") printed in the guest."""
    blocks, cur = [], None
    for line in text.splitlines():
        if "PS-BEGIN" in line:
            cur = []
            blocks.append(cur)
        m = re.match(r"^STAT: (\d+) \((.*)\) (\S) (.*)$", line)
        if m:
            if cur is None:
                cur = []
                blocks.append(cur)
            f = m.group(4).split()
            # fields after state: [0]=ppid (field 4) ... [35]=processor (field 39)
            cur.append({"pid": int(m.group(1)), "ppid": int(f[0]), "comm": m.group(2),
                        "state": m.group(3), "cpu": int(f[35])})
    if not blocks:
        return []
    tasks = blocks[-1] if last_block else blocks[0]
    return sorted(tasks, key=lambda t: t["pid"])


def main():
    sample_dir, tag, manifest = sys.argv[1:4]
    extra = json.load(open(sys.argv[4])) if len(sys.argv) > 4 else {}
    fd = os.path.join(sample_dir, "facts")
    f = lambda name: os.path.join(fd, name)
    info = kv(read(f(f"xl-info.{tag}.txt")))
    dmesg = read(f(f"xl-dmesg.{tag}.txt"))
    banner = re.search(r"^\(XEN\) (Xen version .*)$", dmesg, re.M)
    phys = re.search(r"New Xen image base address: (0x[0-9a-f]+)", dmesg)
    kdump_area = re.search(r"Kdump: (\d+)MB \(\d+kB\) at (0x[0-9a-f]+)", dmesg)
    facts = {"sample": os.path.basename(os.path.abspath(sample_dir)), "files": {}}
    for line in read(manifest).splitlines():
        if line.strip():
            name, fmt, made_by = line.split("|", 2)
            facts["files"][name] = {"format": fmt, "made_by": made_by}
    facts["xen_version"] = info.get("xen_version")
    facts["xen_version_banner"] = banner.group(1) if banner else None
    facts["xen_build_id"] = info.get("build_id")
    facts["xen_debian_source_version"] = "4.17.5+72-g01140da4e8-1"
    facts["hypervisor"] = {
        "pcpus": int(info["nr_cpus"]),
        "total_memory_mib": int(info["total_memory"]),
        "free_memory_mib": int(info["free_memory"]),
        "scheduler": info.get("xen_scheduler"),
        "commandline": info.get("xen_commandline"),
        "xen_phys_start": phys.group(1) if phys else None,
        "kdump_area": {"size_mib": int(kdump_area.group(1)), "start": kdump_area.group(2)}
        if kdump_area else None,
        "panic": None,
    }
    lst = parse_xl_list(read(f(f"xl-list.{tag}.txt")))
    vcpus = parse_vcpu_list(read(f(f"xl-vcpu-list.{tag}.txt")))
    doms = []
    for d in json.loads(read(f(f"xl-list-l.{tag}.json"))):
        domid = d["domid"]
        c, b = d["config"]["c_info"], d["config"]["b_info"]
        dom = {"id": domid, "name": c["name"], "type": c["type"],
               "vcpus": [{k: v[k] for k in ("id", "pcpu", "state")} for v in vcpus.get(domid, [])],
               "memory_kb": b.get("target_memkb"), "max_memkb": b.get("max_memkb"),
               "xl_list": lst.get(domid)}
        if domid == 0:
            ps = f(f"dom0-ps.{tag}.txt")
            if os.path.exists(ps):
                dom["tasks_in_guest"] = parse_stat_lines(read(ps))
        else:
            con = read(f(f"domU-console.{tag}.txt"))
            m = re.search(r"domU up: (\S+),", con)
            dom["kernel_release"] = m.group(1) if m else None
            dom["kernel_cmdline"] = b.get("cmdline")
            dom["tasks_in_guest"] = parse_stat_lines(con)
            crash_ps = sorted(glob.glob(f("crash806-*.ps.txt")))
            if crash_ps:
                tasks = parse_ps(read(crash_ps[0]))
                dom["tasks"] = [{k: t[k] for k in ("pid", "ppid", "comm", "state", "cpu", "active")}
                                for t in tasks]
                dom["tasks_source"] = "crash 8.0.6 `ps` on the xendump (facts/%s)" % os.path.basename(crash_ps[0])
            else:
                # The list was read by the domU's init itself (state R then); at dump time
                # init waits in `sleep 1000` (S), whose own task is not in this list.
                dom["tasks"] = [dict(t, state="S") if t["pid"] == 1 else dict(t)
                                for t in dom["tasks_in_guest"]]
                dom["tasks_source"] = ("/proc/PID/stat read inside the domU before the dump (facts/domU-console.%s.txt);"
                                       " init's state set to S (it was reading the list); its child `sleep 1000` is missing" % tag)
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

#!/usr/bin/env python3
"""Build SAMPLE/facts.json from the raw crash outputs and drgn.json in SAMPLE/facts/.

Usage: make_facts_json.py SAMPLE_DIR MANIFEST [EXTRA.json]
  MANIFEST: lines "file|format|made_by" (file as stored in the repo, e.g. vmcore.elf.xz)
  EXTRA.json: keys merged last (hand-written: "notes", "memory", "panic" details ...)
The result is a draft that is then checked by hand against facts/*.txt.
"""
import json
import os
import re
import sys

CRASH_STATE = {"RU": "R", "IN": "S", "UN": "D", "ID": "I", "ZO": "Z", "ST": "T",
               "TR": "t", "DE": "X", "SW": "W", "PA": "P", "WA": "W", "NE": "N"}


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def parse_sys(text):
    d = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([A-Z ]+): (.*)$", line)
        if m:
            d[m.group(1).strip()] = m.group(2).strip()
    return d


def parse_ps(text):
    tasks = []
    for line in text.splitlines():
        m = re.match(r"^(>?)\s*(\d+)\s+(-?\d+)\s+(\d+)\s+([0-9a-f]+)\s+(\S\S)\s+\S+\s+\d+\s+\d+\s+(.*)$", line)
        if not m:
            continue
        active, pid, ppid, cpu, task, st, comm = m.groups()
        comm = comm.strip()
        kthread = comm.startswith("[") and comm.endswith("]")
        tasks.append({"pid": int(pid), "ppid": int(ppid), "comm": comm.strip("[]") if kthread else comm,
                      "state": CRASH_STATE.get(st, st), "crash_state": st, "cpu": int(cpu),
                      "task": "0x" + task, "active": bool(active), "kthread": kthread})
    return tasks


def parse_bt(text):
    out = {}
    cur = None
    for line in text.splitlines():
        m = re.match(r'^PID: (\d+)\s+TASK: ([0-9a-f]+)\s+CPU: (\d+)\s+COMMAND: "(.*)"', line)
        if m:
            cur = {"pid": int(m.group(1)), "comm": m.group(4), "frames": []}
            out[m.group(3)] = cur
            continue
        m = re.match(r"^\s*#\d+ \[[0-9a-f]+\] (\S+) at ([0-9a-f]+)", line)
        if m and cur is not None:
            cur["frames"].append(m.group(1))
        # an exception frame: the interrupted function comes next (innermost first)
        m = re.match(r"^\s*\[exception RIP: ([^+\]\s]+)", line)
        if m and cur is not None:
            cur["frames"].append(m.group(1))
    return out


def parse_log(text):
    lines = []
    for line in text.splitlines():
        lines.append(re.sub(r"^\[\s*\d+\.\d+\] ", "", line))
    return lines


def parse_vtop(text):
    res = []
    for sec in text.split("=== ")[1:]:
        head = sec.splitlines()[0]
        kind = head.split(":")[0]
        m = re.search(r"^VIRTUAL\s+PHYSICAL\s*\n([0-9a-f]+)\s+([0-9a-f]+)", sec, re.M)
        if not m:
            res.append({"kind": kind, "what": head, "error": "no translation"})
            continue
        size = 4096
        pm = re.search(r"^\s*PAGE: [0-9a-f]+\s+\((\d+)(MB|GB)\)", sec, re.M)
        if pm:
            size = int(pm.group(1)) << (20 if pm.group(2) == "MB" else 30)
        res.append({"vaddr": "0x" + m.group(1), "kind": kind, "paddr": "0x" + m.group(2),
                    "page_size": size, "what": head.split(":", 1)[1].strip()})
    return res


def main():
    sdir, manifest = sys.argv[1], sys.argv[2]
    extra = json.load(open(sys.argv[3])) if len(sys.argv) > 3 else {}
    fdir = os.path.join(sdir, "facts")
    sample = os.path.basename(os.path.abspath(sdir))
    sysd = parse_sys(read(os.path.join(fdir, "crash.sys.txt")))
    mach = parse_sys(read(os.path.join(fdir, "crash.mach.txt")))
    drgn = json.load(open(os.path.join(fdir, "drgn.json")))

    crash_version = read(os.path.join(fdir, "crash-version.txt")).strip()
    files = {}
    for line in read(manifest).splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, fmt, made_by = line.split("|")
        work = name[:-3] if name.endswith(".xz") else name
        d = {"format": fmt, "made_by": made_by}
        dj = os.path.join(fdir, "per-file", f"drgn.{work}.json")
        d["drgn_opens"] = False
        if os.path.exists(dj):
            dd = json.load(open(dj))
            d["drgn_opens"] = "release" in dd and "tasks" in dd
        else:
            err = os.path.join(fdir, "per-file", f"drgn.{work}.stderr")
            if os.path.exists(err):
                d["drgn_error"] = read(err).strip().splitlines()[-1]
        d["crash"] = {}
        for v in ("8.0.2", "8.0.6", "9.0.2"):
            sysf = os.path.join(fdir, "per-file", f"crash-{v}.{work}.sys.txt")
            if not os.path.exists(sysf):
                continue
            t = read(sysf)
            ok = "RELEASE:" in t
            m = re.search(r"TASKS: (\d+)", t)
            d["crash"][v] = {"opens": ok, "tasks": int(m.group(1)) if m else None}
            if not ok:
                d["crash"][v]["error"] = " / ".join(l.strip() for l in t.splitlines() if l.strip())[-300:]
        d["crash_opens"] = d["crash"].get(crash_version, {}).get("opens", False)
        files[name] = d

    vmci = {}
    for line in drgn.get("vmcoreinfo", "").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            vmci[k] = v

    tasks = parse_ps(read(os.path.join(fdir, "crash.ps.txt")))
    dtasks = {t["pid"]: t for t in drgn.get("tasks", [])}
    for t in tasks:
        dt = dtasks.get(t["pid"]) if t["pid"] else None
        if dt is not None:
            t["drgn_state"] = dt["state"]
            if dt["ppid"] != t["ppid"] or dt["cpu"] != t["cpu"] or dt["comm"] != t["comm"]:
                t["drgn_disagrees"] = {k: dt[k] for k in ("ppid", "cpu", "comm")}

    bts = parse_bt(read(os.path.join(fdir, "crash.bt-a.txt")))
    backtraces = {cpu: v["frames"] for cpu, v in sorted(bts.items())}
    backtrace_tasks = {cpu: {"pid": v["pid"], "comm": v["comm"]} for cpu, v in sorted(bts.items())}
    dbt = {}
    for cpu, v in drgn.get("active_tasks", {}).items():
        dbt[cpu] = {"pid": v["pid"], "comm": v["comm"],
                    "frames": [f["function"] for f in v.get("stack", [])]}

    log = parse_log(read(os.path.join(fdir, "crash.log.txt")))
    while log and not log[-1].strip():
        log.pop()

    facts = {
        "sample": sample,
        "crash_version": crash_version,
        "files": files,
        "release": sysd.get("RELEASE"),
        "version": sysd.get("VERSION"),
        "nodename": sysd.get("NODENAME"),
        "arch": sysd.get("MACHINE", "").split()[0],
        "cpus": int(sysd.get("CPUS", "0")),
        "page_size": int(mach.get("PAGE SIZE", "0")),
        "vmcoreinfo": vmci,
        "panic": {"crash_sys_panic": sysd.get("PANIC")},
        "crash_sys": sysd,
        "tasks": tasks,
        "backtraces": backtraces,
        "backtrace_tasks": backtrace_tasks,
        "backtraces_drgn": dbt,
        "log_tail": log[-30:],
        "vtop": parse_vtop(read(os.path.join(fdir, "crash.vtop.txt"))),
        "vtop_drgn": drgn.get("vtop"),
        "drgn_crashed_thread": {k: v for k, v in drgn.get("crashed_thread", {}).items() if k != "stack"},
        "memory": {"crash_sys_memory": sysd.get("MEMORY")},
    }
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(facts.get(k), dict):
            facts[k].update(v)
        else:
            facts[k] = v
    with open(os.path.join(sdir, "facts.json"), "w") as f:
        json.dump(facts, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()

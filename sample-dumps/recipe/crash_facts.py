#!/usr/bin/env python3
"""Run crash non-interactively on one dump and save its raw outputs.

Usage:
  crash_facts.py [--root CHROOT] [--crash PATH] [--mod NAME=KO] [--full]
                 VMLINUX DUMP OUTDIR [PREFIX]

crash runs inside CHROOT (default: the Debian 13 chroot made by
make-trixie-chroot.sh, crash 8.0.6); --root / uses the host's crash.
VMLINUX, DUMP and KO must live under the build dir that is bind-mounted into
the chroot at /data (see --bind).  Without --full only `sys`, `ps` and `bt -a`
are run (PREFIX.sys.txt ...); with --full also log, mach, help -D, kmem -n,
kmem -i and the vtop set (PREFIX.vtop.txt).
"""
import argparse
import os
import re
import subprocess
import sys

MARK = "===VMCRASH-BEGIN==="


class Crash:
    def __init__(self, root, crash, bind, vmlinux, dump, mods):
        self.root, self.crash, self.bind = root, crash, bind
        self.vmlinux, self.dump, self.mods = vmlinux, dump, mods

    def path(self, p):
        p = os.path.abspath(p)
        if self.root == "/":
            return p
        return "/data" + p[len(self.bind):] if p.startswith(self.bind + "/") else p

    def run(self, cmds, setup=True):
        """Run commands in one crash session; return (rc, output after the marker)."""
        pre = []
        if setup:
            pre += [f"mod -s {n} {self.path(ko)}" for n, ko in self.mods]
        script = "\n".join(pre + [f"echo {MARK}"] + cmds + ["q"]) + "\n"
        argv = [self.crash, "-s", "--no_scroll", self.path(self.vmlinux), self.path(self.dump)]
        if self.root != "/":
            argv = ["chroot", self.root] + argv
        p = subprocess.run(["timeout", "600"] + argv, input=script, capture_output=True,
                           text=True, errors="replace")
        out = p.stdout
        if MARK in out:
            out = out.split(MARK + "\n", 1)[1]
            ok = True
        else:  # crash did not get as far as reading commands
            out = out + p.stderr
            ok = False
        return ok, out


def is_mountpoint(path):
    # os.path.ismount() misses a bind mount from the same file system
    return subprocess.run(["mountpoint", "-q", path]).returncode == 0


def ensure_bind(root, bind):
    target = os.path.join(root, "data")
    os.makedirs(target, exist_ok=True)
    if not is_mountpoint(target):
        subprocess.run(["mount", "--bind", bind, target], check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="/work/build/trixie")
    ap.add_argument("--crash", default="crash")
    ap.add_argument("--bind", default="/work/build")
    ap.add_argument("--mod", action="append", default=[])
    ap.add_argument("--full", action="store_true")
    ap.add_argument("vmlinux")
    ap.add_argument("dump")
    ap.add_argument("outdir")
    ap.add_argument("prefix", nargs="?", default="crash")
    a = ap.parse_args()
    if a.root != "/":
        ensure_bind(a.root, a.bind)
    mods = [m.split("=", 1) for m in a.mod]
    c = Crash(a.root, a.crash, a.bind, a.vmlinux, a.dump, mods)
    os.makedirs(a.outdir, exist_ok=True)

    def save(name, text):
        with open(os.path.join(a.outdir, f"{a.prefix}.{name}.txt"), "w") as f:
            f.write(text)

    ok, out = c.run(["sys"])
    save("sys", out)
    print(f"{a.dump}: crash {'opens' if ok else 'FAILS'}")
    if not ok:
        sys.exit(1)
    single = [("ps", "ps"), ("bt-a", "bt -a")]
    if a.full:
        single += [("log", "log"), ("mach", "mach"), ("help-D", "help -D"),
                   ("kmem-n", "kmem -n"), ("kmem-i", "kmem -i")]
    for name, cmd in single:
        _, out = c.run([cmd])
        save(name, out)
    if not a.full:
        return

    # vtop: first find the addresses, then print them and translate them.
    _, out = c.run(["sym schedule", "p/x page_offset_base", "p/x init_task.tasks.next",
                    "task -R stack 1", "p/x __per_cpu_offset[1]", "sym runqueues"])
    sched = int(re.search(r"^([0-9a-f]{16}) \(\w\) schedule\b", out, re.M).group(1), 16)
    pob = int(re.search(r"^\$\d+ = (0x[0-9a-f]+)\s*$", out, re.M).group(1), 16)
    vals = re.findall(r"^\$\d+ = (?:\([^)]*\) )?(0x[0-9a-f]+)", out, re.M)
    # $1 page_offset_base, $2 init_task.tasks.next, $3 __per_cpu_offset[1]
    tasks_next = int(vals[1], 16)
    pcpu1 = int(vals[2], 16)
    # `sym runqueues` gives the per-CPU offset as in vmlinux (0x22500 or so);
    # `p &runqueues` in crash 8.0.6 wrongly adds the KASLR offset to it.
    rq = int(re.search(r"^([0-9a-f]+) \(\w\) runqueues\b", out, re.M).group(1), 16)
    stack = int(re.search(r"stack = (0x[0-9a-f]+)", out).group(1), 16)
    cmds = [
        "echo === kernel-text: schedule", "sym schedule", f"vtop {sched:#x}",
        f"echo === direct-map: page_offset_base + 0x100000 = {pob + 0x100000:#x}",
        "p/x page_offset_base", f"vtop {pob + 0x100000:#x}",
        f"echo === direct-map: init_task.tasks.next = {tasks_next:#x} - slab, list_head of PID 1",
        "p/x init_task.tasks.next", f"vtop {tasks_next:#x}",
        f"echo === vmalloc: task_struct.stack of PID 1 = {stack:#x}",
        "task -R stack 1", f"vtop {stack:#x}",
        f"echo === percpu: runqueues on CPU 1 = __per_cpu_offset[1] + runqueues = {pcpu1 + rq:#x}",
        "p/x __per_cpu_offset[1]", "sym runqueues", f"vtop {pcpu1 + rq:#x}",
    ]
    _, out = c.run(cmds)
    save("vtop", out)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Write the facts drgn reports about one dump as JSON.

Usage: drgn_facts.py VMCORE VMLINUX [MODULE.ko ...] > drgn.json

Uses drgn's public API only: Program.set_core_dump / load_debug_info and the
helpers in drgn.helpers.linux.  Every section is computed independently so that
a failure in one (recorded under "errors") does not lose the others.
"""
import json
import sys
import traceback

import drgn
from drgn import Program
from drgn.helpers.linux import (
    cpu_curr,
    for_each_online_cpu,
    for_each_possible_cpu,
    for_each_task,
    get_dmesg,
    idle_task,
    task_cpu,
    task_state_to_char,
)


def frames(trace):
    out = []
    for f in trace:
        name = f.name
        if name is None:
            try:
                name = f.symbol().name
            except LookupError:
                name = None
        try:
            pc = hex(f.pc)
        except LookupError:
            pc = None
        out.append({"function": name, "pc": pc, "inline": f.is_inline,
                    "interrupted": f.interrupted})
    return out


def task_dict(task):
    return {
        "pid": task.pid.value_(),
        "ppid": task.real_parent.pid.value_(),
        "comm": task.comm.string_().decode(errors="replace"),
        "state": task_state_to_char(task),
        "cpu": task_cpu(task),
        "address": hex(task.value_()),
    }


def main():
    vmcore, vmlinux, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
    facts = {"file": vmcore, "drgn_version": drgn.__version__, "errors": {}}

    def section(name, fn):
        try:
            facts[name] = fn()
        except Exception as e:  # keep going, but say what failed
            facts["errors"][name] = "".join(
                traceback.format_exception_only(type(e), e)).strip()

    prog = Program()
    prog.set_core_dump(vmcore)
    try:
        prog.load_debug_info([vmlinux] + extra)
    except drgn.MissingDebugInfoError as e:
        facts["errors"]["load_debug_info"] = str(e)
    facts["flags"] = str(prog.flags)

    section("release", lambda: prog["UTS_RELEASE"].string_().decode())
    section("page_size", lambda: prog["PAGE_SIZE"].value_())
    section("vmcoreinfo", lambda: prog["VMCOREINFO"].string_().decode())
    section("cpus_possible", lambda: list(for_each_possible_cpu(prog)))
    section("cpus_online", lambda: list(for_each_online_cpu(prog)))
    section("tasks", lambda: [task_dict(t) for t in for_each_task(prog)])
    section("idle_tasks", lambda: {
        str(cpu): task_dict(idle_task(prog, cpu))
        for cpu in for_each_possible_cpu(prog)})
    section("threads", lambda: [t.tid for t in prog.threads()])

    def crashed():
        t = prog.crashed_thread()
        d = {"tid": t.tid}
        try:
            task = t.object
            d.update(comm=task.comm.string_().decode(), cpu=task_cpu(task))
        except Exception as e:
            d["object_error"] = str(e)
        d["stack"] = frames(t.stack_trace())
        return d
    section("crashed_thread", crashed)

    def active():
        out = {}
        for cpu in for_each_possible_cpu(prog):
            task = cpu_curr(prog, cpu)
            d = task_dict(task)
            try:
                d["stack"] = frames(prog.stack_trace(task))
            except Exception as e:
                d["stack_error"] = "".join(
                    traceback.format_exception_only(type(e), e)).strip()
            out[str(cpu)] = d
        return out
    section("active_tasks", active)

    def modules():
        return [{"name": m.name, "address_range": [hex(a) for a in m.address_range]
                 if getattr(m, "address_range", None) else None,
                 "debug_file": m.debug_file_path}
                for m in prog.modules()]
    section("modules", modules)
    def vtop():
        # the same four kinds of address as crash_facts.py translates with `vtop`
        from drgn.helpers.linux.mm import follow_phys
        from drgn.helpers.linux.percpu import per_cpu_ptr
        from drgn.helpers.linux.pid import find_task
        init_mm = prog["init_mm"].address_of_()
        addrs = [
            ("kernel-text", "schedule", prog["schedule"].address_),
            ("direct-map", "page_offset_base + 0x100000",
             prog["page_offset_base"].value_() + 0x100000),
            ("direct-map", "init_task.tasks.next", prog["init_task"].tasks.next.value_()),
            ("vmalloc", "task_struct.stack of PID 1", find_task(prog, 1).stack.value_()),
            ("percpu", "runqueues on CPU 1",
             per_cpu_ptr(prog["runqueues"].address_of_(), 1).value_()),
        ]
        out = []
        for kind, what, va in addrs:
            d = {"kind": kind, "what": what, "vaddr": hex(va)}
            try:
                d["paddr"] = hex(follow_phys(init_mm, va).value_())
            except Exception as e:
                d["error"] = str(e)
            out.append(d)
        return out
    section("vtop", vtop)
    section("dmesg", lambda: get_dmesg(prog).decode(errors="replace").splitlines())

    json.dump(facts, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

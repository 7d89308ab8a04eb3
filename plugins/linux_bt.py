"""``bt``: stack traces of a task, a CPU, or every CPU's active task."""

from __future__ import annotations

from typing import Any

from analyzer.linux.kernel import Frame
from analyzer.needs import KERNEL_TYPES, LINUX
from analyzer.plugin import Option, Plugin, PluginError
from analyzer.results import Column, Kind, Result, Table
from analyzer.session import Session


def frames_table(frames: list[Frame], title: str) -> Table:
    t = Table([Column("frame", Kind.INT, "#"), Column("pc", Kind.ADDRESS), Column("symbol", Kind.SYMBOL),
               Column("module"), Column("source")], title=title)
    for f in frames:
        t.add(f.index, f.pc, f.where if f.symbol else None, f.module, f.source)
    return t


def _marked(method: str) -> str:
    return {"scan": "  [stack SCAN: no unwinder without the debug file; old return addresses may appear]",
            "none": "  [no registers saved for it]"}.get(method, "")


class Bt(Plugin):
    name = "bt"
    help = "stack trace of a task (PID), a CPU (--cpu N), or every CPU's active task (--all)"
    description = """\
Unwind a stack.  With no argument: the task that panicked, from the dump's
own saved registers for the panicking CPU.  PID: that task.  --cpu N: the
task running on CPU N.  --all: every CPU's active task (crash's bt -a).
Frames show pc, symbol+offset, module, and source file:line when debug
info has it.  Without a vmlinux the stack is found by scanning it for
kernel-text addresses, and the output says so.

examples:
  vmcrash run bt vmcore --vmlinux vmlinux
  vmcrash run bt vmcore 1 --vmlinux vmlinux
  vmcrash run bt vmcore --all --vmlinux vmlinux --markdown

Xen's own stacks (a Xen hypervisor dump): --pcpu N for one physical CPU,
--xen for all of them, from the registers in each pCPU's crash note (or
QEMU's CPU state), unwound with xen-syms' debug info when --xen-syms is
given, else scanned and named with the symbol table in Xen's own image.

  vmcrash run bt xen-host.vmcore --xen --xen-syms xen-syms
"""
    options = (
        Option("pid", "a task's pid", type=int, positional=True, metavar="PID"),
        Option("cpu", "the task running on this CPU", type=int, metavar="N"),
        Option("all", "every CPU's active task", type=bool, default=False),
        Option("pcpu", "Xen's stack on this physical CPU", type=int, metavar="N"),
        Option("xen", "Xen's stack on every physical CPU", type=bool, default=False),
    )
    needs = (LINUX, KERNEL_TYPES)

    @classmethod
    def why_not(cls, session: Session, options: dict[str, Any] | None = None) -> str | None:
        if options and (options.get("xen") or options.get("pcpu") is not None):
            if session.machine.xen is None:
                return "no Xen hypervisor in this dump (--pcpu and --xen show Xen's own stacks)"
            if session.machine.xen_prog is None and session.machine.xen.symbols is None:
                return "Xen's symbol table was not found in its image: give --xen-syms FILE"
            return None
        return super().why_not(session)

    def run(self, session: Session, **options: Any) -> Result:
        if options.get("xen") or options.get("pcpu") is not None:
            return self._xen(session, options)
        linux = session.linux()
        result = Result(self.name, mode=linux.mode)
        if options.get("pid") is not None:
            try:
                task = linux.find_task(options["pid"])
            except LookupError as e:
                raise PluginError(str(e)) from None
            t = linux._task(task)
            frames, method = linux.best_stack_of_task(task)
            result.add(frames_table(frames, f"PID {t.pid} ({t.comm}) on CPU {t.cpu}" + _marked(method)))
            return result
        if options.get("all"):
            cpus = linux.online_cpus()
        elif options.get("cpu") is not None:
            cpus = [options["cpu"]]
        else:
            cpu = linux.panic_cpu()
            if cpu is None:
                raise PluginError("no CPU panicked in this dump: give PID, --cpu N or --all")
            cpus = [cpu]
        for cpu in cpus:
            try:
                task = linux.active_task(cpu)
                t = linux._task(task)
                frames, method = linux.best_stack_of_cpu(cpu)
                result.add(frames_table(frames, f"CPU {cpu}: PID {t.pid} ({t.comm})" + _marked(method)))
            except (LookupError, ValueError) as e:
                result.warn(f"CPU {cpu}: {e}")
        return result

    def _xen(self, session: Session, options: dict[str, Any]) -> Result:
        from analyzer.xen.stacks import best_pcpu_stack, pcpu_current

        m = session.machine
        assert m.xen is not None
        prog = m.xen_prog
        result = Result(self.name, mode="Xen: xen-syms DWARF (frame pointers where it ends)" if prog else
                        "Xen: its own symbol table, stacks SCANNED (no xen-syms)")
        cpus = session.dump.cpus
        n = len(m.xen.pcpu_cr3) or len(cpus)
        wanted = range(n) if options.get("xen") else [options["pcpu"]]
        for pcpu in wanted:
            if not 0 <= pcpu < len(cpus):
                raise PluginError(f"no saved registers for pCPU {pcpu} (the dump has {len(cpus)})")
            frames, method = best_pcpu_stack(m, pcpu)
            cur = pcpu_current(prog, pcpu) if prog is not None else None
            running = f": d{cur[0]}v{cur[1]}" if cur else ""
            result.add(frames_table(frames, f"pCPU {pcpu}{running}" + _marked(method)))
            if not frames:
                result.warn(f"pCPU {pcpu}: no stack from rip {cpus[pcpu].registers.get('rip', 0):#x}")
        return result

"""``ps``: the task list."""

from __future__ import annotations

from typing import Any

from analyzer.needs import KERNEL_TYPES, LINUX
from analyzer.plugin import Option, Plugin
from analyzer.results import Column, Kind, Result, Table
from analyzer.session import Session


class Ps(Plugin):
    name = "ps"
    help = "the task list: pid, ppid, cpu, state, command"
    description = """\
Every task in the kernel's task list, with its parent, the CPU it last ran
on, its state letter (R running, S sleeping, D uninterruptible, I idle,
T stopped, Z zombie, X dead) and its command.  Tasks running on a CPU at
the time of the dump are marked '>' as crash does.

examples:
  vmcrash run ps vmcore --vmlinux vmlinux
  vmcrash run ps vmcore --vmlinux vmlinux --json | jq '.sections[0].rows[] | select(.state=="D")'
"""
    options = (Option("state", "only tasks in this state letter (e.g. D)", metavar="LETTER"),)
    needs = (LINUX, KERNEL_TYPES)

    def run(self, session: Session, **options: Any) -> Result:
        linux = session.linux()
        result = Result(self.name, mode=linux.mode)
        active = set()
        for cpu in linux.online_cpus():
            try:
                active.add(int(linux.active_task(cpu).value_()))
            except LookupError:
                pass
        table = Table([Column("active", Kind.STR, ""), Column("pid", Kind.INT), Column("ppid", Kind.INT),
                       Column("cpu", Kind.INT), Column("task", Kind.ADDRESS), Column("state"),
                       Column("comm")])
        for t in linux.tasks():
            if options.get("state") and t.state != options["state"]:
                continue
            table.add(">" if t.address in active else "", t.pid, t.ppid, t.cpu, t.address, t.state, t.comm)
        result.add(table)
        return result

"""``panic``: the panic or oops message, where it happened, and its stack."""

from __future__ import annotations

from typing import Any

from analyzer.needs import LINUX
from analyzer.plugin import Plugin
from analyzer.results import KeyValues, Kind, Result
from analyzer.session import Session

from .linux_bt import _marked, frames_table


class Panic(Plugin):
    name = "panic"
    help = "the panic or oops: message, CPU, task, and the panicking stack"
    description = """\
Why the kernel died: the panic or oops message from the log, the CPU that
panicked (the kernel's own panic_cpu), the task running there, and its
stack unwound from the dump's saved registers.

examples:
  vmcrash run panic vmcore --vmlinux vmlinux
"""
    needs = (LINUX,)

    def run(self, session: Session, **options: Any) -> Result:
        linux = session.linux()
        result = Result(self.name, mode=linux.mode)
        p = linux.panic()
        kv = KeyValues()
        kv.add("message", p.message)
        kv.add("cpu", p.cpu, Kind.INT)
        kv.add("pid", p.pid, Kind.INT)
        kv.add("comm", p.comm)
        result.add(kv)
        if p.message is None:
            result.warn("no panic or oops message found in the log")
        if p.cpu is not None:
            frames, method = linux.best_stack_of_cpu(p.cpu)
            result.add(frames_table(frames, f"stack of CPU {p.cpu}" + _marked(method)))
        return result

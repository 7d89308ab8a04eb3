"""``sys``: the system at a glance, as crash's ``sys`` shows it."""

from __future__ import annotations

from typing import Any

from analyzer.needs import LINUX
from analyzer.plugin import Plugin
from analyzer.results import KeyValues, Kind, Result
from analyzer.session import Session


def _uptime(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    s = int(seconds)
    days, s = divmod(s, 86400)
    return (f"{days} days, " if days else "") + f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Sys(Plugin):
    name = "sys"
    help = "the system: kernel release, uptime, CPUs, memory, panic message, taint"
    description = """\
What crash's `sys` shows: the kernel release and version, the node name,
uptime, CPUs, memory, the panic message and the taint mask.  Works with or
without debug info; without it, fewer facts (it says which).

examples:
  vmcrash run sys vmcore --vmlinux vmlinux
  vmcrash run sys vmcore --markdown
"""
    needs = (LINUX,)

    def run(self, session: Session, **options: Any) -> Result:
        linux = session.linux()
        result = Result(self.name, mode=linux.mode)
        kv = KeyValues()
        kv.add("dumpfile", session.path)
        kv.add("format", session.dump.format_description)
        kv.add("release", linux.release)
        if linux.kp.has_types:
            uts = linux.uts()
            kv.add("version", uts["version"])
            kv.add("machine", uts["machine"])
            kv.add("nodename", uts["nodename"])
            kv.add("uptime", _uptime(linux.uptime_seconds()))
            kv.add("cpus", len(linux.online_cpus()), Kind.INT)
            kv.add("memory", linux.memory_bytes(), Kind.SIZE)
        else:
            kv.add("cpus", len(session.domain.vcpus), Kind.INT)
            result.warn("no kernel types: version, uptime, memory and tasks need --vmlinux")
        panic = linux.panic()
        kv.add("panic", panic.message)
        kv.add("panic cpu", panic.cpu, Kind.INT)
        if panic.pid is not None:
            kv.add("panic task", f"{panic.pid} ({panic.comm})")
        kv.add("taint", linux.taint(), Kind.ADDRESS)
        result.add(kv)
        return result

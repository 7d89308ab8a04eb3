"""``log``: the kernel's log buffer."""

from __future__ import annotations

from typing import Any

from analyzer.needs import KERNEL_PAGE_TABLES, LINUX
from analyzer.plugin import Option, Plugin
from analyzer.results import Result, Text
from analyzer.session import Session


class Log(Plugin):
    name = "log"
    help = "the kernel log buffer with timestamps (dmesg)"
    description = """\
The whole kernel ring buffer as dmesg prints it, with timestamps.  With
debug info it is read through drgn; without, through the offsets VMCOREINFO
publishes for the ring buffer (Linux 5.10 and later): the same lines.

examples:
  vmcrash run log vmcore --vmlinux vmlinux | tail -40
  vmcrash run log vmcore --vmlinux vmlinux --grep 'BUG|panic'
"""
    options = (
        Option("tail", "only the last N lines", type=int, metavar="N"),
        Option("grep", "only lines matching this regular expression", metavar="RE"),
    )
    needs = (LINUX, KERNEL_PAGE_TABLES)

    def run(self, session: Session, **options: Any) -> Result:
        import re

        linux = session.linux()
        lines = linux.log_lines()
        if options.get("grep"):
            rx = re.compile(options["grep"])
            lines = [ln for ln in lines if rx.search(ln)]
        if options.get("tail"):
            lines = lines[-options["tail"]:]
        result = Result(self.name, mode=linux.mode)
        result.add(Text("\n".join(lines)))
        return result

"""``mod``: loaded kernel modules."""

from __future__ import annotations

from typing import Any

from analyzer.needs import KERNEL_TYPES, LINUX
from analyzer.plugin import Plugin
from analyzer.results import Column, Kind, Result, Table
from analyzer.session import Session


class Mod(Plugin):
    name = "mod"
    help = "loaded kernel modules: name, struct module address, base, size"
    description = """\
The kernel's module list, as crash's `mod` shows it.

examples:
  vmcrash run mod vmcore --vmlinux vmlinux
"""
    needs = (LINUX, KERNEL_TYPES)

    def run(self, session: Session, **options: Any) -> Result:
        linux = session.linux()
        result = Result(self.name, mode=linux.mode)
        t = Table([Column("module", Kind.ADDRESS), Column("name"), Column("base", Kind.ADDRESS),
                   Column("size", Kind.INT)])
        for m in linux.modules():
            t.add(m["address"], m["name"], m["base"], m["size"])
        result.add(t)
        return result

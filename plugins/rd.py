"""``rd``: read memory and show it as hex and ASCII."""

from __future__ import annotations

from typing import Any

from analyzer.errors import MemoryFault
from analyzer.needs import KERNEL_PAGE_TABLES
from analyzer.plugin import CannotRun, Option, Plugin, PluginError, parse_int, resolve_address
from analyzer.results import Column, KeyValues, Kind, Result, Table
from analyzer.session import Session

MAX_RD = 1 << 20  # one MiB of hex is already more than a terminal wants


class Rd(Plugin):
    name = "rd"
    help = "hex dump of memory at an address (kernel-virtual by default, or --physical)"
    description = """\
Read LEN bytes (default 64) at ADDR and show them as hex and ASCII, 16
bytes a line.  ADDR is kernel-virtual (translated through the kernel's page
tables) unless --physical is given.  Unreadable pages show as '??' and are
named in a warning; the rest is still shown.

examples:
  vmcrash run rd vmcore 0xffffffff82000000 128
  vmcrash run rd vmcore 0x1000 --physical --json
"""
    options = (
        Option("address", "where to start: a number (0x for hex) or a kernel symbol[+offset]",
               positional=True, required=True, metavar="ADDR"),
        Option("length", "how many bytes (default 64)", type=parse_int, default=64,
               positional=True, metavar="LEN"),
        Option("physical", "ADDR is a (guest-)physical address", type=bool, default=False),
        Option("machine", "ADDR is a machine address (a Xen PV guest's frames; physical elsewhere)",
               type=bool, default=False),
    )

    @classmethod
    def why_not(cls, session: Session, options: dict[str, Any] | None = None) -> str | None:
        if options and (options.get("physical") or options.get("machine")):
            return None
        reason = KERNEL_PAGE_TABLES.check(session)
        return f"needs {KERNEL_PAGE_TABLES.name}: {reason} (or use --physical)" if reason else None

    def run(self, session: Session, **options: Any) -> Result:
        address = resolve_address(session, options["address"])
        length: int = options["length"]
        if not 0 < length <= MAX_RD:
            raise PluginError(f"length must be between 1 and {MAX_RD}")
        domain = session.domain
        if options.get("machine"):
            space = "machine-physical"
            read = domain.read_machine or domain.read_phys
        elif options["physical"]:
            space = "guest-physical" if domain.read_machine else "physical"
            read = domain.read_phys
        else:
            vm = domain.kernel_memory
            if vm is None:
                raise CannotRun("no kernel page tables: use --physical")
            space = "kernel-virtual"
            read = vm.read
        result = Result(self.name)
        data: list[int | None] = []
        pos, end = address, address + length
        while pos < end:
            n = min(end, (pos | 0xFFF) + 1) - pos
            try:
                data.extend(read(pos, n))
            except MemoryFault as e:
                result.warn(str(e))
                data.extend([None] * n)
            pos += n
        head = KeyValues()
        head.add("address", address, Kind.ADDRESS)
        head.add("space", space)
        head.add("length", length, Kind.INT)
        result.add(head)
        lines = Table([Column("address", Kind.ADDRESS), Column("hex"), Column("ascii")])
        for off in range(0, length, 16):
            chunk = data[off:off + 16]
            hx = " ".join("??" if b is None else f"{b:02x}" for b in chunk)
            asc = "".join("?" if b is None else (chr(b) if 32 <= b < 127 else ".") for b in chunk)
            lines.add(address + off, hx, asc)
        result.add(lines)
        return result
